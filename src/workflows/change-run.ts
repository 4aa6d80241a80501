// One run of a change's workflow: its record, the policy in force, the handlers every input arrives through,
// and the waits of the workflow in ../change.ts. Nothing a run is handed is taken on trust: its input must name
// its own workflow ID, a carried record must come from its own previous run, events must be signed by the
// gateway, and every approval is decided again, under a freshly read policy, before a gate opens.
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import { decideCarriedRecord, decideRunIdentity, mergeEmergency, nextExpiry, shortSha } from '../policy/sod.ts';
import {
  APPROVAL_MEMO_KEY,
  AUDIT_VIEW_KEY,
  type ApprovalDecisionMemo,
  type AuditViewMemo,
} from '../shared/audit-memo.ts';
import { AUDIT_VIEW_MEMO_PATCH, EMERGENCY_CHANGE_PATCH, RESET_RECOVERY_PATCH } from '../shared/patches.ts';
import { openEmergency } from '../policy/sod.ts';
import type { EmergencyOutcome, SignedEmergency } from '../shared/emergency.ts';
import { parseChangeRef, workflowIdFor, type ChangeRef } from '../shared/change-ref.ts';
import type {
  ApprovalOutcome,
  ChangePolicy,
  ChangeStage,
  ChangeStatus,
  EnvironmentPolicy,
  RunInfo,
  SignedApproval,
} from '../shared/types.ts';
import { github, orchestrator } from './activities.ts';
import {
  alignEnvironments,
  checksPassedOn,
  currentApprovers,
  gateApprovers,
  fromLegacy,
  gateOf,
  gateWait,
  iso,
  lapseApprovals,
  newRecord,
  note,
  receiveApproval,
  receiveEmergency,
  reviewEmergencies,
  statusOf,
  useEmergency,
  voidApprovals,
  type ChangeRecord,
} from './change-record.ts';
import {
  approvalSignal,
  approvalUpdate,
  emergencyUpdate,
  pullRequestClosedSignal,
  pullRequestSignal,
  statusQuery,
  type ChangeWorkflowInput,
} from './definitions.ts';
import { EmergencyWatch } from './emergency.ts';
import { Inbox } from './inbox.ts';
import { startTeamsCard, type TeamsCardTracker } from './teams-card.ts';
import { Visibility } from './visibility.ts';

export interface ChangeResult {
  outcome: 'delivered' | 'abandoned';
  change: string;
  headSha: string;
  /** The change's record, for the run that starts when the pull request is reopened. */
  record?: ChangeRecord;
}

/** What one attempt at delivering a head came to; anything but `delivered` waits for new commits. */
export type HeadOutcome =
  'delivered' | 'checks-failed' | 'rejected' | 'failed' | 'unreadable' | 'continue-as-new' | 'superseded' | 'closed';

const DEFAULT_HISTORY_LIMIT = 10_000;
/** The history limit a start may ask for: low enough for tests, never so low that a run does nothing but continue. */
const MIN_HISTORY_LIMIT = 30;

export class ChangeRun {
  record: ChangeRecord;
  policy: ChangePolicy | undefined;
  private version = 0;
  private readonly ref: ChangeRef | undefined;
  private readonly visibility: Visibility;
  private readonly inbox: Inbox;
  private readonly emergencies: EmergencyWatch;
  private teamsCard: TeamsCardTracker | undefined;

  constructor(private readonly input: ChangeWorkflowInput) {
    this.ref = changeRefOf(input);
    this.record = newRecord(this.ref ? `${this.ref.owner}/${this.ref.repo}#${this.ref.number}` : '');
    this.visibility = new Visibility(() => this.status());
    this.inbox = new Inbox(this);
    this.emergencies = new EmergencyWatch(this);
  }

  now(): number {
    return Date.now();
  }

  get closed(): boolean {
    return this.record.closed !== undefined;
  }

  /** The policy, once the run has begun: handlers registered before that wait here. */
  async ready(): Promise<ChangePolicy> {
    for (;;) {
      if (this.policy) return this.policy;
      await condition(() => this.policy !== undefined);
    }
  }

