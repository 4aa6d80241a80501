// laneWorkflow: one repository's environment (`lane:owner/repo@env`). It lets one change at a time deploy
// there, first come first served, and keeps the environment's release history (SHA, change, approvers, when,
// by which run, how it ended). A signal to the lane only says who sent it; the lane asks the Temporal server
// whether that workflow is a change of this repository, running foureyes' code, with the matching lane
// activity pending (src/policy/sod.ts decides). A holder that ended without giving the lane back (terminated,
// failed) is found by a periodic look-up and its lease reclaimed. Continue-as-new carries the whole state.
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { OrchestratorActivities } from '../activities/interfaces.ts';
import { decideCarriedRecord, decideLaneCaller, decideLaneGrant, laneOutcome } from '../policy/sod.ts';
import {
  LANE_FOLDED_COMPARE_PATCH,
  LANE_FRESH_LOOKUP_PATCH,
  LANE_MEMO_PATCH,
  LANE_RECLAIM_GRACE_PATCH,
  LANE_SHORT_HISTORY_PATCH,
  LANE_SHORTER_HISTORY_PATCH,
} from '../shared/patches.ts';
import {
  laneMemoOf,
  parseLaneId,
  type CommitComparison,
  type LaneRef,
  type LaneCallerFacts,
  type LaneRelease,
  type LaneState,
  type LaneTicket,
} from '../shared/lane.ts';

export interface LaneCaller {
  workflowId: string;
  runId: string;
}

/** A change asks for its turn (sent by its acquireLane activity with signalWithStart). */
export const laneRequestSignal = defineSignal<[LaneCaller]>('request');
/** A change gives the lane back, or leaves the queue (sent by its releaseLane activity). */
export const laneReleaseSignal = defineSignal<[LaneCaller]>('release');
export const laneStateQuery = defineQuery<LaneState>('state');

export interface LaneWorkflowInput {
  lane: string;
  /** The state carried across continue-as-new; taken only from this lane's own previous run. */
  carried?: unknown;
  /** How often the lane looks whether its holder still runs; default 5 s. */
  checkEveryMs?: number;
  /** Continue-as-new once the history has more events than this; default 5 000. */
  historyEventLimit?: number;
  /** How long the lane grants nothing after reclaiming a holder; default 40 s. */
  reclaimGraceMs?: number;
}

const DEFAULT_CHECK_MS = 5_000;
const MIN_CHECK_MS = 200;
/**
 * A reclaimed holder's deploy runs on until its worker's next heartbeat finds the workflow gone: within the
 * deploy's 30 s heartbeat timeout (src/workflows/activities.ts) at worst, so the next grant waits that and more.
 */
const DEFAULT_RECLAIM_GRACE_MS = 40_000;
const MIN_RECLAIM_GRACE_MS = 1_000;
const DEFAULT_HISTORY_LIMIT = 5_000;
const MIN_HISTORY_LIMIT = 40;
const SHORT_HISTORY_LIMIT = 500;
/** Each task of the lane replays its history (no cache): at 150 events a grant's three tasks replay ~75 each. */
const SHORTER_HISTORY_LIMIT = 150;
/** Releases kept: enough for years of deploys of one environment, small enough for one payload. */
const MAX_RELEASES = 1_000;
const MAX_REFUSALS = 50;
const MAX_INBOX = 200;

const lookUps = proxyActivities<OrchestratorActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});
const compare = proxyActivities<OrchestratorActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: ['UnknownRepository'] },
});

interface Letter {
  what: 'request' | 'release';
  caller: LaneCaller;
}

interface LaneSettings {
  checkEvery: number;
  limit: number;
  reclaimGrace: number;
}

const now = () => new Date(Date.now()).toISOString();
const same = (t: LaneTicket | undefined, c: LaneCaller) =>
  t !== undefined && t.workflowId === c.workflowId && t.runId === c.runId;
const atLeast = (min: number, value: unknown, fallback: number) =>
  Math.max(min, typeof value === 'number' && Number.isFinite(value) ? value : fallback);

function settingsOf(input: LaneWorkflowInput): LaneSettings {
  return {
    checkEvery: atLeast(MIN_CHECK_MS, input.checkEveryMs, DEFAULT_CHECK_MS),
    limit: atLeast(MIN_HISTORY_LIMIT, input.historyEventLimit, DEFAULT_HISTORY_LIMIT),
    reclaimGrace: atLeast(MIN_RECLAIM_GRACE_MS, input.reclaimGraceMs, DEFAULT_RECLAIM_GRACE_MS),
  };
}

