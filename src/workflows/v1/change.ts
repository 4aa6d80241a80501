// FROZEN (core v1): the code that runs started before core v2 (the patch `core-v2` in ../change.ts) keep
// running and replaying with, unchanged. New behaviour goes into the v2 modules beside ../change.ts, never here.
// changeWorkflow: one pull request from first push to production, under Segregation of Duties.
//
//   1. whoever opens the change or pushes to it is an initiator; new commits void every approval;
//   2. the change's own checks run against the exact head commit, in the checks zone;
//   3. per environment, in order: wait until enough eligible people who took no part in the change have
//      approved that exact head (sod.ts decides, every attempt is recorded);
//   4. then only the pipeline delivers: deploy -> verify in the deploy zone, and the leases are revoked
//      whatever happens.
// The event history is the audit trail; the state survives continue-as-new in full.
import {
  ActivityCancellationType,
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  patched,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { ChecksActivities, DeployActivities, OrchestratorActivities } from './activity-types.ts';
import { addInitiator, gateState, shortSha } from './sod.ts';
import {
  ApproversAttr,
  AuthorAttr,
  HeadShaAttr,
  InitiatorsAttr,
  PullNumberAttr,
  RepoAttr,
  StageAttr,
} from '../../shared/search-attributes.ts';
import { zoneQueue } from '../../shared/task-queues.ts';
import { APPROVAL_MEMO_KEY, type ApprovalDecisionMemo } from '../../shared/audit-memo.ts';
import type {
  ApprovalOutcome,
  ChangePolicy,
  ChangeStage,
  DeployInput,
  EnvironmentPolicy,
  EnvironmentStatus,
  PullRequestClosed,
  PullRequestEvent,
  SignedApproval,
} from '../../shared/types.ts';
import {
  alignEnvironments,
  currentApprovers,
  expireApprovals,
  newChangeState,
  note,
  receiveApproval,
  receivePullRequest,
  statusOf,
  voidApprovals,
  type ChangeState,
} from './change-state.ts';
import {
  approvalSignal,
  approvalUpdate,
  pullRequestClosedSignal,
  pullRequestSignal,
  statusQuery,
  type ChangeWorkflowInput,
} from '../definitions.ts';
import { startReporter, type Reporter } from './reporter.ts';
import { startTeamsCard, type TeamsCardTracker } from '../teams-card.ts';

export interface ChangeResult {
  outcome: 'delivered' | 'abandoned';
  change: string;
  headSha: string;
}

/** What one attempt at delivering a head came to; anything but `delivered` waits for new commits. */
type HeadOutcome = 'delivered' | 'checks-failed' | 'rejected' | 'failed' | 'continue-as-new';

const DEFAULT_HISTORY_LIMIT = 10_000;
// A deploy step may take its configured timeout, plus the time to lease and revoke.
const DEPLOY_MARGIN_MS = 120_000;

const chat = proxyActivities<OrchestratorActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});

const orchestrator = proxyActivities<OrchestratorActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['UnknownRepository'] },
});

// The commits and files of an event the gateway recorded without them. Retried for a few minutes (GitHub or
// the network down, rate limits); after that the head fails safe: it cannot be approved or delivered.
const lookups = proxyActivities<OrchestratorActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['UnknownRepository'],
  },
});

const now = () => Date.now();

/**
 * One run of the change workflow: its record, the policy once loaded, and the handlers and steps that act
 * on them. The methods run in exactly the order the single function ran them, so saved histories replay.
 */
class ChangeRunV1 {
  readonly state: ChangeState;
  readonly repo: string;
  // Assigned once the activity answers; handlers registered earlier wait for it.
  policy: ChangePolicy | undefined;
  readonly reporter: Reporter;
  private version = 0;
  private lastPublished = '';
  private teamsCard: TeamsCardTracker | undefined;
  // Events with their commits waiting for the policy; the queue is not drained meanwhile.
  private directWaiting = 0;