  status(): ChangeStatus {
    return statusOf(this.record, this.policy, this.now());
  }

  changed(): void {
    this.version++;
    this.visibility.update(this.record, this.policy, this.now());
  }

  setStage(stage: ChangeStage, waitingFor: string): void {
    if (this.record.stage === stage && this.record.waitingFor === waitingFor) return;
    if (this.record.stage !== stage)
      note(this.record, this.now(), 'stage', `${this.record.stage} -> ${stage}`, { sha: this.record.headSha });
    this.record.stage = stage;
    this.record.waitingFor = waitingFor;
    this.changed();
  }

  /** Every input arrives here: signals and the approval update (decided, then answered), and the status query. */
  listen(): void {
    setHandler(pullRequestSignal, (event) => this.inbox.receive(event));
    setHandler(pullRequestClosedSignal, (closed) => this.inbox.close(closed));
    setHandler(approvalSignal, async (signed) => void (await this.approve(signed)));
    // A refusal is an answer, not a validation error, so that every attempt is in the history.
    setHandler(approvalUpdate, (signed) => this.approve(signed));
    setHandler(emergencyUpdate, (signed) => this.declareEmergency(signed));
    setHandler(statusQuery, () => this.status());
    this.inbox.start();
    this.visibility.start(this.emergencies);
  }

  private async approve(signed: SignedApproval): Promise<ApprovalOutcome> {
    const policy = await this.ready();
    const decision = receiveApproval(this.record, policy, signed, this.now());
    const counted = decision.verdict === 'counted';
    const memo: ApprovalDecisionMemo = {
      n: this.record.approvals.length - 1,
      counted,
      reason: decision.reason,
      environments: decision.environments,
    };
    upsertMemo({
      [APPROVAL_MEMO_KEY]: memo,
      ...(patched(AUDIT_VIEW_MEMO_PATCH) ? { [AUDIT_VIEW_KEY]: this.auditView('approval', memo.n) } : {}),
    });
    if (this.record.rejection?.sha === this.record.headSha && this.record.stage === 'awaiting-approval')
      this.setStage('rejected', this.rejectionWait());
    if (this.record.emergencies?.length) reviewEmergencies(this.record, policy, this.now());
    this.changed();
    return {
      counted,
      verdict: decision.verdict,
      reason: decision.reason,
      environments: decision.environments,
      stage: this.record.stage,
    };
  }

  /** Break-glass: decided (src/policy/sod.ts), recorded, answered; a refusal is an answer, in the history too. */
  private async declareEmergency(signed: SignedEmergency): Promise<EmergencyOutcome> {
    const policy = await this.ready();
    // Marks the histories that hold an emergency: workers from before break-glass cannot replay them.
    patched(EMERGENCY_CHANGE_PATCH);
    const outcome = receiveEmergency(this.record, policy, signed, this.now());
    this.changed();
    return outcome;
  }

  /** Under an open emergency that may override failing checks, a head whose checks failed still goes to its gates. */
  emergencyOverridesChecks(head: string): boolean {
    const open = openEmergency(this.record.emergencies, this.record.headSha, this.now());
    return open?.sha === head && this.policy?.emergency?.overrideFailingChecks === true;
  }

