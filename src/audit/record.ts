// The audit record of one change, reconstructed from its workflow history events (every run of the
// continue-as-new chain), never from the workflow's mutable state: who initiated, what was tested, every
// approval attempt and its fate, what executed each deployment with which leases, and the outcome.
import { collectInitiators, decideEvent, reasonText, shortSha, type Initiators, type Participation } from '../policy/sod.ts';
import type {
  ApprovalOutcome,
  ChangePolicy,
  ChecksReport,
  DeployReport,
  LeaseRecord,
  PullRequestClosed,
  PullRequestEvent,
  PullRequestFacts,
  SignedApproval,
  VerifyReport,
} from '../shared/types.ts';
import { decodePayloads, eventTime, type HistoryEvent, type RunHistory } from './history.ts';
import type { UnchainedEntry } from './seal.ts';

import { APPROVAL_MEMO_KEY, type ApprovalDecisionMemo } from '../shared/audit-memo.ts';
import { CORE_V2_PATCH, patchOf } from '../shared/patches.ts';

export interface AuditSummary {
  change: string;
  outcome: string;
  headSha: string;
  initiators: Record<string, string[]>;
  approvers: string[];
  refusedAttempts: number;
  executors: string[];
  environmentsDeployed: string[];
  /** The three duties were held by different parties: no approver initiated, only the pipeline executed. */
  dutiesSegregated: boolean;
  segregationFindings: string[];
  runIds: string[];
  firstEventAt: string;
  lastEventAt: string;
}

export interface AuditRecord {
  summary: AuditSummary;
  entries: UnchainedEntry[];
}

interface PendingActivity {
  type: string;
  input: unknown;
  taskQueue: string;
  identity?: string;
}

/** The deploy trust zone: `foureyes-deploy`, or `<queue>-deploy` for a renamed stack. */
const isDeployQueue = (queue: string) => queue === 'foureyes-deploy' || queue.endsWith('-deploy');

const QUIET_ACTIVITIES = new Set(['syncGitHub', 'notifySlack', 'syncTeamsCard', 'zoneInfo_orchestrator']);

function leaseText(leases: LeaseRecord[] | undefined): string {
  if (!leases?.length) return 'no lease';
  return leases.map((l) => `lease ${l.leaseId} (${l.kind} ${l.path}, TTL ${l.ttlSeconds}s, ${l.revokedAt ? `revoked ${l.revokedAt}` : 'NOT revoked'})`).join('; ');
}