  constructor(private readonly input: ChangeWorkflowInput) {
    this.state = (input.carried as ChangeState | undefined) ?? newChangeState(input.change);
    this.repo = input.change.split('#')[0] as string;
    // Before the handlers: a signal buffered at start is dispatched as soon as its handler is set.
    this.reporter = startReporter(() => statusOf(this.state, this.policy, now()));
  }

  changed(): void {
    this.version++;
    this.reporter.changed();
    this.publish();
  }

  // Handlers first, so nothing sent before the policy is loaded is lost: they wait for it.
  setHandlers(): void {
    setHandler(pullRequestSignal, (event) => this.onPullRequest(event));
    this.drainPullRequests().catch((error: unknown) => {
      if (!isCancellation(error)) throw error;
    });
    setHandler(pullRequestClosedSignal, async (closed) => this.onClosed(closed));
    setHandler(approvalSignal, async (signed) => void (await this.approve(signed)));
    // A refusal is an answer, not a validation error, so that every attempt is in the history.
    setHandler(approvalUpdate, (signed) => this.approve(signed));
    setHandler(statusQuery, () => statusOf(this.state, this.policy, now()));
  }

  // An event that carries its commits (older gateways, saved histories) is applied as it always was, unless
  // events are waiting in the queue: then it waits behind them. An event without commits joins the queue.
  async onPullRequest(event: PullRequestEvent): Promise<void> {
    if (event.commits === undefined || (this.state.pendingEvents?.length ?? 0) > 0)
      return this.enqueuePullRequest(event);
    this.directWaiting++;
    await condition(() => this.policy !== undefined);
    this.directWaiting--;
    const effect = receivePullRequest(this.state, this.policy as ChangePolicy, event, now());
    if (effect !== 'duplicate') this.changed();
  }

  onClosed(closed: PullRequestClosed): void {
    const state = this.state;
    if (state.closed || state.deliveries.includes(closed.deliveryId)) return;
    state.deliveries.push(closed.deliveryId);
    state.closed = { at: closed.at, merged: closed.merged, ...(closed.closedBy ? { closedBy: closed.closedBy } : {}) };
    note(
      state,
      now(),
      'closed',
      `the pull request was ${closed.merged ? 'merged' : 'closed'}${closed.closedBy ? ` by ${closed.closedBy}` : ''}`,
      closed.closedBy ? { actor: closed.closedBy } : {},
    );
    this.changed();
  }

  async approve(signed: SignedApproval): Promise<ApprovalOutcome> {
    const state = this.state;
    await condition(() => this.policy !== undefined);
    const decision = receiveApproval(state, this.policy as ChangePolicy, signed, now());
    const memo: ApprovalDecisionMemo = {
      n: state.approvals.length - 1,
      counted: decision.counted,
      reason: decision.reason,
      environments: decision.environments,
    };
    // patched(): runs recorded before the memo existed still replay (see docs/operations.md).
    if (patched('approval-decision-memo')) upsertMemo({ [APPROVAL_MEMO_KEY]: memo });
    if (state.rejection?.sha === state.headSha && state.stage === 'awaiting-approval')
      this.setStage('rejected', this.rejectionWait());
    this.changed();
    return { ...decision, stage: state.stage };
  }

