// The audit record of one change, reconstructed from its workflow history events (every run of the
// continue-as-new chain), never from the workflow's mutable state: who initiated, what was tested, every
// approval attempt and its fate, what executed each deployment with which leases, and the outcome.
import {
  addInitiator,
  collectInitiators,
  decideEvent,
  parseCoAuthors,
  principalsOf,
  reasonText,
  shortSha,
  type Initiators,
  type Participation,
} from '../policy/sod.ts';
import type {
  ApprovalOutcome,
  ChangePolicy,
  ChecksReport,
  CommitInfo,
  DeployReport,
  Identity,
  LeaseRecord,
  PullRequestClosed,
  PullRequestEvent,
  PullRequestFacts,
  SignedApproval,
  VerifyReport,
} from '../shared/types.ts';
import { decodePayloads, eventTime, type HistoryEvent, type RunHistory } from './history.ts';
import type { UnchainedEntry } from './seal.ts';
import { failureOf, reportOfFailure, stepFailureText } from '../shared/step-report.ts';
import { deriveControls, type ControlEntry } from './controls.ts';
import {
  auditEmergencies,
  declarationEntry,
  ordinaryDeploys,
  type DeclarationSeen,
  type EmergencyAudit,
  type EmergencyResult,
  type RefusedEmergency,
} from './emergencies.ts';
import { EMERGENCY_MEMO_KEY, type SignedEmergency } from '../shared/emergency.ts';

import {
  APPROVAL_MEMO_KEY,
  AUDIT_VIEW_KEY,
  type ApprovalDecisionMemo,
  type AuditViewMemo,
} from '../shared/audit-memo.ts';
import { CORE_V2_PATCH, patchOf } from '../shared/patches.ts';
import { isDeployZoneQueue } from '../shared/task-queues.ts';

/** An identity of a commit as the workflow read it, and the person it resolved to under the policy then in force. */
export interface IdentityView {
  login?: string;
  email?: string;
  name?: string;
  /** The configured person(s) it stands for, or "unknown identity". */
  person: string;
}

export interface CommitView {
  sha: string;
  author: IdentityView;
  committer: IdentityView;
  coAuthors: IdentityView[];
}

/** A head the workflow read, with every commit of it (from the look-up the workflow used). */
export interface HeadView {
  sha: string;
  /** The look-up it came from: lookUpPullRequest (core v2), lookUpPullRequestChanges or the event itself (core v1). */
  source: string;
  commits: CommitView[];
  incomplete?: string;
}

export const UNKNOWN_IDENTITY = 'unknown identity';

export interface AuditSummary {
  change: string;
  outcome: string;
  headSha: string;
  initiators: Record<string, string[]>;
  /** Every head the workflow read, in order, with its commits (absent in exports written before it was kept). */
  heads?: HeadView[];
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
  /** Break-glass: each emergency the workflow took (src/audit/emergencies.ts); absent when none was declared. */
  emergencies?: EmergencyAudit[];
  /** Emergency declarations the workflow refused; absent when none was. */
  refusedEmergencies?: RefusedEmergency[];
}

export interface AuditRecord {
  summary: AuditSummary;
  entries: UnchainedEntry[];
  /** Which evidence answers which control (src/audit/controls.ts); sealRecord derives it when left out. */
  controls?: ControlEntry[];
}

interface PendingActivity {
  type: string;
  input: unknown;
  taskQueue: string;
  identity?: string;
}

const QUIET_ACTIVITIES = new Set(['syncGitHub', 'notifySlack', 'syncTeamsCard', 'zoneInfo_orchestrator']);

function leaseText(leases: LeaseRecord[] | undefined): string {
  if (!leases?.length) return 'no lease';
  return leases
    .map(
      (l) =>
        `lease ${l.leaseId} (${l.kind} ${l.path}, TTL ${l.ttlSeconds}s, ${l.revokedAt ? `revoked ${l.revokedAt}` : 'NOT revoked'})`,
    )
    .join('; ');
}

type People = ChangePolicy['people'];

function identityView(people: People, identity: Identity | undefined): IdentityView {
  const id = identity ?? {};
  const known = principalsOf(people, id).filter((p) => !p.startsWith('email:') && !p.startsWith('name:'));
  return {
    ...(id.login ? { login: id.login } : {}),
    ...(id.email ? { email: id.email } : {}),
    ...(id.name ? { name: id.name } : {}),
    person: known.join(', ') || UNKNOWN_IDENTITY,
  };
}