  /**
   * Where the run's record comes from: a run continued as new takes its predecessor's, but only when that run
   * was one of the change's own; a run started afresh takes what the change's earlier runs left. Anything
   * else — another workflow ID, a record handed to a start, a predecessor on another task queue — fails the run.
   */
  async begin(): Promise<void> {
    const info = workflowInfo();
    const identity = decideRunIdentity(info.workflowId, this.ref && workflowIdFor(this.ref));
    if (identity.verdict === 'refused' || !this.ref) return this.refuseStart(identity.reason);
    const continuedFrom = info.continuedFromExecutionRunId;
    const begun = await orchestrator.beginChange({
      change: this.record.change,
      repo: `${this.ref.owner}/${this.ref.repo}`,
      workflowId: info.workflowId,
      runId: info.runId,
      ...(continuedFrom ? { continuedFromRunId: continuedFrom } : {}),
    });
    let how: RunInfo['how'] = 'first';
    if (this.input.carried !== undefined || continuedFrom) {
      // The task queue as the server has it (in the activity's result): a replaying worker polls another one.
      const origin = decideCarriedRecord({
        workflowId: info.workflowId,
        ...(continuedFrom ? { continuedFromRunId: continuedFrom } : {}),
        taskQueue: begun.taskQueue,
        ...(begun.predecessor ? { predecessor: begun.predecessor } : {}),
      });
      if (origin.verdict === 'refused') return this.refuseStart(origin.reason);
      if (this.input.carried === undefined)
        return this.refuseStart(`run ${continuedFrom} continued as new without the change's record`);
      this.record = isRecord(this.input.carried)
        ? this.input.carried
        : fromLegacy(this.input.carried as Record<string, unknown>, this.now());
      how = 'continued';
    } else if (begun.prior) {
      this.record = reopenedRecord(this.record.change, begun.prior, this.now());
      how = 'reopened';
    }
    this.record.runs.push({ runId: info.runId, startedAt: iso(this.now()), how });
    this.policy = begun.policy;
    this.record.policyDigest = begun.policy.digest;
    alignEnvironments(this.record, begun.policy);
    this.changed();
    void this.recoverReset();
  }

  /**
   * A reset run (its run ID is not the one its start recorded) copied the history of the run it was reset from
   * only up to the reset point: what that run took after it — an emergency declared, a deploy under it — is
   * not in this record. In the first workflow task past the reset point the run reads it from that run's
   * history (src/activities/change-history.ts) and keeps it. Replaying the copied history, patched() is false
   * (no marker there); the first task that is not a replay records the marker, so a replay finds it again.
   */
  private async recoverReset(): Promise<void> {
    const info = workflowInfo();
    if (!this.ref || info.runId === info.originalExecutionRunId) return;
    await condition(() => patched(RESET_RECOVERY_PATCH));
    const policy = await this.ready();
    let found: Awaited<ReturnType<typeof orchestrator.recoverReset>>;
    try {
      found = await orchestrator.recoverReset({
        change: this.record.change,
        repo: `${this.ref.owner}/${this.ref.repo}`,
        workflowId: info.workflowId,
        runId: info.runId,
      });
    } catch (error) {
      if (isCancellation(error)) throw error;
      note(
        this.record,
        this.now(),
        'reset-unrecovered',
        `run ${info.runId} is a reset, but the run it was reset from could not be read: ${error instanceof Error ? error.message : String(error)}`,
      );
      this.changed();
      return;
    }
    const record = this.record;
    for (const n of found.nonces) if (!record.nonces.includes(n)) record.nonces.push(n);
    const ids: string[] = [];
    for (const e of found.emergencies) {
      const list = (record.emergencies ??= []);
      const at = list.findIndex((x) => x.id === e.id);
      const merged = mergeEmergency(at >= 0 ? list[at] : undefined, e);
      if (at >= 0) list[at] = merged;
      else list.push(merged);
      ids.push(`${e.declaredBy}'s for ${shortSha(e.sha)}`);
    }
    // An approval this run holds may already be the review of a deploy it did not know of.
    if (record.emergencies?.length) reviewEmergencies(record, policy, this.now());
    note(
      record,
      this.now(),
      'reset-recovered',
      `run ${info.runId} is a reset: ${found.runIds.length ? `read run(s) ${found.runIds.join(', ')}` : 'no run it was reset from could be read'}; ${ids.length ? `emergencies kept: ${ids.join('; ')}` : 'no emergency'}${found.notes.length ? ` (${found.notes.join('; ')})` : ''}`,
    );
    this.changed();
  }

  private refuseStart(reason: string): never {
    note(this.record, this.now(), 'start-refused', reason);
    this.record.stage = 'failed';
    this.record.waitingFor = `nothing: this run was refused (${reason})`;
    this.changed();
    throw ApplicationFailure.nonRetryable(reason, 'UntrustedStart');
  }

  environments(): EnvironmentPolicy[] {
    return this.policy?.environments ?? [];
  }

  /** Already delivered there at this head (an earlier attempt or run did it). */
  deployedAt(env: EnvironmentPolicy, head: string): boolean {
    const status = this.record.environments.find((e) => e.name === env.name);
    return status?.state === 'deployed' && status.deploy?.sha === head;
  }