/** The lane's ID and task queue, as the server has them; anything else is not a lane started for itself. */
async function verifiedStart(input: LaneWorkflowInput): Promise<{ ref: LaneRef; laneQueue: string }> {
  const info = workflowInfo();
  const ref = parseLaneId(info.workflowId);
  if (!ref || input?.lane !== info.workflowId)
    throw ApplicationFailure.nonRetryable(
      `${info.workflowId} is not a lane started for itself (lane:owner/repo@environment)`,
      'UntrustedStart',
    );
  // The queue as the server has it (a replaying worker polls another one).
  const self = await lookUps.describeLaneRun({ workflowId: info.workflowId, runId: info.runId });
  const laneQueue = self?.taskQueue ?? '';
  if (laneQueue !== ref.taskQueue)
    throw ApplicationFailure.nonRetryable(
      `${info.workflowId} belongs on task queue ${ref.taskQueue}, not ${laneQueue}`,
      'UntrustedStart',
    );
  return { ref, laneQueue };
}

/** What this run starts from: its own previous run's state, what an earlier run knew, or an empty lane. */
async function initialState(input: LaneWorkflowInput, ref: LaneRef, laneQueue: string): Promise<LaneState> {
  const info = workflowInfo();
  const continuedFrom = info.continuedFromExecutionRunId;
  if (input.carried !== undefined || continuedFrom) return carriedState(input, laneQueue);
  const empty: LaneState = {
    v: 1,
    lane: info.workflowId,
    repo: ref.repo,
    environment: ref.environment,
    queue: [],
    releases: [],
    declined: {},
    refusals: [],
  };
  // Without this, terminating the lane mid-deploy and sending a request would start an empty lane that
  // grants at once, next to the deploy still running.
  const prior = await lookUps.priorLaneState({ workflowId: info.workflowId, runId: info.runId, taskQueue: laneQueue });
  if (!prior) return empty;
  const reason = `the lane's run ${prior.runId} ${prior.status}; this run took over its holder, queue and releases`;
  return {
    ...prior.state,
    refusals: [
      ...prior.state.refusals,
      { at: now(), what: 'request' as const, workflowId: info.workflowId, runId: prior.runId, reason },
    ].slice(-MAX_REFUSALS),
  };
}

async function carriedState(input: LaneWorkflowInput, laneQueue: string): Promise<LaneState> {
  const info = workflowInfo();
  const continuedFrom = info.continuedFromExecutionRunId;
  const predecessor = continuedFrom
    ? await lookUps.describeLaneRun({ workflowId: info.workflowId, runId: continuedFrom })
    : undefined;
  const origin = decideCarriedRecord({
    workflowId: info.workflowId,
    ...(continuedFrom ? { continuedFromRunId: continuedFrom } : {}),
    taskQueue: laneQueue,
    workflowType: 'laneWorkflow',
    ...(predecessor && continuedFrom ? { predecessor: { runId: continuedFrom, ...predecessor } } : {}),
  });
  if (origin.verdict === 'refused') throw ApplicationFailure.nonRetryable(origin.reason, 'UntrustedStart');
  const carried = input.carried as LaneState | undefined;
  if (!carried || carried.v !== 1 || carried.lane !== info.workflowId)
    throw ApplicationFailure.nonRetryable(
      `run ${continuedFrom} continued as new without the lane's state`,
      'UntrustedStart',
    );
  return carried;
}

/** One run of a lane: its state, its inbox of signals, and what it does with them. */
class LaneRun {
  readonly inbox: Letter[] = [];
  private lookedUp: { caller: LaneCaller; facts: LaneCallerFacts; at: number } | undefined;
  private published = '';

  constructor(
    public state: LaneState,
    private readonly environment: string,
    private readonly laneQueue: string,
  ) {}

  post = (what: Letter['what']) => (caller: LaneCaller) => {
    const inbox = this.inbox;
    if (inbox.length >= MAX_INBOX || typeof caller?.workflowId !== 'string' || typeof caller.runId !== 'string') return;
    inbox.push({ what, caller: { workflowId: caller.workflowId.slice(0, 300), runId: caller.runId.slice(0, 100) } });
  };

  /**
   * A request's look-up also compares the caller's head with what runs, which its grant needs. The holder's check
   * does not ask a running change for its status (each query replays it).
   */
  lookUp(c: LaneCaller, purpose: 'request' | 'release' | 'holder-check'): Promise<LaneCallerFacts> {
    const running = this.state.running;
    return lookUps.lookUpLaneCaller({
      workflowId: c.workflowId,
      runId: c.runId,
      environment: this.environment,
      ...(purpose === 'holder-check' ? { changeOnlyIfEnded: true } : {}),
      ...(running && purpose === 'request' ? { compareWith: { repo: this.state.repo, sha: running.sha } } : {}),
    });
  }