function commitViews(people: People, commits: readonly CommitInfo[]): CommitView[] {
  return commits.map((c) => ({
    sha: c.sha,
    author: identityView(people, c.author),
    committer: identityView(people, c.committer),
    coAuthors: parseCoAuthors(c.message).map((co) => identityView(people, co)),
  }));
}

function commitsText(commits: readonly CommitView[]): string {
  const who = (v: IdentityView) =>
    v.person === UNKNOWN_IDENTITY ? `${v.login ?? v.email ?? v.name ?? '?'} (unknown identity)` : v.person;
  return commits
    .map(
      (c) =>
        `${shortSha(c.sha)} by ${who(c.author)}, committed by ${who(c.committer)}${c.coAuthors.length ? `, co-authors ${c.coAuthors.map(who).join(', ')}` : ''}`,
    )
    .join('; ');
}

/** Strips anything not meant for an audit file from a claim's free text. */
function clip(text: string | undefined, max = 300): string | undefined {
  if (text === undefined) return undefined;
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** What reading a change's events gathers, run after run, for the passes that settle the summary at the end. */
interface Reading {
  entries: UnchainedEntry[];
  /** The policy in force at the event being read: the latest one the workflow loaded. */
  policy: ChangePolicy | undefined;
  /** The change runs core v2 (it took only signed events, and its commits from its own look-up). */
  v2: boolean;
  initiators: Initiators;
  // Each with the people of the policy in force when the workflow used it (resolved at the end if none was read yet).
  participations: Array<{ part: Participation; people?: People }>;
  heads: HeadView[];
  // Head entries are resolved at the end when no policy had been read before them (core v1 reads it late).
  resolveLater: Array<(people: People) => void>;
  lastEventHead: string;
  executors: Set<string>;
  deployed: string[];
  deployedAt: Set<string>;
  findings: string[];
  headSha: string;
  outcome: string;
  attempts: number;
  pendingApprovals: Array<{ entry: UnchainedEntry; signed: SignedApproval }>;
  decisions: ApprovalDecisionMemo[];
  views: AuditViewMemo[];
  policyDigests: Set<string>;
  updateResults: Map<string, ApprovalOutcome>;
  declarations: DeclarationSeen[];
  emergencyMemo: unknown;
  updateAttempt: Map<string, number>;
  signedEvents: Array<{ event: PullRequestEvent; participation: Participation }>;
}

type Attributes<K extends keyof HistoryEvent> = NonNullable<HistoryEvent[K]>;

export function buildAuditRecord(change: string, runs: RunHistory[]): AuditRecord {
  const r = readRuns(runs);
  const { approvers, refused } = settleApprovals(r);
  resolveInitiators(r, change);
  for (const entry of r.entries) {
    if (entry.kind === 'pull-request') r.headSha = (entry.data as { headSha: string }).headSha || r.headSha;
  }
  r.findings.push(...initiatorApprovers(r.initiators, approvers));
  r.findings.push(...crossCheck(r.views, r.initiators, approvers, r.policyDigests));
  const breakGlass = auditBreakGlass(r, change, runs);
  r.findings.push(...breakGlass.findings);
  // A deploy under a verified emergency owes its review instead (a finding above when it is overdue or late).
  if (
    ordinaryDeploys(r.entries, breakGlass.emergencies) > 0 &&
    approvers.size === 0 &&
    (r.policy?.environments.some((e) => e.required > 0) ?? true)
  )
    r.findings.push('deployed without any counted approval');
  const summary = summarise(r, change, runs, approvers, refused, breakGlass);
  return { summary, entries: r.entries, controls: deriveControls(summary, r.entries) };
}

/** Every event of every run, in order, into the timeline entries and what the final passes need. */
function readRuns(runs: RunHistory[]): Reading {
  const r: Reading = {
    entries: [],
    policy: undefined,
    v2: false,
    initiators: {},
    participations: [],
    heads: [],
    resolveLater: [],
    lastEventHead: '',
    executors: new Set(),
    deployed: [],
    deployedAt: new Set(),
    findings: [],
    headSha: '',
    outcome: 'open',
    attempts: 0,
    pendingApprovals: [],
    decisions: [],
    views: [],
    policyDigests: new Set(),
    updateResults: new Map(),
    declarations: [],
    emergencyMemo: undefined,
    updateAttempt: new Map(),
    signedEvents: [],
  };
  for (const run of runs) {
    // Activities are matched to their scheduling event within a run: event ids restart with each run.
    const scheduled = new Map<string, PendingActivity>();
    for (const event of run.events as HistoryEvent[]) readEvent(r, run, scheduled, event);
  }
  return r;
}

function readEvent(r: Reading, run: RunHistory, scheduled: Map<string, PendingActivity>, event: HistoryEvent): void {
  const at = eventTime(event);
  const id = String(event.eventId ?? '');
  if (patchOf(event) === CORE_V2_PATCH) r.v2 = true;
  if (event.workflowExecutionStartedEventAttributes) {
    readRunStarted(r, run, event.workflowExecutionStartedEventAttributes, at);
  } else if (event.workflowExecutionSignaledEventAttributes) {
    readSignal(r, event.workflowExecutionSignaledEventAttributes, at);
  } else if (event.workflowExecutionUpdateAcceptedEventAttributes) {
    readUpdateAccepted(r, event.workflowExecutionUpdateAcceptedEventAttributes, at);
  } else if (event.workflowExecutionUpdateCompletedEventAttributes) {
    const a = event.workflowExecutionUpdateCompletedEventAttributes;
    const [result] = decodePayloads(a.outcome?.success);
    if (result) r.updateResults.set(a.meta?.updateId ?? '', result as ApprovalOutcome);
  } else if (event.workflowPropertiesModifiedEventAttributes) {
    readMemo(r, event.workflowPropertiesModifiedEventAttributes);
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
    if (!pending || QUIET_ACTIVITIES.has(pending.type)) return;
    const [result] = decodePayloads(a.result);
    readActivityResult(r, pending, result, at);
  } else if (event.activityTaskFailedEventAttributes || event.activityTaskTimedOutEventAttributes) {
    readActivityFailed(r, scheduled, event, at);
  } else if (event.activityTaskCanceledEventAttributes) {
    const pending = scheduled.get(String(event.activityTaskCanceledEventAttributes.scheduledEventId ?? ''));
    if (pending && !QUIET_ACTIVITIES.has(pending.type))
      r.entries.push({
        at,
        kind: 'activity-cancelled',
        summary: `${pending.type} cancelled`,
        data: { type: pending.type, input: pending.input },
      });
  } else if (event.workflowExecutionContinuedAsNewEventAttributes) {
    r.entries.push({
      at,
      kind: 'continued-as-new',
      summary: `history bounded: continued as new run ${event.workflowExecutionContinuedAsNewEventAttributes.newExecutionRunId}`,
      data: { next: event.workflowExecutionContinuedAsNewEventAttributes.newExecutionRunId },
    });
  } else if (event.workflowExecutionCompletedEventAttributes) {
    readCompleted(r, event.workflowExecutionCompletedEventAttributes, at);
  } else if (
    event.workflowExecutionFailedEventAttributes ||
    event.workflowExecutionTerminatedEventAttributes ||
    event.workflowExecutionCanceledEventAttributes ||
    event.workflowExecutionTimedOutEventAttributes
  ) {
    readEnded(r, event, at);
  }
}

function readRunStarted(
  r: Reading,
  run: RunHistory,
  a: Attributes<'workflowExecutionStartedEventAttributes'>,
  at: string,
): void {
  // A run started afresh (the pull request reopened) reopens the change: its outcome is this run's.
  if (!a.continuedExecutionRunId) r.outcome = 'open';
  r.entries.push({
    at,
    kind: 'run-started',
    summary: `workflow run ${run.runId} started${a.continuedExecutionRunId ? ` (continues run ${a.continuedExecutionRunId})` : ''}`,
    data: { runId: run.runId, taskQueue: a.taskQueue?.name },
  });
}

function readSignal(r: Reading, a: Attributes<'workflowExecutionSignaledEventAttributes'>, at: string): void {
  const [arg] = decodePayloads(a.input);
  if (a.signalName === 'pullRequest') {
    readPullRequest(r, arg as PullRequestEvent, at);
  } else if (a.signalName === 'pullRequestClosed') {
    const closed = arg as PullRequestClosed;
    r.entries.push({
      at,
      kind: 'closed',
      summary: `pull request ${closed.merged ? 'merged' : 'closed'}${closed.closedBy ? ` by ${closed.closedBy}` : ''}`,
      data: closed,
    });
  } else if (a.signalName === 'approval') {
    const entry = approvalEntry(at, arg as SignedApproval, 'signal', a.identity ?? undefined);
    r.entries.push(entry);
    r.pendingApprovals.push({ entry, signed: arg as SignedApproval });
    r.attempts++;
  } else {
    r.entries.push({ at, kind: 'signal', summary: `signal ${a.signalName}`, data: { name: a.signalName } });
  }
}

/** A pull request event: who it names as participants, the head it carried (core v1) and its entry. */
function readPullRequest(r: Reading, pr: PullRequestEvent, at: string): void {
  r.lastEventHead = pr?.headSha ?? '';
  // Resolved against the policy's people at the end: the signal that starts a change precedes loadPolicy.
  // Core v2 applies only events the gateway signed: the others are checked against the policy's keys at the end.
  // It takes only the pusher (and an opening author) from an event; commits come from its own look-up.
  // Core v1 took commits from the event when it carried them.
  r.signedEvents.push({
    event: pr,
    participation: {
      ...(pr.kind === 'opened' || r.signedEvents.length === 0 ? { author: pr.author } : {}),
      commits: r.v2 ? [] : (pr.commits ?? []),
      pushers: pr.pusher ? [pr.pusher] : [],
    },
  });
  if (!r.v2 && pr.commits?.length) {
    const view: HeadView = { sha: pr.headSha, source: 'event', commits: [] };
    r.heads.push(view);
    r.resolveLater.push((people) => (view.commits = commitViews(people, pr.commits ?? [])));
  }
  r.entries.push(pullRequestEntry(pr, r.v2, at));
}

function pullRequestEntry(pr: PullRequestEvent, v2: boolean, at: string): UnchainedEntry {
  return {
    at,
    kind: 'pull-request',
    summary: `${pr.kind}: head ${shortSha(pr.headSha)} by ${pr.pusher ?? pr.author} (${v2 || !pr.commits ? 'its commits are read from GitHub' : `${pr.commits.length} commit(s) in the event`})`,
    data: {
      kind: pr.kind,
      deliveryId: pr.deliveryId,
      headSha: pr.headSha,
      beforeSha: pr.beforeSha,
      author: pr.author,
      pusher: pr.pusher,
      title: clip(pr.title),
      ...(pr.commits
        ? {
            commits: pr.commits.map((c) => ({
              sha: c.sha,
              author: c.author,
              committer: c.committer,
              message: clip(c.message, 1000),
            })),
          }
        : {}),
      ...(pr.changedFiles ? { changedFiles: pr.changedFiles.slice(0, 200) } : {}),
    },
  };
}

/** An accepted update: an emergency declaration, or an approval attempt whose answer is the update's result. */
function readUpdateAccepted(
  r: Reading,
  a: Attributes<'workflowExecutionUpdateAcceptedEventAttributes'>,
  at: string,
): void {
  const [arg] = decodePayloads(a.acceptedRequest?.input?.args);
  if (a.acceptedRequest?.input?.name === 'emergency') {
    const entry = declarationEntry(at, arg as SignedEmergency, a.acceptedRequest?.meta?.identity ?? undefined);
    r.entries.push(entry);
    r.declarations.push({
      entry,
      signed: arg as SignedEmergency,
      updateId: a.protocolInstanceId ?? a.acceptedRequest?.meta?.updateId ?? '',
      trustedKeys: r.policy?.approvalKeys ?? [],
      ...(r.policy?.emergency ? { reviewWithinMs: r.policy.emergency.reviewWithinMs } : {}),
    });
    return;
  }
  const entry = approvalEntry(at, arg as SignedApproval, 'update', a.acceptedRequest?.meta?.identity ?? undefined);
  r.entries.push(entry);
  r.pendingApprovals.push({ entry, signed: arg as SignedApproval });
  r.updateAttempt.set(a.protocolInstanceId ?? '', r.attempts);
  r.attempts++;
}

/** What the workflow recorded in its memo: approval decisions, its emergencies, and its view at each decision. */
function readMemo(r: Reading, a: Attributes<'workflowPropertiesModifiedEventAttributes'>): void {
  const fields = a.upsertedMemo?.fields ?? {};
  const memo = fields[APPROVAL_MEMO_KEY];
  if (memo) {
    const [decision] = decodePayloads({ payloads: [memo] });
    if (decision && typeof decision === 'object') r.decisions.push(decision as ApprovalDecisionMemo);
  }
  const emergencies = fields[EMERGENCY_MEMO_KEY];
  if (emergencies) r.emergencyMemo = decodePayloads({ payloads: [emergencies] })[0];
  const view = fields[AUDIT_VIEW_KEY];
  if (view) {
    const [seen] = decodePayloads({ payloads: [view] });
    if (seen && typeof seen === 'object') r.views.push(seen as AuditViewMemo);
  }
}

/** A completed activity, by what it was. */
function readActivityResult(r: Reading, pending: PendingActivity, result: unknown, at: string): void {
  const executor = pending.identity;
  switch (pending.type) {
    case 'lookUpPullRequest':
      readPullRequestLookUp(r, result as PullRequestFacts, at);
      break;
    case 'lookUpPullRequestChanges':
      readChangesLookUp(r, pending, result, at);
      break;
    case 'beginChange':
    case 'confirmDelivery':
    case 'loadPolicy':
      readPolicy(r, pending, result, at);
      break;
    case 'runChecks':
      r.entries.push(checksEntry(result as ChecksReport, executor, at));
      break;
    case 'deploy':
    case 'verify':
      recordStep(r, pending.type, result as DeployReport & VerifyReport, pending.taskQueue, at, executor);
      break;
    case 'revokeOutstanding': {
      const leases = (result as LeaseRecord[]) ?? [];
      const env = (pending.input as { environment?: string })?.environment;
      r.entries.push({
        at,
        kind: 'revoke',
        summary: `${env}: ${leases.length ? `revoked ${leases.length} outstanding lease(s): ${leases.map((l) => l.leaseId).join(', ')}` : 'no lease outstanding'}`,
        data: { environment: env, leases, executor },
      });
      break;
    }
    case 'acquireLane':
    case 'releaseLane':
      r.entries.push(laneEntry(pending, result, at));
      break;
    default:
      r.entries.push({
        at,
        kind: `activity:${pending.type}`,
        summary: `${pending.type} completed`,
        data: { result: typeof result === 'object' ? result : String(result), executor },
      });
  }
}

/** What the workflow decided on: the pull request as the orchestrator read it from GitHub. */
function readPullRequestLookUp(r: Reading, found: PullRequestFacts, at: string): void {
  pushHead(
    r,
    at,
    'lookUpPullRequest',
    found.head.sha,
    found.head.commits,
    found.head.incomplete,
    { author: found.author },
    {
      state: found.state,
      author: found.author,
      headSha: found.head.sha,
      baseRef: found.head.baseRef,
      incomplete: found.head.incomplete,
      changedFiles: found.head.files.slice(0, 200),
    },
    `GitHub: head ${shortSha(found.head.sha)} into ${found.head.baseRef}, ${found.head.commits.length} commit(s), ${found.head.files.length} file(s)${found.head.incomplete ? ` (${found.head.incomplete})` : ''}`,
  );
}

/** Core v1's look-up of the event's head: commits and files only. */
function readChangesLookUp(r: Reading, pending: PendingActivity, result: unknown, at: string): void {
  const found = result as { commits?: CommitInfo[]; changedFiles?: string[] };
  const commits = found?.commits ?? [];
  const sha =
    (pending.input as { sha?: string; headSha?: string })?.sha ??
    (pending.input as { headSha?: string })?.headSha ??
    r.lastEventHead;
  pushHead(
    r,
    at,
    'lookUpPullRequestChanges',
    sha,
    commits,
    undefined,
    {},
    { headSha: sha, changedFiles: (found?.changedFiles ?? []).slice(0, 200) },
    `GitHub: head ${shortSha(sha)}, ${commits.length} commit(s), ${found?.changedFiles?.length ?? 0} file(s)`,
  );
}

/** A head as the workflow read it: its commits, each identity resolved under the policy in force then. */
function pushHead(
  r: Reading,
  at: string,
  source: string,
  sha: string,
  commits: CommitInfo[],
  incomplete: string | undefined,
  part: Participation,
  data: Record<string, unknown>,
  summary: string,
): void {
  const view: HeadView = { sha, source, commits: [], ...(incomplete ? { incomplete } : {}) };
  r.heads.push(view);
  r.participations.push({ part: { ...part, commits }, ...(r.policy ? { people: r.policy.people } : {}) });
  const entry: UnchainedEntry = { at, kind: 'pull-request-read', summary, data: { ...data, commits: [] } };
  const resolve = (people: People) => {
    view.commits = commitViews(people, commits);
    (entry.data as Record<string, unknown>).commits = view.commits.map((c, i) => ({
      ...c,
      message: clip(commits[i]?.message, 1000),
    }));
    if (view.commits.length) entry.summary = `${summary}: ${clip(commitsText(view.commits), 2000)}`;
  };
  if (r.policy) resolve(r.policy.people);
  else r.resolveLater.push(resolve);
  r.entries.push(entry);
}

/** The policy the workflow loaded (with the change, at delivery, or on its own): it is in force from here on. */
function readPolicy(r: Reading, pending: PendingActivity, result: unknown, at: string): void {
  const policy = (pending.type === 'loadPolicy' ? result : (result as { policy: ChangePolicy }).policy) as ChangePolicy;
  r.policy = policy;
  if (policy.digest) r.policyDigests.add(policy.digest);
  // A run started when the pull request reopened takes the initiators of the change's earlier runs.
  const prior = pending.type === 'beginChange' ? (result as { prior?: { initiators?: Initiators } }).prior : undefined;
  for (const [who, roles] of Object.entries(prior?.initiators ?? {}))
    for (const role of roles) addInitiator(r.initiators, who, `${role} (earlier run)`);
  r.entries.push({
    at,
    kind: 'policy',
    summary: `policy for ${policy.repo}: ${policy.environments.map((e) => `${e.name} needs ${e.required} approver(s)${e.eligible.length ? ` from ${e.eligible.join(', ')}` : ''}`).join('; ')}`,
    data: {
      environments: policy.environments,
      policyOwners: policy.policyOwners,
      policyPaths: policy.policyPaths,
      checks: policy.checks,
      approvalKeys: policy.approvalKeys,
      digest: policy.digest,
      ...(policy.emergency ? { emergency: policy.emergency } : {}),
      read: pending.type,
    },
  });
}

function checksEntry(report: ChecksReport, executor: string | undefined, at: string): UnchainedEntry {
  return {
    at,
    kind: 'checks',
    summary: `checks ${report.passed ? 'passed' : 'FAILED'} at ${shortSha(report.sha)}: ${report.results.map((r) => `${r.name} ${r.passed ? 'ok' : r.timedOut ? 'timed out' : `exit ${r.exitCode}`} (${r.durationMs} ms)`).join(', ') || 'no checks configured'}`,
    data: {
      sha: report.sha,
      passed: report.passed,
      durationMs: report.durationMs,
      results: report.results.map((r) => ({
        name: r.name,
        passed: r.passed,
        exitCode: r.exitCode,
        timedOut: r.timedOut,
        durationMs: r.durationMs,
      })),
      executor,
    },
  };
}

/** The environment's lane: one deploy at a time (src/workflows/lane.ts). */
function laneEntry(pending: PendingActivity, result: unknown, at: string): UnchainedEntry {
  const call = (pending.input as { repo?: string; environment?: string } | undefined) ?? {};
  const answer = (result ?? {}) as {
    granted?: boolean;
    lane?: string;
    running?: string;
    reason?: string;
    released?: boolean;
  };
  const summary =
    pending.type === 'acquireLane'
      ? `${call.environment}: ${answer.granted ? `took the lane ${answer.lane ?? ''}` : `declined by the lane: ${answer.reason ?? 'no reason given'}`}`
      : `${call.environment}: gave the lane back${answer.released === false ? ' (the lane had already let it go)' : ''}`;
  return {
    at,
    kind: pending.type === 'acquireLane' ? 'lane-acquired' : 'lane-released',
    summary,
    data: { repo: call.repo, environment: call.environment, ...answer, executor: pending.identity },
  };
}

/** A deploy or verify step that ran: deployed, failed with its exit code and output tail, or verified. */
function recordStep(
  r: Reading,
  step: 'deploy' | 'verify',
  report: DeployReport | VerifyReport,
  taskQueue: string,
  at: string,
  executor: string | undefined,
): void {
  const failed = step === 'deploy' ? (report as DeployReport).status === 'failed' : !(report as VerifyReport).passed;
  const outcome = failed ? { failure: failureOf(report), outputTail: report.outputTail } : {};
  const data = {
    environment: report.environment,
    sha: report.sha,
    ...(step === 'deploy' ? { status: (report as DeployReport).status } : { passed: !failed }),
    exitCode: report.exitCode,
    durationMs: report.durationMs,
    ...outcome,
    leases: report.leases,
    executor,
    ...(step === 'deploy' ? { taskQueue } : {}),
  };
  if (step === 'verify') {
    r.entries.push({
      at,
      kind: 'verify',
      summary: `${failed ? stepFailureText('verify', report) : `${report.environment}: verification passed at ${shortSha(report.sha)}`}; ${leaseText(report.leases)}`,
      data,
    });
    return;
  }
  if (executor) r.executors.add(executor);
  if (!isDeployZoneQueue(taskQueue, report.environment))
    r.findings.push(`${report.environment} was deployed from task queue ${taskQueue}, outside its deploy zone`);
  if (!failed) {
    r.deployed.push(report.environment);
    r.deployedAt.add(`${report.environment}@${report.sha}`);
  }
  r.entries.push({
    at,
    kind: 'deploy',
    summary: `${failed ? stepFailureText('deploy', report) : `${report.environment}: ${(report as DeployReport).status} ${shortSha(report.sha)}`} by the pipeline (${executor ?? 'deploy worker'}); ${leaseText(report.leases)}`,
    data,
  });
}

function readActivityFailed(
  r: Reading,
  scheduled: Map<string, PendingActivity>,
  event: HistoryEvent,
  at: string,
): void {
  const a = event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
  const pending = scheduled.get(String(a?.scheduledEventId ?? ''));
  if (!pending || QUIET_ACTIVITIES.has(pending.type)) return;
  const message = a?.failure?.message ?? 'timed out';
  // A failed command recorded before failed commands were results: its report is in the failure's details.
  const info = a?.failure?.applicationFailureInfo;
  const carried = info ? reportOfFailure(info.type, decodePayloads(info.details)[0]) : undefined;
  if (carried && carried.step === pending.type) {
    recordStep(r, carried.step, carried.report, pending.taskQueue, at, pending.identity);
    return;
  }
  r.entries.push({
    at,
    kind: 'activity-failed',
    summary: `${pending.type} failed: ${clip(message, 300)}`,
    data: { type: pending.type, input: pending.input, message: clip(message, 2000), executor: pending.identity },
  });
}

function readCompleted(r: Reading, a: Attributes<'workflowExecutionCompletedEventAttributes'>, at: string): void {
  const [result] = decodePayloads(a.result);
  const done = result as { outcome?: string; headSha?: string } | undefined;
  r.outcome = done?.outcome ?? 'completed';
  if (done?.headSha) r.headSha = done.headSha;
  r.entries.push({
    at,
    kind: 'completed',
    summary: `change ${r.outcome}${done?.headSha ? ` at ${shortSha(done.headSha)}` : ''}`,
    data: result,
  });
}

/** The run failed, was terminated, cancelled or timed out. */
function readEnded(r: Reading, event: HistoryEvent, at: string): void {
  const outcome = event.workflowExecutionTerminatedEventAttributes
    ? 'terminated'
    : event.workflowExecutionCanceledEventAttributes
      ? 'cancelled'
      : event.workflowExecutionTimedOutEventAttributes
        ? 'timed out'
        : 'failed';
  r.outcome = outcome;
  const reason =
    event.workflowExecutionTerminatedEventAttributes?.reason ??
    event.workflowExecutionFailedEventAttributes?.failure?.message ??
    '';
  r.entries.push({
    at,
    kind: 'ended',
    summary: `workflow ${outcome}${reason ? `: ${clip(reason)}` : ''}`,
    data: { outcome, reason },
  });
}

/**
 * Each attempt's fate: the workflow's answer to an update, else the decision it recorded for the attempt. Marks
 * each attempt's entry; returns whose approvals counted and how many attempts did not.
 */
function settleApprovals(r: Reading): { approvers: Set<string>; refused: number } {
  const approvers = new Set<string>();
  let refused = 0;
  r.pendingApprovals.forEach(({ entry }, n) => {
    const decision = r.decisions.find((d) => d.n === n);
    const data = entry.data as Record<string, unknown>;
    const updateOutcome = [...r.updateAttempt.entries()].find(([, i]) => i === n)?.[0];
    const answered = updateOutcome !== undefined ? r.updateResults.get(updateOutcome) : undefined;
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
  return { approvers, refused };
}

/** The initiators of every participation the workflow took, and the heads' commits left for the final policy. */
function resolveInitiators(r: Reading, change: string): void {
  for (const { event, participation } of r.signedEvents) {
    if (!r.v2 || decideEvent(event, r.policy?.approvalKeys ?? [], change).verdict === 'accepted')
      r.participations.push({ part: participation });
  }
  for (const { part, people } of r.participations)
    collectInitiators(people ?? r.policy?.people ?? [], part, r.initiators);
  for (const resolve of r.resolveLater) resolve(r.policy?.people ?? []);
}

function initiatorApprovers(initiators: Initiators, approvers: Set<string>): string[] {
  const initiatorNames = Object.keys(initiators);
  return [...approvers]
    .filter((approver) => initiatorNames.includes(approver))
    .map((approver) => `${approver} both initiated (${(initiators[approver] ?? []).join(', ')}) and approved`);
}

function auditBreakGlass(r: Reading, change: string, runs: RunHistory[]): EmergencyResult {
  return auditEmergencies({
    change,
    entries: r.entries,
    declarations: r.declarations,
    outcomes: r.updateResults,
    memo: r.emergencyMemo,
    initiators: r.initiators,
    finalKeys: r.policy?.approvalKeys ?? [],
    lastEventAt: runs
      .map((run) => (run.events.at(-1) ? eventTime(run.events.at(-1) as HistoryEvent) : ''))
      .reduce((x, y) => (y > x ? y : x), ''),
  });
}

function summarise(
  r: Reading,
  change: string,
  runs: RunHistory[],
  approvers: Set<string>,
  refused: number,
  breakGlass: EmergencyResult,
): AuditSummary {
  const times = r.entries
    .map((e) => e.at)
    .filter(Boolean)
    .sort();
  return {
    change,
    outcome: outcomeOf(r),
    headSha: r.headSha,
    initiators: r.initiators,
    heads: r.heads,
    approvers: [...approvers].sort(),
    refusedAttempts: refused,
    executors: [...r.executors].sort(),
    environmentsDeployed: r.deployed,
    dutiesSegregated: r.findings.length === 0,
    segregationFindings: r.findings,
    runIds: runs.map((run) => run.runId),
    firstEventAt: times[0] ?? '',
    lastEventAt: times.at(-1) ?? '',
    ...(breakGlass.emergencies.length ? { emergencies: breakGlass.emergencies } : {}),
    ...(breakGlass.refused.length ? { refusedEmergencies: breakGlass.refused } : {}),
  };
}

/** A delivered change's workflow stays open until its pull request closes; say what it achieved. */
function outcomeOf(r: Reading): string {
  const { policy } = r;
  if (
    r.outcome === 'open' &&
    policy &&
    policy.environments.length > 0 &&
    policy.environments.every((e) => r.deployedAt.has(`${e.name}@${r.headSha}`))
  )
    return 'delivered (pull request still open)';
  return r.outcome;
}

function approvalEntry(
  at: string,
  signed: SignedApproval | undefined,
  via: 'signal' | 'update',
  senderIdentity: string | undefined,
): UnchainedEntry {
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

/**
 * The workflow's own view at each decision against the record derived from history: anyone it held to be an
 * initiator or whose approval it counted must be so in the record too, no approver it counted may be one it held
 * to be an initiator at that moment, and each policy it decided under must be one the history read. A
 * disagreement is a finding.
 */
function crossCheck(
  views: AuditViewMemo[],
  initiators: Initiators,
  approvers: Set<string>,
  policyDigests: Set<string>,
): string[] {
  const found = new Set<string>();
  for (const view of views) {
    const where = `at ${view.at === 'gate' ? `the ${view.environment} gate` : `approval attempt ${view.n}`} on ${shortSha(view.head)}`;
    for (const [who, why] of Object.entries(view.initiators ?? {}))
      if (!(who in initiators))
        found.add(
          `the workflow held ${who} to be an initiator (${why.join(', ')}) ${where}, which the record derived from history does not show`,
        );
    for (const who of view.counted ?? []) {
      if (who in (view.initiators ?? {}))
        found.add(`the workflow counted ${who}'s approval ${where}, but ${who} is an initiator`);
      if (!approvers.has(who))
        found.add(`the workflow counted ${who}'s approval ${where}, which the record derived from history does not`);
    }
    if (view.policyDigest && policyDigests.size > 0 && !policyDigests.has(view.policyDigest))
      found.add(`the workflow decided ${where} under policy ${view.policyDigest}, which history never read`);
  }
  return [...found];
}