  /** Loads the policy, then tries each head until one is delivered (and merged) or the pull request closes. */
  async main(): Promise<ChangeResult> {
    const state = this.state;
    const policy = await orchestrator.loadPolicy({ repo: this.repo });
    this.policy = policy;
    alignEnvironments(state, policy);
    if (!state.runIds.includes(workflowInfo().runId)) state.runIds.push(workflowInfo().runId);
    this.changed();

    await condition(() => state.headSha !== '' || state.closed !== undefined);
    while (!state.closed) {
      const head = state.headSha;
      // Inline, not a method of its own: an extra await here would reorder this run's commands.
      let outcome: HeadOutcome | 'superseded' | 'closed';
      const scope = new CancellationScope();
      const attempt = scope.run(() => this.deliverHead(head));
      let done: HeadOutcome | undefined;
      attempt.then(
        (o) => void (done = o),
        () => undefined,
      );
      await condition(() => done !== undefined || state.headSha !== head || state.closed !== undefined);
      if (done === undefined) {
        // New commits or a closed pull request cancel whatever runs; the revokes in `deliver` still happen.
        scope.cancel();
        await attempt.catch((error: unknown) => {
          if (!isCancellation(error)) throw error;
        });
        outcome = state.closed ? 'closed' : 'superseded';
      } else outcome = done;

      if (outcome === 'continue-as-new') return await this.continueAsNewQuietly();
      if (outcome === 'delivered' && policy.merge && (await this.merge(head))) break;
      if (outcome === 'closed' || outcome === 'superseded') continue;
      // Wait for new commits (or the end of the pull request) before trying again; a head whose commits were
      // unknown is tried again once an event for it brought them.
      const unknown = state.commitsUnknown === head;
      await condition(
        () =>
          state.headSha !== head ||
          state.closed !== undefined ||
          this.historyTooLong() ||
          (unknown && state.commitsUnknown !== head),
      );
      if (this.historyTooLong() && state.headSha === head && !state.closed) return await this.continueAsNewQuietly();
    }

    const delivered = state.stage === 'delivered';
    if (!delivered) this.setStage('abandoned', 'nothing: the pull request is closed');
    await this.reporter.flush();
    await this.teamsCard?.flush();
    await condition(allHandlersFinished);
    return { outcome: delivered ? 'delivered' : 'abandoned', change: state.change, headSha: state.headSha };
  }

  // -------------------------------------------------------------------------------------------
  // Pull request events without commits: one queue, drained by one loop, strictly in arrival order.

  enqueuePullRequest(event: PullRequestEvent): void {
    const pending = (this.state.pendingEvents ??= []);
    // A redelivery costs nothing: no look-up, no record.
    if (this.state.deliveries.includes(event.deliveryId) || pending.some((e) => e.deliveryId === event.deliveryId)) {
      if (pending.length === 0) delete this.state.pendingEvents;
      return;
    }
    pending.push(event);
    // Whoever pushed took part, whatever the look-up finds: an initiator at once.
    if (event.pusher)
      addInitiator(this.state.initiators, event.pusher.toLowerCase(), `pusher of ${shortSha(event.headSha)}`);
  }

  /**
   * Applies the queued events one at a time, each once the orchestrator has looked up its commits and files.
   * Until then the event is not applied: its head is not current, so nobody (least of all a commit author
   * not yet known as an initiator) can approve it. Carried across continue-as-new in `state.pendingEvents`.
   */
  async drainPullRequests(): Promise<void> {
    for (;;) {
      await condition(
        () => this.policy !== undefined && this.directWaiting === 0 && (this.state.pendingEvents?.length ?? 0) > 0,
      );
      const pending = this.state.pendingEvents as PullRequestEvent[];
      const event = pending[0] as PullRequestEvent;
      if (!this.state.deliveries.includes(event.deliveryId) && !this.state.closed) await this.applyLookedUp(event);
      pending.shift();
      if (pending.length === 0) delete this.state.pendingEvents;
    }
  }