  checksPassed(head: string): boolean {
    return checksPassedOn(this.record, head);
  }

  checksRanOn(head: string): boolean {
    return this.record.checks?.sha === head;
  }

  /** Waits until there is a head to work on, or the pull request closed. */
  async firstHead(): Promise<void> {
    await condition(() => this.record.headSha !== '' || this.closed);
  }

  /** Runs `attempt` for `head` until it ends, new commits replace the head, or the pull request closes. */
  async whileHeadStands(head: string, attempt: () => Promise<HeadOutcome>): Promise<HeadOutcome> {
    const scope = new CancellationScope();
    const running = scope.run(attempt);
    let done: HeadOutcome | undefined;
    running.then(
      (o) => void (done = o),
      () => undefined,
    );
    await condition(() => done !== undefined || this.record.headSha !== head || this.closed);
    if (done !== undefined) return done;
    // The revokes in delivery still happen: they run in a non-cancellable scope.
    scope.cancel();
    await running.catch((error: unknown) => {
      if (!isCancellation(error)) throw error;
    });
    return this.closed ? 'closed' : 'superseded';
  }

  /** After an attempt that did not deliver: wait for new commits, a readable head, or the end. */
  async untilNewHead(head: string, outcome: HeadOutcome): Promise<void> {
    const unreadable = outcome === 'unreadable';
    await condition(
      () =>
        this.record.headSha !== head ||
        this.closed ||
        this.historyTooLong() ||
        (outcome === 'checks-failed' && this.emergencyOverridesChecks(head)) ||
        (unreadable && this.record.head?.sha === head && !this.record.blocked),
    );
  }

  /** Per environment: waits until the gate is open, then confirms it against a fresh policy and GitHub. */
  async gate(env: EnvironmentPolicy, head: string): Promise<'open' | 'rejected' | 'continue-as-new'> {
    for (;;) {
      const policy = await this.ready();
      lapseApprovals(this.record, policy, this.now());
      if (this.record.rejection?.sha === head) {
        this.setStage('rejected', this.rejectionWait());
        return 'rejected';
      }
      const waiting = gateWait(this.record, policy, env, this.now());
      if (waiting === undefined) {
        if (await this.confirmed(env, head)) return 'open';
        continue;
      }
      this.setStage('awaiting-approval', waiting);
      this.visibility.askApprovers(this.record, policy, head);
      (this.teamsCard ??= startTeamsCard(this.record, () => this.status())).ask(head);
      if (this.historyTooLong()) return 'continue-as-new';
      const before = this.version;
      const woken = () => this.version !== before || this.historyTooLong();
      const expiry = nextExpiry(
        policy,
        this.record.approvals.filter((r) => r.claim.sha === head),
        this.now(),
      );
      if (expiry === undefined) await condition(woken);
      else await condition(woken, Math.max(1, expiry - this.now()));
    }
  }

