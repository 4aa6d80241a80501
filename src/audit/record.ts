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

export function buildAuditRecord(change: string, runs: RunHistory[]): AuditRecord {
  const entries: UnchainedEntry[] = [];
  let policy: ChangePolicy | undefined;
  const initiators: Initiators = {};
  // Each with the people of the policy in force when the workflow used it (resolved at the end if none was read yet).
  const participations: Array<{ part: Participation; people?: People }> = [];
  const heads: HeadView[] = [];
  // Head entries are resolved at the end when no policy had been read before them (core v1 reads it late).
  const resolveLater: Array<(people: People) => void> = [];
  let lastEventHead = '';
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
  const views: AuditViewMemo[] = [];
  const policyDigests = new Set<string>();
  const updateResults = new Map<string, ApprovalOutcome>();
  const declarations: DeclarationSeen[] = [];
  let emergencyMemo: unknown;
  const updateAttempt = new Map<string, number>();

  const push = (entry: UnchainedEntry) => entries.push(entry);
  /** A deploy or verify step that ran: deployed, failed with its exit code and output tail, or verified. */
  const recordStep = (
    step: 'deploy' | 'verify',
    report: DeployReport | VerifyReport,
    taskQueue: string,
    at: string,
    executor: string | undefined,
  ) => {
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
      push({
        at,
        kind: 'verify',
        summary: `${failed ? stepFailureText('verify', report) : `${report.environment}: verification passed at ${shortSha(report.sha)}`}; ${leaseText(report.leases)}`,
        data,
      });
      return;
    }
    if (executor) executors.add(executor);
    if (!isDeployZoneQueue(taskQueue, report.environment))
      findings.push(`${report.environment} was deployed from task queue ${taskQueue}, outside its deploy zone`);
    if (!failed) {
      deployed.push(report.environment);
      deployedAt.add(`${report.environment}@${report.sha}`);
    }
    push({
      at,
      kind: 'deploy',
      summary: `${failed ? stepFailureText('deploy', report) : `${report.environment}: ${(report as DeployReport).status} ${shortSha(report.sha)}`} by the pipeline (${executor ?? 'deploy worker'}); ${leaseText(report.leases)}`,
      data,
    });
  };
  /** A head as the workflow read it: its commits, each identity resolved under the policy in force then. */
  const pushHead = (
    at: string,
    source: string,
    sha: string,
    commits: CommitInfo[],
    incomplete: string | undefined,
    part: Participation,
    data: Record<string, unknown>,
    summary: string,
  ) => {
    const view: HeadView = { sha, source, commits: [], ...(incomplete ? { incomplete } : {}) };
    heads.push(view);
    participations.push({ part: { ...part, commits }, ...(policy ? { people: policy.people } : {}) });
    const entry: UnchainedEntry = { at, kind: 'pull-request-read', summary, data: { ...data, commits: [] } };
    const resolve = (people: People) => {
      view.commits = commitViews(people, commits);
      (entry.data as Record<string, unknown>).commits = view.commits.map((c, i) => ({
        ...c,
        message: clip(commits[i]?.message, 1000),
      }));
      if (view.commits.length) entry.summary = `${summary}: ${clip(commitsText(view.commits), 2000)}`;
    };
    if (policy) resolve(policy.people);
    else resolveLater.push(resolve);
    push(entry);
  };
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
        // A run started afresh (the pull request reopened) reopens the change: its outcome is this run's.
        if (!a.continuedExecutionRunId) outcome = 'open';
        push({
          at,
          kind: 'run-started',
          summary: `workflow run ${run.runId} started${a.continuedExecutionRunId ? ` (continues run ${a.continuedExecutionRunId})` : ''}`,
          data: { runId: run.runId, taskQueue: a.taskQueue?.name },
        });
      } else if (event.workflowExecutionSignaledEventAttributes) {
        const a = event.workflowExecutionSignaledEventAttributes;
        const [arg] = decodePayloads(a.input);
        if (a.signalName === 'pullRequest') {
          const pr = arg as PullRequestEvent;
          lastEventHead = pr?.headSha ?? '';
          // Resolved against the policy's people at the end: the signal that starts a change precedes loadPolicy.
          // Core v2 applies only events the gateway signed: the others are checked against the policy's keys at the end.
          // It takes only the pusher (and an opening author) from an event; commits come from its own look-up.
          // Core v1 took commits from the event when it carried them.
          signedEvents.push({
            event: pr,
            participation: {
              ...(pr.kind === 'opened' || signedEvents.length === 0 ? { author: pr.author } : {}),
              commits: v2 ? [] : (pr.commits ?? []),
              pushers: pr.pusher ? [pr.pusher] : [],
            },
          });
          if (!v2 && pr.commits?.length) {
            const view: HeadView = { sha: pr.headSha, source: 'event', commits: [] };
            heads.push(view);
            resolveLater.push((people) => (view.commits = commitViews(people, pr.commits ?? [])));
          }
          push({
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
          });
        } else if (a.signalName === 'pullRequestClosed') {
          const closed = arg as PullRequestClosed;
          push({
            at,
            kind: 'closed',
            summary: `pull request ${closed.merged ? 'merged' : 'closed'}${closed.closedBy ? ` by ${closed.closedBy}` : ''}`,
            data: closed,
          });
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
        if (a.acceptedRequest?.input?.name === 'emergency') {
          const entry = declarationEntry(at, arg as SignedEmergency, a.acceptedRequest?.meta?.identity ?? undefined);
          push(entry);
          declarations.push({
            entry,
            signed: arg as SignedEmergency,
            updateId: a.protocolInstanceId ?? a.acceptedRequest?.meta?.updateId ?? '',
            trustedKeys: policy?.approvalKeys ?? [],
            ...(policy?.emergency ? { reviewWithinMs: policy.emergency.reviewWithinMs } : {}),
          });
          continue;
        }
        const entry = approvalEntry(
          at,
          arg as SignedApproval,
          'update',
          a.acceptedRequest?.meta?.identity ?? undefined,
        );
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
        const emergencies = fields[EMERGENCY_MEMO_KEY];
        if (emergencies) emergencyMemo = decodePayloads({ payloads: [emergencies] })[0];
        const view = fields[AUDIT_VIEW_KEY];
        if (view) {
          const [seen] = decodePayloads({ payloads: [view] });
          if (seen && typeof seen === 'object') views.push(seen as AuditViewMemo);
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
            pushHead(
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
            break;
          }
          case 'lookUpPullRequestChanges': {
            // Core v1's look-up of the event's head: commits and files only.
            const found = result as { commits?: CommitInfo[]; changedFiles?: string[] };
            const commits = found?.commits ?? [];
            const sha =
              (pending.input as { sha?: string; headSha?: string })?.sha ??
              (pending.input as { headSha?: string })?.headSha ??
              lastEventHead;
            pushHead(
              at,
              'lookUpPullRequestChanges',
              sha,
              commits,
              undefined,
              {},
              { headSha: sha, changedFiles: (found?.changedFiles ?? []).slice(0, 200) },
              `GitHub: head ${shortSha(sha)}, ${commits.length} commit(s), ${found?.changedFiles?.length ?? 0} file(s)`,
            );
            break;
          }
          case 'beginChange':
          case 'confirmDelivery':
          case 'loadPolicy': {
            policy = (
              pending.type === 'loadPolicy' ? result : (result as { policy: ChangePolicy }).policy
            ) as ChangePolicy;
            if (policy.digest) policyDigests.add(policy.digest);
            // A run started when the pull request reopened takes the initiators of the change's earlier runs.
            const prior =
              pending.type === 'beginChange' ? (result as { prior?: { initiators?: Initiators } }).prior : undefined;
            for (const [who, roles] of Object.entries(prior?.initiators ?? {}))
              for (const role of roles) addInitiator(initiators, who, `${role} (earlier run)`);
            push({
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
            break;
          }
          case 'runChecks': {
            const report = result as ChecksReport;
            push({
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
            });
            break;
          }
          case 'deploy':
          case 'verify':
            recordStep(pending.type, result as DeployReport & VerifyReport, pending.taskQueue, at, executor);
            break;
          case 'revokeOutstanding': {
            const leases = (result as LeaseRecord[]) ?? [];
            const env = (pending.input as { environment?: string })?.environment;
            push({
              at,
              kind: 'revoke',
              summary: `${env}: ${leases.length ? `revoked ${leases.length} outstanding lease(s): ${leases.map((l) => l.leaseId).join(', ')}` : 'no lease outstanding'}`,
              data: { environment: env, leases, executor },
            });
            break;
          }
          case 'acquireLane':
          case 'releaseLane': {
            // The environment's lane: one deploy at a time (src/workflows/lane.ts).
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
            push({
              at,
              kind: pending.type === 'acquireLane' ? 'lane-acquired' : 'lane-released',
              summary,
              data: { repo: call.repo, environment: call.environment, ...answer, executor },
            });
            break;
          }
          default:
            push({
              at,
              kind: `activity:${pending.type}`,
              summary: `${pending.type} completed`,
              data: { result: typeof result === 'object' ? result : String(result), executor },
            });
        }
      } else if (event.activityTaskFailedEventAttributes || event.activityTaskTimedOutEventAttributes) {
        const a = event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
        const pending = scheduled.get(String(a?.scheduledEventId ?? ''));
        if (!pending || QUIET_ACTIVITIES.has(pending.type)) continue;
        const message = a?.failure?.message ?? 'timed out';
        // A failed command recorded before failed commands were results: its report is in the failure's details.
        const info = a?.failure?.applicationFailureInfo;
        const carried = info ? reportOfFailure(info.type, decodePayloads(info.details)[0]) : undefined;
        if (carried && carried.step === pending.type) {
          recordStep(carried.step, carried.report, pending.taskQueue, at, pending.identity);
          continue;
        }
        push({
          at,
          kind: 'activity-failed',
          summary: `${pending.type} failed: ${clip(message, 300)}`,
          data: { type: pending.type, input: pending.input, message: clip(message, 2000), executor: pending.identity },
        });
      } else if (event.activityTaskCanceledEventAttributes) {
        const pending = scheduled.get(String(event.activityTaskCanceledEventAttributes.scheduledEventId ?? ''));
        if (pending && !QUIET_ACTIVITIES.has(pending.type))
          push({
            at,
            kind: 'activity-cancelled',
            summary: `${pending.type} cancelled`,
            data: { type: pending.type, input: pending.input },
          });
      } else if (event.workflowExecutionContinuedAsNewEventAttributes) {
        push({
          at,
          kind: 'continued-as-new',
          summary: `history bounded: continued as new run ${event.workflowExecutionContinuedAsNewEventAttributes.newExecutionRunId}`,
          data: { next: event.workflowExecutionContinuedAsNewEventAttributes.newExecutionRunId },
        });
      } else if (event.workflowExecutionCompletedEventAttributes) {
        const [result] = decodePayloads(event.workflowExecutionCompletedEventAttributes.result);
        const r = result as { outcome?: string; headSha?: string } | undefined;
        outcome = r?.outcome ?? 'completed';
        if (r?.headSha) headSha = r.headSha;
        push({
          at,
          kind: 'completed',
          summary: `change ${outcome}${r?.headSha ? ` at ${shortSha(r.headSha)}` : ''}`,
          data: result,
        });
      } else if (
        event.workflowExecutionFailedEventAttributes ||
        event.workflowExecutionTerminatedEventAttributes ||
        event.workflowExecutionCanceledEventAttributes ||
        event.workflowExecutionTimedOutEventAttributes
      ) {
        outcome = event.workflowExecutionTerminatedEventAttributes
          ? 'terminated'
          : event.workflowExecutionCanceledEventAttributes
            ? 'cancelled'
            : event.workflowExecutionTimedOutEventAttributes
              ? 'timed out'
              : 'failed';
        const reason =
          event.workflowExecutionTerminatedEventAttributes?.reason ??
          event.workflowExecutionFailedEventAttributes?.failure?.message ??
          '';
        push({
          at,
          kind: 'ended',
          summary: `workflow ${outcome}${reason ? `: ${clip(reason)}` : ''}`,
          data: { outcome, reason },
        });
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
    if (!v2 || decideEvent(event, policy?.approvalKeys ?? [], change).verdict === 'accepted')
      participations.push({ part: participation });
  }
  for (const { part, people } of participations) collectInitiators(people ?? policy?.people ?? [], part, initiators);
  for (const resolve of resolveLater) resolve(policy?.people ?? []);
  for (const entry of entries) {
    if (entry.kind === 'pull-request') headSha = (entry.data as { headSha: string }).headSha || headSha;
  }
  const initiatorNames = Object.keys(initiators);
  for (const approver of approvers) {
    if (initiatorNames.includes(approver))
      findings.push(`${approver} both initiated (${(initiators[approver] ?? []).join(', ')}) and approved`);
  }
  findings.push(...crossCheck(views, initiators, approvers, policyDigests));
  const breakGlass = auditEmergencies({
    change,
    entries,
    declarations,
    outcomes: updateResults,
    memo: emergencyMemo,
    initiators,
    finalKeys: policy?.approvalKeys ?? [],
    lastEventAt: runs
      .map((r) => (r.events.at(-1) ? eventTime(r.events.at(-1) as HistoryEvent) : ''))
      .reduce((x, y) => (y > x ? y : x), ''),
  });
  findings.push(...breakGlass.findings);
  // A deploy under a verified emergency owes its review instead (a finding above when it is overdue or late).
  if (
    ordinaryDeploys(entries, breakGlass.emergencies) > 0 &&
    approvers.size === 0 &&
    (policy?.environments.some((e) => e.required > 0) ?? true)
  )
    findings.push('deployed without any counted approval');

  // A delivered change's workflow stays open until its pull request closes; say what it achieved.
  if (
    outcome === 'open' &&
    policy &&
    policy.environments.length > 0 &&
    policy.environments.every((e) => deployedAt.has(`${e.name}@${headSha}`))
  ) {
    outcome = 'delivered (pull request still open)';
  }
  const times = entries
    .map((e) => e.at)
    .filter(Boolean)
    .sort();
  const summary: AuditSummary = {
    change,
    outcome,
    headSha,
    initiators,
    heads,
    approvers: [...approvers].sort(),
    refusedAttempts: refused,
    executors: [...executors].sort(),
    environmentsDeployed: deployed,
    dutiesSegregated: findings.length === 0,
    segregationFindings: findings,
    runIds: runs.map((r) => r.runId),
    firstEventAt: times[0] ?? '',
    lastEventAt: times.at(-1) ?? '',
    ...(breakGlass.emergencies.length ? { emergencies: breakGlass.emergencies } : {}),
    ...(breakGlass.refused.length ? { refusedEmergencies: breakGlass.refused } : {}),
  };
  return { summary, entries, controls: deriveControls(summary, entries) };
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