  refuse(what: Letter['what'], c: LaneCaller, reason: string): void {
    const refusals = this.state.refusals;
    refusals.push({ at: now(), what, workflowId: c.workflowId, runId: c.runId, reason });
    if (refusals.length > MAX_REFUSALS) refusals.splice(0, refusals.length - MAX_REFUSALS);
  }

  /** Ends the holder's turn as its facts tell, into the releases. */
  endHolder(facts: LaneCallerFacts): LaneRelease['outcome'] | undefined {
    const holder = this.state.holder;
    if (!holder) return;
    const { outcome, reason } = laneOutcome(holder, facts);
    const release: LaneRelease = {
      sha: holder.sha,
      change: holder.change,
      approvers: holder.approvers,
      kind: holder.kind,
      ...emergencyOf(holder.emergency),
      workflowId: holder.workflowId,
      runId: holder.runId,
      grantedAt: holder.grantedAt ?? holder.requestedAt,
      endedAt: now(),
      outcome,
      reason,
    };
    const releases = this.state.releases;
    releases.push(release);
    if (releases.length > MAX_RELEASES) releases.splice(0, releases.length - MAX_RELEASES);
    if (outcome === 'deployed') this.state.running = release;
    delete this.state.holder;
    return outcome;
  }

  async read({ what, caller }: Letter): Promise<void> {
    const state = this.state;
    const inQueue = state.queue.findIndex((t) => same(t, caller));
    if (what === 'request') {
      if (same(state.holder, caller) || inQueue >= 0) return;
      const facts = await this.lookUp(caller, 'request');
      const decision = decideLaneCaller(state.lane, this.laneQueue, 'acquire', facts);
      if (decision.verdict === 'refused') return this.refuse(what, caller, decision.reason);
      state.queue.push(ticketOf(caller, facts));
      this.lookedUp = { caller, facts, at: Date.now() };
      return;
    }
    if (!same(state.holder, caller) && inQueue < 0)
      return this.refuse(
        what,
        caller,
        `${caller.workflowId} (run ${caller.runId}) neither holds nor waits for the lane`,
      );
    const facts = await this.lookUp(caller, 'release');
    const decision = decideLaneCaller(state.lane, this.laneQueue, 'release', facts);
    if (decision.verdict === 'refused') return this.refuse(what, caller, decision.reason);
    if (same(state.holder, caller)) this.endHolder(facts);
    else state.queue = state.queue.filter((t) => !same(t, caller));
  }

  /** The first in the queue, checked again at its turn: still asking, and not older than what runs. */
  async grantNext(): Promise<void> {
    const state = this.state;
    const next = state.queue[0] as LaneTicket;
    // Its turn comes in the same workflow task as its request (workflow time has not moved): what the request's
    // look-up found is what a second one would find.
    const lookedUp = this.lookedUp;
    const fresh = lookedUp && same(next, lookedUp.caller) && lookedUp.at === Date.now() ? lookedUp.facts : undefined;
    this.lookedUp = undefined;
    const facts = fresh && patched(LANE_FRESH_LOOKUP_PATCH) ? fresh : await this.lookUp(next, 'request');
    const caller = decideLaneCaller(state.lane, this.laneQueue, 'acquire', facts);
    state.queue.shift();
    if (caller.verdict === 'refused') return this.refuse('request', next, `at its turn: ${caller.reason}`);
    const ticket = ticketOf(next, facts, next);
    const running = state.running;
    let comparison: CommitComparison | undefined;
    if (running && running.sha !== ticket.sha && ticket.kind === 'change') {
      // base = the candidate, head = what runs: `ahead` means what runs already contains the candidate.
      const folded = facts.comparison;
      comparison =
        folded && folded.base === ticket.sha && folded.head === running.sha && patched(LANE_FOLDED_COMPARE_PATCH)
          ? folded.result
          : await compare
              .compareCommits({ repo: state.repo, base: ticket.sha, head: running.sha })
              .catch(() => undefined);
    }
    const grant = decideLaneGrant(ticket, running, comparison);
    if (grant.verdict === 'refused') {
      state.declined[ticket.runId] = grant.reason;
      const keys = Object.keys(state.declined);
      for (const k of keys.slice(0, Math.max(0, keys.length - MAX_REFUSALS))) delete state.declined[k];
      return;
    }
    state.holder = { ...ticket, grantedAt: now() };
  }