  /**
   * Just before a deploy: the policy read again (a removed approver or a revoked key counts no longer) and the
   * pull request as GitHub has it now (still open, same head, same base, its approving reviews standing).
   */
  private async confirmed(env: EnvironmentPolicy, head: string): Promise<boolean> {
    const record = this.record;
    const reviewIds = record.approvals
      .filter(
        (r) =>
          r.claim.channel === 'github' && r.counted && !r.voidedAt && r.claim.sha === head && r.claim.evidence.reviewId,
      )
      .map((r) => r.claim.evidence.reviewId as string);
    const confirmation = await github.confirmDelivery({ change: record.change, sha: head, reviewIds });
    this.policy = confirmation.policy;
    record.policyDigest = confirmation.policy.digest;
    const now = this.now();
    const { pull, reviews } = confirmation;
    if (pull.state !== 'open') {
      record.blocked = 'GitHub says the pull request is closed';
    } else if (pull.headSha !== head) {
      record.blocked = `GitHub shows ${shortSha(pull.headSha)} as the head, not ${shortSha(head)}: waiting for its push event`;
      voidApprovals(record, now, () => true, `void: GitHub's head is now ${shortSha(pull.headSha)}`);
    } else if (record.head && pull.baseRef !== record.head.baseRef) {
      voidApprovals(
        record,
        now,
        () => true,
        `void: the pull request's base changed from ${record.head.baseRef} to ${pull.baseRef}`,
      );
      note(
        record,
        now,
        'base-changed',
        `GitHub says the pull request now targets ${pull.baseRef} (was ${record.head.baseRef}): approvals void, its commits are read again`,
        { sha: head },
      );
      record.head = { ...record.head, baseRef: pull.baseRef };
      this.inbox.refresh(head);
    } else if (!reviews.ok) {
      voidApprovals(
        record,
        now,
        (r) => r.claim.channel === 'github' && r.claim.sha === head,
        `void: GitHub no longer confirms the review (${reviews.reason})`,
      );
      note(record, now, 'reviews-not-confirmed', `GitHub no longer confirms the approving reviews: ${reviews.reason}`, {
        sha: head,
      });
    }
    lapseApprovals(record, confirmation.policy, now);
    const gate = gateOf(record, confirmation.policy, env, now);
    if (gate.open) {
      if (gate.emergency) {
        useEmergency(record, gate.emergency, env.name, now);
        // An approval given since the declaration, while the gate still waited, may already be the review.
        reviewEmergencies(record, confirmation.policy, now);
      }
      note(
        record,
        now,
        'gate-open',
        `${env.name}: ${gate.emergency ? 'opened by the emergency' : 'approved'} under policy ${confirmation.policy.digest ?? '(no digest)'}; GitHub confirms ${shortSha(head)} into ${pull.baseRef}`,
        { sha: head },
      );
      if (patched(AUDIT_VIEW_MEMO_PATCH))
        upsertMemo({ [AUDIT_VIEW_KEY]: this.auditView('gate', undefined, env, gate.emergency) });
    }
    this.changed();
    return gate.open;
  }

  /** What the workflow itself holds at a decision, for the audit to cross-check against what it derives. */
  private auditView(at: AuditViewMemo['at'], n?: number, env?: EnvironmentPolicy, emergency?: string): AuditViewMemo {
    const policy = this.policy;
    const now = this.now();
    const counted = !policy
      ? []
      : env
        ? gateApprovers(this.record, policy, env, now)
        : currentApprovers(this.record, policy, now);
    return {
      at,
      ...(n !== undefined ? { n } : {}),
      ...(env ? { environment: env.name } : {}),
      head: this.record.headSha,
      initiators: this.record.initiators,
      counted,
      ...(emergency ? { emergency: this.record.emergencies?.find((e) => e.id === emergency)?.declaredBy ?? '' } : {}),
      ...(policy?.digest ? { policyDigest: policy.digest } : {}),
    };
  }

  rejectionWait(): string {
    return `new commits: ${this.record.rejection?.person ?? 'a reviewer'} requested changes to ${shortSha(this.record.headSha)}`;
  }

  delivered(head: string): void {
    this.setStage(
      'delivered',
      this.policy?.merge
        ? `merge of ${shortSha(head)}`
        : `nothing: ${shortSha(head)} is delivered to every environment`,
    );
  }

  async mergeIfConfigured(head: string): Promise<boolean> {
    if (!this.policy?.merge) return false;
    try {
      const merged = await orchestrator.mergePullRequest({ change: this.record.change, sha: head });
      note(this.record, this.now(), merged.merged ? 'merged' : 'merge-skipped', merged.reason, { sha: head });
      // Merged is closed: the webhook that says so finds the change ended.
      if (merged.merged) this.record.closed = { at: iso(this.now()), merged: true, closedBy: 'foureyes' };
      this.changed();
      return merged.merged;
    } catch (error) {
      if (isCancellation(error)) throw error;
      note(
        this.record,
        this.now(),
        'merge-failed',
        `merging ${shortSha(head)} failed: ${error instanceof Error ? error.message : String(error)}`,
        { sha: head },
      );
      this.changed();
      return false;
    }
  }

  historyTooLong(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength > historyLimit(this.input);
  }

