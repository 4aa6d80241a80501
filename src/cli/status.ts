// `foureyes status <ref>`: what the change is waiting for, in terms a person can act on.
import { WorkflowNotFoundError } from '@temporalio/client';
import { reasonText } from '../policy/sod.ts';
import { formatChangeRef, workflowIdFor } from '../shared/change-ref.ts';
import { connectClient } from '../shared/temporal-connection.ts';
import type { ChangeStatus } from '../shared/types.ts';
import { changeStatus } from '../gateway/routes/changes.ts';
import { changeRefArg, CliError, parseArgs } from './commands.ts';

export async function run(args: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(args, { flags: ['json'] });
  if (positionals.length !== 1) throw new CliError('usage: foureyes status <owner/repo#number> [--json]', 2);
  const ref = changeRefArg(positionals[0] as string);
  const client = await connectClient();
  try {
    const status = await changeStatus(client.workflow.getHandle(workflowIdFor(ref)));
    console.log(flags.has('json') ? JSON.stringify(status, null, 2) : formatStatus(status));
    return 0;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new CliError(`no change ${formatChangeRef(ref)} in namespace ${client.options.namespace}; has its pull request been opened since foureyes started?`);
    throw error;
  } finally {
    await client.connection.close();
  }
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
  for (const u of s.unknownIdentities ?? []) lines.push(`  unknown      ${u.identity} (${u.role} of ${u.sha.slice(0, 7)}): add it to the person's emails in foureyes.yaml`);
  if ((s.runs?.length ?? 0) > 1) lines.push(`  runs         ${s.runs?.map((r) => `${r.runId.slice(0, 8)} (${r.how}${r.outcome ? `, ${r.outcome}` : ''})`).join(' → ')}`);
  for (const r of s.retrying ?? []) lines.push(`  retrying     ${r.activity} (attempt ${r.attempt}${r.nextAttemptAt ? `, next at ${r.nextAttemptAt}` : ''}): ${r.lastFailure}`);
  if (s.checks) lines.push(`  checks       ${s.checks.passed ? 'passed' : 'FAILED'} at ${s.checks.sha.slice(0, 12)} (${s.checks.results.map((r) => `${r.name}: ${r.passed ? 'ok' : r.timedOut ? 'timed out' : `exit ${r.exitCode}`}`).join(', ')})`);
  for (const env of s.environments) lines.push(`  ${env.name.padEnd(12)} ${env.state}; approvals ${env.approvedBy.length}/${env.required}${env.approvedBy.length ? ` (${env.approvedBy.join(', ')})` : ''}`);
  const attempts = s.approvals.slice(-10);
  if (attempts.length) {
    lines.push('  approval attempts:');
    for (const a of attempts) {
      const state = a.voidedAt ? `${reasonText(a.voidReason ?? 'void')}` : a.counted ? 'counted' : `refused: ${reasonText(a.reason)}`;
      lines.push(`    ${a.recordedAt}  ${a.claim.person} via ${a.claim.channel} ${a.claim.decision} ${a.claim.sha.slice(0, 12)} — ${state}`);
    }
  }
  return lines.join('\n');
}
