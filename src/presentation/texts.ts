// What people read about a change: its status and the outcome of an approval, as the CLI, Slack, Teams and the
// gateway show them. Pure text from shared types (no I/O), so every channel says the same thing.
import { reasonText } from '../policy/sod.ts';
import { escapeSlackText } from '../shared/slack-format.ts';
import { failedStep, stepFailureText } from '../shared/step-report.ts';
import type { ApprovalClaim, ApprovalOutcome, ChangeStatus } from '../shared/types.ts';

/** An approval the workflow answered: the signed claim and the workflow's outcome. */
export interface RecordedOutcome {
  outcome: ApprovalOutcome;
  claim: ApprovalClaim;
}

export function formatStatus(s: ChangeStatus): string {
  const lines = [
    `${s.change}  ${s.title}`,
    `  stage        ${s.stage}${s.waitingFor ? ` — ${s.waitingFor}` : ''}`,
    `  head         ${s.headSha.slice(0, 12)}`,
    `  initiators   ${s.initiators.join(', ') || '(none)'}`,
  ];
  if (s.failure) lines.push(`  FAILED       ${s.failure.type}: ${s.failure.message}`);
  if (s.baseRef) lines.push(`  base         ${s.baseRef}`);
  for (const u of s.unknownIdentities ?? [])
    lines.push(
      `  unknown      ${u.identity} (${u.role} of ${u.sha.slice(0, 7)}): add it to the person's emails in foureyes.yaml`,
    );
  if ((s.runs?.length ?? 0) > 1)
    lines.push(
      `  runs         ${s.runs?.map((r) => `${r.runId.slice(0, 8)} (${r.how}${r.outcome ? `, ${r.outcome}` : ''})`).join(' → ')}`,
    );
  for (const r of s.retrying ?? [])
    lines.push(
      `  retrying     ${r.activity} (attempt ${r.attempt}${r.nextAttemptAt ? `, next at ${r.nextAttemptAt}` : ''}): ${r.lastFailure}`,
    );
  if (s.checks)
    lines.push(
      `  checks       ${s.checks.passed ? 'passed' : 'FAILED'} at ${s.checks.sha.slice(0, 12)} (${s.checks.results.map((r) => `${r.name}: ${r.passed ? 'ok' : r.timedOut ? 'timed out' : `exit ${r.exitCode}`}`).join(', ')})`,
    );
  for (const e of s.emergencies ?? [])
    lines.push(`  EMERGENCY    ${e.summary} — declared by ${e.declaredBy} at ${e.declaredAt}: ${e.reason}`);
  for (const env of s.environments) {
    lines.push(
      `  ${env.name.padEnd(12)} ${env.state}; approvals ${env.approvedBy.length}/${env.required}${env.approvedBy.length ? ` (${env.approvedBy.join(', ')})` : ''}${env.emergency ? ` — under the emergency declared by ${env.emergency}` : ''}`,
    );
    const failed = failedStep(env);
    if (failed) lines.push(`  ${''.padEnd(12)} ${stepFailureText(failed.step, failed.report)}`);
    const back = env.rolledBack;
    if (back)
      lines.push(
        `  ${''.padEnd(12)} deployed ${env.deploy?.sha.slice(0, 7) ?? ''}, since rolled back to ${back.sha.slice(0, 7)} (${back.change}) by ${back.by ?? 'someone'} (${back.rollback}) at ${back.at}`,
      );
  }
  const attempts = s.approvals.slice(-10);
  if (attempts.length) {
    lines.push('  approval attempts:');
    for (const a of attempts) {
      const state = a.voidedAt
        ? `${reasonText(a.voidReason ?? 'void')}`
        : a.counted
          ? 'counted'
          : `refused: ${reasonText(a.reason)}`;
      lines.push(
        `    ${a.recordedAt}  ${a.claim.person} via ${a.claim.channel} ${a.claim.decision} ${a.claim.sha.slice(0, 12)} — ${state}`,
      );
    }
  }
  return lines.join('\n');
}

export function outcomeText(recorded: RecordedOutcome): string {
  const { outcome, claim } = recorded;
  const what = `${claim.person}'s ${claim.decision === 'reject' ? 'rejection' : 'approval'} of ${claim.change} at ${claim.sha.slice(0, 12)}${claim.environment ? ` for ${claim.environment}` : ''}`;
  const body = outcome.counted
    ? `:white_check_mark: ${what} counted${outcome.environments.length ? ` (${outcome.environments.join(', ')})` : ''}: ${reasonText(outcome.reason)}`
    : `:x: ${what} was refused: ${reasonText(outcome.reason)}`;
  return `${escapeSlackText(body)} · stage ${outcome.stage}`;
}

export function teamsOutcomeText(recorded: RecordedOutcome): string {
  const { outcome, claim } = recorded;
  const what = `${claim.person}'s ${claim.decision === 'reject' ? 'rejection' : 'approval'} of ${claim.change} at ${claim.sha.slice(0, 12)}${claim.environment ? ` for ${claim.environment}` : ''}`;
  return outcome.counted
    ? `${what} counted${outcome.environments.length ? ` (${outcome.environments.join(', ')})` : ''}: ${reasonText(outcome.reason)} · stage ${outcome.stage}`
    : `${what} was refused: ${reasonText(outcome.reason)} · stage ${outcome.stage}`;
}