  async applyLookedUp(event: PullRequestEvent): Promise<void> {
    const p = this.policy as ChangePolicy;
    if (event.commits !== undefined) {
      if (receivePullRequest(this.state, p, event, now()) !== 'duplicate') this.changed();
      return;
    }
    if (this.state.headSha === '') this.state.waitingFor = `the commits of ${shortSha(event.headSha)} from GitHub`;
    try {
      const found = await lookups.lookUpPullRequestChanges({
        change: this.state.change,
        kind: event.kind,
        headSha: event.headSha,
        ...(event.beforeSha ? { beforeSha: event.beforeSha } : {}),
      });
      if (
        receivePullRequest(
          this.state,
          p,
          { ...event, commits: found.commits, changedFiles: found.changedFiles },
          now(),
        ) !== 'duplicate'
      )
        this.changed();
    } catch (error) {
      if (isCancellation(error)) throw error;
      // Fail safe: the people the webhook names still count, the head moves (the push did happen), but with
      // its commits unknown nobody can approve it and nothing delivers it until a later event brings them.
      const effect = receivePullRequest(this.state, p, { ...event, commits: [] }, now(), { commitsUnknown: true });
      note(
        this.state,
        now(),
        'commits-unknown',
        `the commits of ${shortSha(event.headSha)} could not be read from GitHub (${failureMessage(error)}); it cannot be approved until they are: push again or close and reopen the pull request`,
        {
          sha: event.headSha,
        },
      );
      log.warn('pull request look-up failed', {
        change: this.state.change,
        headSha: event.headSha,
        effect,
        error: failureMessage(error),
      });
      this.changed();
    }
  }

  /** Checks, then per environment: approval gate, then delivery. */
  async deliverHead(head: string): Promise<HeadOutcome> {
    const p = this.policy as ChangePolicy;
    if (this.state.commitsUnknown === head) {
      this.setStage(
        'failed',
        `the commits of ${shortSha(head)} from GitHub (the look-up failed; push again or close and reopen the pull request)`,
      );
      return 'failed';
    }
    if (!(this.state.checks?.sha === head && this.state.checks.passed)) {
      this.setStage('checking', `checks on ${shortSha(head)}`);
      const passed = await this.runChecks(head);
      if (!passed) {
        this.setStage('checks-failed', `new commits: the checks failed on ${shortSha(head)}`);
        return 'checks-failed';
      }
    }
    for (const [index, env] of p.environments.entries()) {
      const envStatus = this.environmentStatus(env.name);
      if (envStatus.state === 'deployed' && envStatus.deploy?.sha === head) continue;
      const gate = await this.approvalGate(env, head);
      if (gate !== 'open') return gate;
      const last = index === p.environments.length - 1;
      if (last && !(await this.githubReviewsStillStand(head))) {
        // The approvals through GitHub were voided: wait at this gate again.
        const again = await this.approvalGate(env, head);
        if (again !== 'open') return again;
      }
      if (!(await this.deliver(env, head))) return 'failed';
    }
    this.setStage(
      'delivered',
      p.merge ? `merge of ${shortSha(head)}` : `nothing: ${shortSha(head)} is delivered to every environment`,
    );
    return 'delivered';
  }