/** Strips anything not meant for an audit file from a claim's free text. */
function clip(text: string | undefined, max = 300): string | undefined {
  if (text === undefined) return undefined;
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export function buildAuditRecord(change: string, runs: RunHistory[]): AuditRecord {
  const entries: UnchainedEntry[] = [];
  let policy: ChangePolicy | undefined;
  const initiators: Initiators = {};
  const participations: Participation[] = [];
  const approvers = new Set<string>();
  const executors = new Set<string>();
  const deployed: string[] = [];
  const deployedAt = new Set<string>();
  const findings: string[] = [];
  let headSha = '';
  let outcome = 'open';
  let refused = 0;
  let attempts = 0;
  const pendingApprovals: Array<{ entry: UnchainedEntry; signed: SignedApproval }> = [];
  const decisions: ApprovalDecisionMemo[] = [];
  const updateResults = new Map<string, ApprovalOutcome>();
  const updateAttempt = new Map<string, number>();

  const push = (entry: UnchainedEntry) => entries.push(entry);
  const signedEvents: Array<{ event: PullRequestEvent; participation: Participation }> = [];
  let v2 = false;

  for (const run of runs) {
    const scheduled = new Map<string, PendingActivity>();
    for (const event of run.events as HistoryEvent[]) {
      const at = eventTime(event);
      const id = String(event.eventId ?? '');
      if (patchOf(event) === CORE_V2_PATCH) v2 = true;
      if (event.workflowExecutionStartedEventAttributes) {
        const a = event.workflowExecutionStartedEventAttributes;
        push({ at, kind: 'run-started', summary: `workflow run ${run.runId} started${a.continuedExecutionRunId ? ` (continues run ${a.continuedExecutionRunId})` : ''}`, data: { runId: run.runId, taskQueue: a.taskQueue?.name } });
      } else if (event.workflowExecutionSignaledEventAttributes) {
        const a = event.workflowExecutionSignaledEventAttributes;
        const [arg] = decodePayloads(a.input);
        if (a.signalName === 'pullRequest') {
          const pr = arg as PullRequestEvent;
          // Resolved against the policy's people at the end: the signal that starts a change precedes loadPolicy.
          // Core v2 applies only events the gateway signed: the others are checked against the policy's keys at the end.
          signedEvents.push({ event: pr, participation: { ...(pr.kind === 'opened' || signedEvents.length === 0 ? { author: pr.author } : {}), commits: pr.commits ?? [], pushers: pr.pusher ? [pr.pusher] : [] } });
          push({
            at,
            kind: 'pull-request',
            summary: `${pr.kind}: head ${shortSha(pr.headSha)} by ${pr.pusher ?? pr.author} (${pr.commits?.length ?? 0} commit(s))`,
            data: {
              kind: pr.kind,
              deliveryId: pr.deliveryId,
              headSha: pr.headSha,
              beforeSha: pr.beforeSha,
              author: pr.author,
              pusher: pr.pusher,
              title: clip(pr.title),
              commits: (pr.commits ?? []).map((c) => ({ sha: c.sha, author: c.author, committer: c.committer, message: clip(c.message, 1000) })),
              changedFiles: pr.changedFiles?.slice(0, 200),
            },
          });
        } else if (a.signalName === 'pullRequestClosed') {
          const closed = arg as PullRequestClosed;
          push({ at, kind: 'closed', summary: `pull request ${closed.merged ? 'merged' : 'closed'}${closed.closedBy ? ` by ${closed.closedBy}` : ''}`, data: closed });
        } else if (a.signalName === 'approval') {
          const entry = approvalEntry(at, arg as SignedApproval, 'signal', a.identity ?? undefined);
          push(entry);
          pendingApprovals.push({ entry, signed: arg as SignedApproval });
          attempts++;
        } else {
          push({ at, kind: 'signal', summary: `signal ${a.signalName}`, data: { name: a.signalName } });
        }
      } else if (event.workflowExecutionUpdateAcceptedEventAttributes) {
        const a = event.workflowExecutionUpdateAcceptedEventAttributes;
        const [arg] = decodePayloads(a.acceptedRequest?.input?.args);
        const entry = approvalEntry(at, arg as SignedApproval, 'update', a.acceptedRequest?.meta?.identity ?? undefined);
        push(entry);
        pendingApprovals.push({ entry, signed: arg as SignedApproval });
        updateAttempt.set(a.protocolInstanceId ?? '', attempts);
        attempts++;
      } else if (event.workflowExecutionUpdateCompletedEventAttributes) {
        const a = event.workflowExecutionUpdateCompletedEventAttributes;
        const [result] = decodePayloads(a.outcome?.success);
        if (result) updateResults.set(a.meta?.updateId ?? '', result as ApprovalOutcome);
      } else if (event.workflowPropertiesModifiedEventAttributes) {
        const fields = event.workflowPropertiesModifiedEventAttributes.upsertedMemo?.fields ?? {};
        const memo = fields[APPROVAL_MEMO_KEY];
        if (memo) {
          const [decision] = decodePayloads({ payloads: [memo] });
          if (decision && typeof decision === 'object') decisions.push(decision as ApprovalDecisionMemo);
        }
      } else if (event.activityTaskScheduledEventAttributes) {
        const a = event.activityTaskScheduledEventAttributes;
        const [input] = decodePayloads(a.input);
        scheduled.set(id, { type: a.activityType?.name ?? '?', input, taskQueue: a.taskQueue?.name ?? '' });
      } else if (event.activityTaskStartedEventAttributes) {
        const a = event.activityTaskStartedEventAttributes;
        const pending = scheduled.get(String(a.scheduledEventId ?? ''));
        if (pending) pending.identity = a.identity ?? undefined;
      } else if (event.activityTaskCompletedEventAttributes) {
        const a = event.activityTaskCompletedEventAttributes;
        const pending = scheduled.get(String(a.scheduledEventId ?? ''));
        if (!pending || QUIET_ACTIVITIES.has(pending.type)) continue;
        const [result] = decodePayloads(a.result);
        const executor = pending.identity;
        switch (pending.type) {
          case 'lookUpPullRequest': {
            // What the workflow decided on: the pull request as the orchestrator read it from GitHub.
            const found = result as PullRequestFacts;
            participations.push({ author: found.author, commits: found.head.commits });
            push({
              at,
              kind: 'pull-request-read',
              summary: `GitHub: head ${shortSha(found.head.sha)} into ${found.head.baseRef}, ${found.head.commits.length} commit(s), ${found.head.files.length} file(s)${found.head.incomplete ? ` (${found.head.incomplete})` : ''}`,
              data: { state: found.state, author: found.author, headSha: found.head.sha, baseRef: found.head.baseRef, incomplete: found.head.incomplete, commits: found.head.commits.map((c) => ({ sha: c.sha, author: c.author, committer: c.committer, message: clip(c.message, 1000) })), changedFiles: found.head.files.slice(0, 200) },
            });
            break;
          }
          case 'beginChange':
          case 'confirmDelivery':
          case 'loadPolicy': {
            policy = (pending.type === 'loadPolicy' ? result : (result as { policy: ChangePolicy }).policy) as ChangePolicy;
            push({
              at,
              kind: 'policy',
              summary: `policy for ${policy.repo}: ${policy.environments.map((e) => `${e.name} needs ${e.required} approver(s)${e.eligible.length ? ` from ${e.eligible.join(', ')}` : ''}`).join('; ')}`,
              data: { environments: policy.environments, policyOwners: policy.policyOwners, policyPaths: policy.policyPaths, checks: policy.checks, approvalKeys: policy.approvalKeys, digest: policy.digest, read: pending.type },
            });
            break;
          }
          case 'runChecks': {
            const report = result as ChecksReport;
            push({
              at,
              kind: 'checks',
              summary: `checks ${report.passed ? 'passed' : 'FAILED'} at ${shortSha(report.sha)}: ${report.results.map((r) => `${r.name} ${r.passed ? 'ok' : r.timedOut ? 'timed out' : `exit ${r.exitCode}`} (${r.durationMs} ms)`).join(', ') || 'no checks configured'}`,
              data: { sha: report.sha, passed: report.passed, durationMs: report.durationMs, results: report.results.map((r) => ({ name: r.name, passed: r.passed, exitCode: r.exitCode, timedOut: r.timedOut, durationMs: r.durationMs })), executor },
            });
            break;
          }
          case 'deploy': {
            const report = result as DeployReport;
            if (executor) executors.add(executor);
            if (!isDeployQueue(pending.taskQueue)) findings.push(`${report.environment} was deployed from task queue ${pending.taskQueue}, outside the deploy zone`);
            if (report.status !== 'failed') {
              deployed.push(report.environment);
              deployedAt.add(`${report.environment}@${report.sha}`);
            }
            push({
              at,
              kind: 'deploy',
              summary: `${report.environment}: ${report.status} ${shortSha(report.sha)} by the pipeline (${executor ?? 'deploy worker'}); ${leaseText(report.leases)}`,
              data: { environment: report.environment, sha: report.sha, status: report.status, exitCode: report.exitCode, durationMs: report.durationMs, leases: report.leases, executor, taskQueue: pending.taskQueue },
            });
            break;
          }
          case 'verify': {
            const report = result as VerifyReport;
            push({
              at,
              kind: 'verify',
              summary: `${report.environment}: verification ${report.passed ? 'passed' : 'FAILED'} at ${shortSha(report.sha)}; ${leaseText(report.leases)}`,
              data: { environment: report.environment, sha: report.sha, passed: report.passed, exitCode: report.exitCode, durationMs: report.durationMs, leases: report.leases, executor },
            });
            break;
          }
          case 'revokeOutstanding': {
            const leases = (result as LeaseRecord[]) ?? [];
            const env = (pending.input as { environment?: string })?.environment;
            push({ at, kind: 'revoke', summary: `${env}: ${leases.length ? `revoked ${leases.length} outstanding lease(s): ${leases.map((l) => l.leaseId).join(', ')}` : 'no lease outstanding'}`, data: { environment: env, leases, executor } });
            break;
          }
          default:
            push({ at, kind: `activity:${pending.type}`, summary: `${pending.type} completed`, data: { result: typeof result === 'object' ? result : String(result), executor } });
        }
      } else if (event.activityTaskFailedEventAttributes || event.activityTaskTimedOutEventAttributes) {
        const a = event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
        const pending = scheduled.get(String(a?.scheduledEventId ?? ''));
        if (!pending || QUIET_ACTIVITIES.has(pending.type)) continue;
        const message = a?.failure?.message ?? 'timed out';
        push({ at, kind: 'activity-failed', summary: `${pending.type} failed: ${clip(message, 300)}`, data: { type: pending.type, input: pending.input, message: clip(message, 2000), executor: pending.identity } });
      } else if (event.activityTaskCanceledEventAttributes) {
        const pending = scheduled.get(String(event.activityTaskCanceledEventAttributes.scheduledEventId ?? ''));
        if (pending && !QUIET_ACTIVITIES.has(pending.type)) push({ at, kind: 'activity-cancelled', summary: `${pending.type} cancelled`, data: { type: pending.type, input: pending.input } });
      } else if (event.workflowExecutionContinuedAsNewEventAttributes) {
        push({ at, kind: 'continued-as-new', summary: `history bounded: continued as new run ${event.workflowExecutionContinuedAsNewEventAttributes.newExecutionRunId}`, data: { next: event.workflowExecutionContinuedAsNewEventAttributes.newExecutionRunId } });
      } else if (event.workflowExecutionCompletedEventAttributes) {
        const [result] = decodePayloads(event.workflowExecutionCompletedEventAttributes.result);
        const r = result as { outcome?: string; headSha?: string } | undefined;
        outcome = r?.outcome ?? 'completed';
        if (r?.headSha) headSha = r.headSha;
        push({ at, kind: 'completed', summary: `change ${outcome}${r?.headSha ? ` at ${shortSha(r.headSha)}` : ''}`, data: result });
      } else if (event.workflowExecutionFailedEventAttributes || event.workflowExecutionTerminatedEventAttributes || event.workflowExecutionCanceledEventAttributes || event.workflowExecutionTimedOutEventAttributes) {
        outcome = event.workflowExecutionTerminatedEventAttributes ? 'terminated' : event.workflowExecutionCanceledEventAttributes ? 'cancelled' : event.workflowExecutionTimedOutEventAttributes ? 'timed out' : 'failed';
        const reason = event.workflowExecutionTerminatedEventAttributes?.reason ?? event.workflowExecutionFailedEventAttributes?.failure?.message ?? '';
        push({ at, kind: 'ended', summary: `workflow ${outcome}${reason ? `: ${clip(reason)}` : ''}`, data: { outcome, reason } });
      }
    }
  }

  // Each attempt's fate: the workflow's answer to an update, else the decision it recorded for the attempt.
  pendingApprovals.forEach(({ entry }, n) => {
    const decision = decisions.find((d) => d.n === n);
    const data = entry.data as Record<string, unknown>;
    const updateOutcome = [...updateAttempt.entries()].find(([, i]) => i === n)?.[0];
    const answered = updateOutcome !== undefined ? updateResults.get(updateOutcome) : undefined;
    const fate = answered ?? decision;
    if (fate) {
      data.counted = fate.counted;
      data.reason = fate.reason;
      data.environments = fate.environments;
    } else {
      data.counted = false;
      data.reason = 'no decision recorded for this attempt';
    }
    const person = String(data.person ?? '?');
    if (fate?.counted && (data.decision ?? 'approve') === 'approve') approvers.add(person);
    if (!fate?.counted) refused++;
    entry.summary = `${entry.summary} — ${fate?.counted ? 'counted' : 'not counted'}: ${reasonText(String(data.reason))}`;
  });

  for (const { event, participation } of signedEvents) {
    if (!v2 || decideEvent(event, policy?.approvalKeys ?? [], change).verdict === 'accepted') participations.push(participation);
  }
  for (const part of participations) collectInitiators(policy?.people ?? [], part, initiators);
  for (const entry of entries) {
    if (entry.kind === 'pull-request') headSha = (entry.data as { headSha: string }).headSha || headSha;
  }
  const initiatorNames = Object.keys(initiators);
  for (const approver of approvers) {
    if (initiatorNames.includes(approver)) findings.push(`${approver} both initiated (${(initiators[approver] ?? []).join(', ')}) and approved`);
  }
  if (deployed.length > 0 && approvers.size === 0 && (policy?.environments.some((e) => e.required > 0) ?? true)) findings.push('deployed without any counted approval');

  // A delivered change's workflow stays open until its pull request closes; say what it achieved.
  if (outcome === 'open' && policy && policy.environments.length > 0 && policy.environments.every((e) => deployedAt.has(`${e.name}@${headSha}`))) {
    outcome = 'delivered (pull request still open)';
  }
  const times = entries.map((e) => e.at).filter(Boolean).sort();
  return {
    summary: {
      change,
      outcome,
      headSha,
      initiators,
      approvers: [...approvers].sort(),
      refusedAttempts: refused,
      executors: [...executors].sort(),
      environmentsDeployed: deployed,
      dutiesSegregated: findings.length === 0,
      segregationFindings: findings,
      runIds: runs.map((r) => r.runId),
      firstEventAt: times[0] ?? '',
      lastEventAt: times.at(-1) ?? '',
    },
    entries,
  };
}

function approvalEntry(at: string, signed: SignedApproval | undefined, via: 'signal' | 'update', senderIdentity: string | undefined): UnchainedEntry {
  const claim = (signed?.claim ?? {}) as Partial<SignedApproval['claim']>;
  return {
    at,
    kind: 'approval-attempt',
    summary: `${String(claim.person ?? '?')} via ${String(claim.channel ?? '?')}: ${String(claim.decision ?? '?')} ${shortSha(String(claim.sha ?? ''))}${claim.environment ? ` for ${claim.environment}` : ''}`,
    data: {
      person: claim.person,
      channel: claim.channel,
      decision: claim.decision,
      sha: claim.sha,
      environment: claim.environment,
      evidence: claim.evidence,
      comment: clip(claim.comment),
      claimedAt: claim.at,
      nonce: claim.nonce,
      signedBy: signed?.keyId,
      deliveredAs: via,
      // Who sent it to Temporal: a gateway, or someone using the Temporal UI or CLI directly.
      sender: senderIdentity,
    },
  };
}