  /** Carries the whole record into a fresh run at a quiet point. */
  async continueAsNew(): Promise<never> {
    await condition(allHandlersFinished);
    await this.visibility.flush();
    await this.teamsCard?.flush();
    note(
      this.record,
      this.now(),
      'continued-as-new',
      `history of run ${workflowInfo().runId} reached ${workflowInfo().historyLength} events; the record continues in a new run`,
    );
    this.endRun('continued-as-new');
    return await continueAsNew<(input: ChangeWorkflowInput) => Promise<ChangeResult>>({
      change: this.record.change,
      carried: this.record,
      ...(this.input.historyEventLimit ? { historyEventLimit: this.input.historyEventLimit } : {}),
    });
  }

  /**
   * The pull request closed: the record goes into the result, for a run that starts when it reopens. Reopened
   * before this run could end, the run goes on instead (undefined).
   */
  async finish(): Promise<ChangeResult | undefined> {
    // A deploy under an emergency owes its retroactive review: the change stays open for it.
    await this.emergencies.reviewed();
    const delivered = this.record.stage === 'delivered';
    if (!delivered) this.setStage('abandoned', 'nothing: the pull request is closed');
    this.endRun(delivered ? 'delivered' : 'abandoned');
    await this.visibility.flush();
    await this.teamsCard?.flush();
    await condition(() => allHandlersFinished() && !this.record.pending.some((e) => e.kind === 'reopened'));
    if (!this.closed) {
      const run = this.record.runs.find((r) => r.runId === workflowInfo().runId);
      if (run) {
        delete run.endedAt;
        delete run.outcome;
      }
      return undefined;
    }
    return {
      outcome: delivered ? 'delivered' : 'abandoned',
      change: this.record.change,
      headSha: this.record.headSha,
      record: this.record,
    };
  }

  private endRun(outcome: string): void {
    const run = this.record.runs.find((r) => r.runId === workflowInfo().runId);
    if (run) Object.assign(run, { endedAt: iso(this.now()), outcome });
  }
}

function changeRefOf(input: ChangeWorkflowInput | undefined): ChangeRef | undefined {
  try {
    return typeof input?.change === 'string' ? parseChangeRef(input.change) : undefined;
  } catch {
    return undefined;
  }
}

function historyLimit(input: ChangeWorkflowInput): number {
  const asked = input.historyEventLimit;
  return typeof asked === 'number' && Number.isFinite(asked)
    ? Math.max(MIN_HISTORY_LIMIT, asked)
    : DEFAULT_HISTORY_LIMIT;
}

function isRecord(carried: unknown): carried is ChangeRecord {
  return typeof carried === 'object' && carried !== null && (carried as { v?: unknown }).v === 2;
}

/** What the change's earlier runs leave to a run started when the pull request reopens. */
function reopenedRecord(
  change: string,
  prior: NonNullable<Awaited<ReturnType<typeof orchestrator.beginChange>>['prior']>,
  now: number,
): ChangeRecord {
  const record = isRecord(prior.record) && prior.record.change === change ? prior.record : newRecord(change);
  for (const [who, roles] of Object.entries(prior.initiators))
    for (const role of roles) if (!(record.initiators[who] ??= []).includes(role)) record.initiators[who]?.push(role);
  for (const n of prior.nonces) if (!record.nonces.includes(n)) record.nonces.push(n);
  // Emergencies of runs that ended without a record (terminated): newer than the record's, and still owed.
  for (const e of prior.emergencies ?? []) {
    const list = (record.emergencies ??= []);
    const at = list.findIndex((x) => x.id === e.id);
    if (at >= 0) list[at] = e;
    else list.push(e);
  }
  const known = new Set(record.runs.map((r) => r.runId));
  record.runs = [...prior.runs.filter((r) => !known.has(r.runId)), ...record.runs].sort((a, b) =>
    a.startedAt.localeCompare(b.startedAt),
  );
  delete record.closed;
  record.pending = [];
  voidApprovals(record, now, () => true, 'void: the pull request was closed');
  note(
    record,
    now,
    'reopened',
    `the change starts again from its earlier runs: ${prior.notes.join('; ') || 'nothing recorded'}`,
  );
  return record;
}