  async runChecks(head: string): Promise<boolean> {
    const checks = proxyActivities<ChecksActivities>({
      taskQueue: zoneQueue(workflowInfo().taskQueue, 'checks'),
      startToCloseTimeout: '2 hours',
      heartbeatTimeout: '30 seconds',
      retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['UnknownRepository'] },
    });
    try {
      this.state.checks = await checks.runChecks({ change: this.state.change, sha: head });
    } catch (error) {
      if (isCancellation(error)) throw error;
      this.state.checks = { sha: head, passed: false, results: [], durationMs: 0 };
      note(this.state, now(), 'checks-error', `the checks could not run: ${failureMessage(error)}`, { sha: head });
      return false;
    }
    const failed = this.state.checks.results
      .filter((r) => !r.passed)
      .map((r) => (r.timedOut ? `${r.name} (timed out)` : r.name));
    note(
      this.state,
      now(),
      this.state.checks.passed ? 'checks-passed' : 'checks-failed',
      this.state.checks.passed
        ? `checks passed on ${shortSha(head)}`
        : `checks failed on ${shortSha(head)}: ${failed.join(', ')}`,
      { sha: head },
    );
    this.changed();
    return this.state.checks.passed;
  }

  /** Waits until the policy is satisfied for `env` at `head`; approvals expire while it waits. */
  async approvalGate(env: EnvironmentPolicy, head: string): Promise<'open' | 'rejected' | 'continue-as-new'> {
    const p = this.policy as ChangePolicy;
    for (;;) {
      const nextExpiry = expireApprovals(this.state, p, now());
      if (this.state.rejection?.sha === head) {
        this.setStage('rejected', this.rejectionWait());
        return 'rejected';
      }
      const gate = gateState(p, env, this.state.approvals, head, now(), this.state.policyChange);
      if (gate.open) {
        note(
          this.state,
          now(),
          'gate-open',
          `${env.name}: approved by ${gate.approvers.join(', ') || 'no one required'}`,
          {
            sha: head,
          },
        );
        this.changed();
        return 'open';
      }
      this.setStage('awaiting-approval', gate.waitingFor);
      this.askApproversInChat(head);
      if (this.historyTooLong()) return 'continue-as-new';
      const before = this.version;
      const woken = () => this.version !== before || this.historyTooLong();
      if (nextExpiry === undefined) await condition(woken);
      else await condition(woken, Math.max(1, nextExpiry - now()));
    }
  }

  /**
   * Once per head, post the approval request to chat (Slack buttons). In the background and best-effort:
   * a chat outage must never hold up or fail the change.
   */
  askApproversInChat(head: string): void {
    if (patched('teams-approval-card'))
      (this.teamsCard ??= startTeamsCard(this.state, () => statusOf(this.state, this.policy, now()))).ask(head);
    if (this.state.slackNotified === head || !patched('slack-approval-request')) return;
    this.state.slackNotified = head;
    const p = this.policy as ChangePolicy;
    const pending = this.state.environments
      .filter((e) => e.state === 'pending')
      .map((e) => p.environments.find((pe) => pe.name === e.name))
      .filter((e): e is EnvironmentPolicy => e !== undefined && e.required > 0);
    const info = workflowInfo();
    const url = `${p.temporalUiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(info.namespace)}/workflows/${encodeURIComponent(info.workflowId)}/${info.runId}`;
    chat
      .notifySlack({
        change: this.state.change,
        title: this.state.title,
        sha: head,
        author: this.state.author,
        environments: pending.map((e) => ({ name: e.name, required: e.required, confirm: e.confirm })),
        url,
      })
      .then(
        (r) => log.info('approval request posted to chat', { posted: r.posted, reason: r.reason }),
        (error: unknown) => {
          if (!isCancellation(error)) log.warn('could not post the approval request to chat', { error: String(error) });
        },
      );
  }

  /** Approvals through GitHub are confirmed against GitHub before the last environment. */
  async githubReviewsStillStand(head: string): Promise<boolean> {
    const p = this.policy as ChangePolicy;
    const viaGithub = this.state.approvals.filter(
      (r) =>
        r.claim.channel === 'github' &&
        p.environments.some((e) => gateState(p, e, [r], head, now(), false).approvers.length > 0),
    );
    if (viaGithub.length === 0) return true;
    const reviewIds = viaGithub.map((r) => r.claim.evidence.reviewId).filter((id): id is string => Boolean(id));
    const confirmed = await orchestrator.confirmReviews({ change: this.state.change, sha: head, reviewIds });
    if (confirmed.ok) return true;
    voidApprovals(
      this.state,
      now(),
      (r) => viaGithub.includes(r),
      `void: GitHub no longer confirms the review (${confirmed.reason})`,
    );
    note(
      this.state,
      now(),
      'reviews-not-confirmed',
      `GitHub no longer confirms the approving reviews: ${confirmed.reason}`,
      { sha: head },
    );
    this.changed();
    return false;
  }

  /** lease -> deploy -> verify -> revoke, in the deploy zone; revoke runs even when cancelled. */
  async deliver(env: EnvironmentPolicy, head: string): Promise<boolean> {
    const deployer = proxyActivities<DeployActivities>({
      taskQueue: zoneQueue(workflowInfo().taskQueue, 'deploy'),
      startToCloseTimeout: env.deployTimeoutMs + DEPLOY_MARGIN_MS,
      heartbeatTimeout: '30 seconds',
      // Revoke only once the step has really stopped, or it could lease again after the revoke.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      // A failed deploy command is a result, not an error; what throws retryably is infrastructure (OpenBao
      // or the git remote unreachable, a dead worker), so wait for it with backoff instead of failing the
      // change after three quick attempts (found by the OpenBao-down drill). Status shows the last failure.
      retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
    });
    const verifier = proxyActivities<DeployActivities>({
      taskQueue: zoneQueue(workflowInfo().taskQueue, 'deploy'),
      startToCloseTimeout: (env.verifyTimeoutMs ?? 0) + DEPLOY_MARGIN_MS,
      heartbeatTimeout: '30 seconds',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { maximumAttempts: 2 },
    });
    const revoker = proxyActivities<DeployActivities>({
      taskQueue: zoneQueue(workflowInfo().taskQueue, 'deploy'),
      startToCloseTimeout: '2 minutes',
      retry: { maximumAttempts: 10 },
    });
    const envStatus = this.environmentStatus(env.name);
    const job: DeployInput = {
      change: this.state.change,
      environment: env.name,
      sha: head,
      idempotencyKey: `${this.state.change}@${env.name}@${head}`,
    };
    try {
      envStatus.state = 'deploying';
      this.setStage('deploying', `deploy of ${shortSha(head)} to ${env.name}`);
      const deployed = await deployer.deploy(job);
      envStatus.deploy = deployed;
      if (deployed.status === 'failed')
        return this.failDelivery(
          envStatus,
          `deploy of ${shortSha(head)} to ${env.name} failed (exit ${deployed.exitCode ?? 'none'})`,
        );
      note(this.state, now(), 'deployed', `${shortSha(head)} ${deployed.status} to ${env.name}`, { sha: head });
      if (env.verifyTimeoutMs !== undefined) {
        envStatus.state = 'verifying';
        this.setStage('verifying', `verification of ${shortSha(head)} in ${env.name}`);
        const verified = await verifier.verify(job);
        envStatus.verify = verified;
        if (!verified.passed)
          return this.failDelivery(
            envStatus,
            `verification of ${shortSha(head)} in ${env.name} failed (exit ${verified.exitCode ?? 'none'})`,
          );
        note(this.state, now(), 'verified', `${shortSha(head)} verified in ${env.name}`, { sha: head });
      }
      envStatus.state = 'deployed';
      this.changed();
      return true;
    } catch (error) {
      if (isCancellation(error)) {
        envStatus.state = 'pending';
        note(this.state, now(), 'delivery-cancelled', `delivery of ${shortSha(head)} to ${env.name} cancelled`, {
          sha: head,
        });
        throw error;
      }
      return this.failDelivery(
        envStatus,
        `delivery of ${shortSha(head)} to ${env.name} failed: ${failureMessage(error)}`,
      );
    } finally {
      await CancellationScope.nonCancellable(async () => {
        try {
          const revoked = await revoker.revokeOutstanding({ change: this.state.change, environment: env.name });
          if (revoked.length > 0)
            note(this.state, now(), 'leases-revoked', `${revoked.length} lease(s) for ${env.name} revoked`, {
              sha: head,
            });
        } catch (error) {
          note(
            this.state,
            now(),
            'revoke-failed',
            `revoking the leases for ${env.name} failed: ${failureMessage(error)}; they expire with their TTL`,
            { sha: head },
          );
          log.error('revokeOutstanding failed', {
            change: this.state.change,
            environment: env.name,
            error: failureMessage(error),
          });
        }
        this.changed();
      });
    }
  }

  async merge(head: string): Promise<boolean> {
    try {
      const merged = await orchestrator.mergePullRequest({ change: this.state.change, sha: head });
      note(this.state, now(), merged.merged ? 'merged' : 'merge-skipped', merged.reason, { sha: head });
      this.changed();
      return merged.merged;
    } catch (error) {
      note(this.state, now(), 'merge-failed', `merging ${shortSha(head)} failed: ${failureMessage(error)}`, {
        sha: head,
      });
      this.changed();
      return false;
    }
  }

  failDelivery(envStatus: EnvironmentStatus, summary: string): false {
    envStatus.state = 'failed';
    note(this.state, now(), 'delivery-failed', summary, { sha: this.state.headSha });
    this.setStage('failed', `new commits: ${summary}`);
    return false;
  }

  environmentStatus(name: string): EnvironmentStatus {
    const found = this.state.environments.find((e) => e.name === name);
    if (!found) throw ApplicationFailure.nonRetryable(`environment ${name} is missing from the change record`);
    return found;
  }

  rejectionWait(): string {
    return `new commits: ${this.state.rejection?.person ?? 'a reviewer'} requested changes to ${shortSha(this.state.headSha)}`;
  }

  setStage(stage: ChangeStage, waitingFor: string): void {
    if (this.state.stage === stage && this.state.waitingFor === waitingFor) return;
    if (this.state.stage !== stage)
      note(this.state, now(), 'stage', `${this.state.stage} -> ${stage}`, { sha: this.state.headSha });
    this.state.stage = stage;
    this.state.waitingFor = waitingFor;
    this.changed();
  }

  historyTooLong(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength > (this.input.historyEventLimit ?? DEFAULT_HISTORY_LIMIT);
  }

  /** The operator's view in the Temporal UI: search attributes and one line of current details. */
  publish(): void {
    setCurrentDetails(
      `**${this.state.stage}** ${this.state.change} @ ${shortSha(this.state.headSha) || '—'}: waiting for ${this.state.waitingFor}`,
    );
    const [, number] = this.state.change.split('#');
    const attrs: SearchAttributeUpdatePair[] = [
      { key: RepoAttr, value: this.repo },
      { key: PullNumberAttr, value: Number(number) },
      { key: StageAttr, value: this.state.stage },
    ];
    if (this.state.author) attrs.push({ key: AuthorAttr, value: this.state.author });
    if (this.state.headSha) attrs.push({ key: HeadShaAttr, value: this.state.headSha });
    const initiators = Object.keys(this.state.initiators).sort();
    if (initiators.length > 0) attrs.push({ key: InitiatorsAttr, value: initiators });
    const approvers = this.policy && this.state.headSha ? currentApprovers(this.state, this.policy, now()) : [];
    attrs.push({ key: ApproversAttr, value: approvers });
    const key = JSON.stringify(attrs.map((a) => a.value));
    if (key === this.lastPublished) return;
    this.lastPublished = key;
    upsertSearchAttributes(attrs);
  }

  /** Carries the whole record (approvals, timeline, run IDs) into a fresh run at a quiet point. */
  async continueAsNewQuietly(): Promise<never> {
    await condition(allHandlersFinished);
    await this.reporter.flush();
    await this.teamsCard?.flush();
    note(
      this.state,
      now(),
      'continued-as-new',
      `history of run ${workflowInfo().runId} reached ${workflowInfo().historyLength} events; the record continues in a new run`,
    );
    return await continueAsNew<typeof changeWorkflowV1>({ ...this.input, carried: this.state });
  }
}

export async function changeWorkflowV1(input: ChangeWorkflowInput): Promise<ChangeResult> {
  const run = new ChangeRunV1(input);
  run.setHandlers();
  return run.main();
}

function failureMessage(error: unknown): string {
  const cause = error instanceof ActivityFailure && error.cause ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}