  /** The answer waiting changes read (src/activities/lanes.ts), written only when it changed. */
  publish(): void {
    if (!patched(LANE_MEMO_PATCH)) return;
    const memo = laneMemoOf(this.state, workflowInfo().runId);
    const text = JSON.stringify(memo);
    if (text === this.published) return;
    this.published = text;
    upsertMemo({ lane: memo });
  }

  /** A holder that ended without giving the lane back (terminated, failed, timed out) loses it. */
  async checkHolder(reclaimGrace: number): Promise<void> {
    const holder = this.state.holder as LaneTicket;
    const facts = await this.lookUp(holder, 'holder-check');
    if (!same(this.state.holder, holder) || (facts.found && facts.status === 'RUNNING')) return;
    // Its deploy may still run (a terminated workflow's activity stops only at its next heartbeat).
    if (this.endHolder(facts) === 'reclaimed' && patched(LANE_RECLAIM_GRACE_PATCH))
      this.state.grace = {
        until: new Date(Date.now() + reclaimGrace).toISOString(),
        reason: `${holder.change} (run ${holder.runId}) ended without giving the lane back; its deploy may still be running`,
      };
  }
}

function ticketOf(c: LaneCaller, facts: LaneCallerFacts, prior?: LaneTicket): LaneTicket {
  return {
    workflowId: c.workflowId,
    runId: c.runId,
    change: facts.change?.change ?? prior?.change ?? c.workflowId,
    sha: facts.change?.headSha ?? prior?.sha ?? '',
    approvers: facts.change?.environment?.approvedBy ?? prior?.approvers ?? [],
    kind: facts.workflowType === 'rollbackWorkflow' ? 'rollback' : (prior?.kind ?? 'change'),
    ...emergencyOf(facts.change?.environment?.emergency ?? prior?.emergency),
    requestedAt: prior?.requestedAt ?? now(),
  };
}

export async function laneWorkflow(input: LaneWorkflowInput): Promise<never> {
  const { ref, laneQueue } = await verifiedStart(input);
  const run = new LaneRun(await initialState(input, ref, laneQueue), ref.environment, laneQueue);
  const { checkEvery, limit, reclaimGrace } = settingsOf(input);
  setHandler(laneRequestSignal, run.post('request'));
  setHandler(laneReleaseSignal, run.post('release'));
  setHandler(laneStateQuery, () => run.state);
  const { inbox } = run;
  const tooLong = () =>
    workflowInfo().continueAsNewSuggested ||
    workflowInfo().historyLength >
      (input.historyEventLimit === undefined && patched(LANE_SHORT_HISTORY_PATCH) ? defaultLimit() : limit);
  for (;;) {
    const state = run.state;
    const letter = inbox.shift();
    if (letter) {
      await run.read(letter);
      continue;
    }
    // After a reclaim: letters are still read, but nothing is granted until the grace has passed.
    const graceLeft = state.grace ? Date.parse(state.grace.until) - Date.now() : 0;
    if (state.grace && !(graceLeft > 0)) {
      delete state.grace;
      continue;
    }
    if (state.grace) {
      run.publish();
      await condition(() => inbox.length > 0, graceLeft);
      continue;
    }
    if (!state.holder && state.queue.length > 0) {
      await run.grantNext();
      continue;
    }
    if (tooLong()) {
      await condition(allHandlersFinished);
      if (inbox.length === 0) return await continueAsNew<typeof laneWorkflow>(nextInput(input, state));
      continue;
    }
    const woken = () => inbox.length > 0 || (!run.state.holder && run.state.queue.length > 0);
    run.publish();
    if (!state.holder) {
      await condition(woken);
      continue;
    }
    if (await condition(woken, checkEvery)) continue;
    await run.checkHolder(reclaimGrace);
  }
}

/** The history a lane started without a limit of its own keeps before it continues as new. */
function defaultLimit(): number {
  return patched(LANE_SHORTER_HISTORY_PATCH) ? SHORTER_HISTORY_LIMIT : SHORT_HISTORY_LIMIT;
}

/** The next run's input: the whole state, and the settings this run was started with. */
function nextInput(input: LaneWorkflowInput, state: LaneState): LaneWorkflowInput {
  return {
    lane: state.lane,
    carried: state,
    ...(input.checkEveryMs !== undefined ? { checkEveryMs: input.checkEveryMs } : {}),
    ...(input.historyEventLimit !== undefined ? { historyEventLimit: input.historyEventLimit } : {}),
    ...(input.reclaimGraceMs !== undefined ? { reclaimGraceMs: input.reclaimGraceMs } : {}),
  };
}

/** Only a release deployed under an emergency carries the field: the lane's state of every other stays as it was. */
function emergencyOf(declarer: string | undefined): { emergency?: string } {
  return declarer ? { emergency: declarer } : {};
}
