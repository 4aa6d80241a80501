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
  LANE_FRESH_LOOKUP_PATCH,
  LANE_MEMO_PATCH,
  LANE_RECLAIM_GRACE_PATCH,
  LANE_SHORT_HISTORY_PATCH,
} from '../shared/patches.ts';
import {
  laneMemoOf,
  parseLaneId,
  type CommitComparison,
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

export async function laneWorkflow(input: LaneWorkflowInput): Promise<never> {
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
  let state: LaneState = {
    v: 1,
    lane: info.workflowId,
    repo: ref.repo,
    environment: ref.environment,
    queue: [],
    releases: [],
    declined: {},
    refusals: [],
  };
  const continuedFrom = info.continuedFromExecutionRunId;
  if (input.carried !== undefined || continuedFrom) {
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
    state = carried;
  } else {
    // Without this, terminating the lane mid-deploy and sending a request would start an empty lane that
    // grants at once, next to the deploy still running.
    const prior = await lookUps.priorLaneState({
      workflowId: info.workflowId,
      runId: info.runId,
      taskQueue: laneQueue,
    });
    if (prior)
      state = {
        ...prior.state,
        refusals: [
          ...prior.state.refusals,
          {
            at: new Date(Date.now()).toISOString(),
            what: 'request' as const,
            workflowId: info.workflowId,
            runId: prior.runId,
            reason: `the lane's run ${prior.runId} ${prior.status}; this run took over its holder, queue and releases`,
          },
        ].slice(-MAX_REFUSALS),
      };
  }
  const checkEvery = Math.max(
    MIN_CHECK_MS,
    typeof input.checkEveryMs === 'number' && Number.isFinite(input.checkEveryMs)
      ? input.checkEveryMs
      : DEFAULT_CHECK_MS,
  );
  const limit = Math.max(
    MIN_HISTORY_LIMIT,
    typeof input.historyEventLimit === 'number' && Number.isFinite(input.historyEventLimit)
      ? input.historyEventLimit
      : DEFAULT_HISTORY_LIMIT,
  );
  const reclaimGrace = Math.max(
    MIN_RECLAIM_GRACE_MS,
    typeof input.reclaimGraceMs === 'number' && Number.isFinite(input.reclaimGraceMs)
      ? input.reclaimGraceMs
      : DEFAULT_RECLAIM_GRACE_MS,
  );
  const inbox: Letter[] = [];
  const post = (what: Letter['what']) => (caller: LaneCaller) => {
    if (inbox.length >= MAX_INBOX || typeof caller?.workflowId !== 'string' || typeof caller.runId !== 'string') return;
    inbox.push({ what, caller: { workflowId: caller.workflowId.slice(0, 300), runId: caller.runId.slice(0, 100) } });
  };
  setHandler(laneRequestSignal, post('request'));
  setHandler(laneReleaseSignal, post('release'));
  setHandler(laneStateQuery, () => state);

  const now = () => new Date(Date.now()).toISOString();
  const same = (t: LaneTicket | undefined, c: LaneCaller) =>
    t !== undefined && t.workflowId === c.workflowId && t.runId === c.runId;
  // `onlyIfEnded`: a running holder's change is not asked for its status (each query replays it).
  const lookUp = (c: LaneCaller, onlyIfEnded = false): Promise<LaneCallerFacts> =>
    lookUps.lookUpLaneCaller({
      workflowId: c.workflowId,
      runId: c.runId,
      environment: ref.environment,
      ...(onlyIfEnded ? { changeOnlyIfEnded: true } : {}),
    });
  const refuse = (what: Letter['what'], c: LaneCaller, reason: string) => {
    state.refusals.push({ at: now(), what, workflowId: c.workflowId, runId: c.runId, reason });
    if (state.refusals.length > MAX_REFUSALS) state.refusals.splice(0, state.refusals.length - MAX_REFUSALS);
  };
  const ticketOf = (c: LaneCaller, facts: LaneCallerFacts, prior?: LaneTicket): LaneTicket => ({
    workflowId: c.workflowId,
    runId: c.runId,
    change: facts.change?.change ?? prior?.change ?? c.workflowId,
    sha: facts.change?.headSha ?? prior?.sha ?? '',
    approvers: facts.change?.environment?.approvedBy ?? prior?.approvers ?? [],
    kind: facts.workflowType === 'rollbackWorkflow' ? 'rollback' : (prior?.kind ?? 'change'),
    ...emergencyOf(facts.change?.environment?.emergency ?? prior?.emergency),
    requestedAt: prior?.requestedAt ?? now(),
  });
  const endHolder = (facts: LaneCallerFacts) => {
    const holder = state.holder;
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
    state.releases.push(release);
    if (state.releases.length > MAX_RELEASES) state.releases.splice(0, state.releases.length - MAX_RELEASES);
    if (outcome === 'deployed') state.running = release;
    delete state.holder;
    return outcome;
  };

  let lookedUp: { caller: LaneCaller; facts: LaneCallerFacts; at: number } | undefined;
  async function read(letter: Letter): Promise<void> {
    const { what, caller } = letter;
    const inQueue = state.queue.findIndex((t) => same(t, caller));
    if (what === 'request') {
      if (same(state.holder, caller) || inQueue >= 0) return;
      const facts = await lookUp(caller);
      const decision = decideLaneCaller(state.lane, laneQueue, 'acquire', facts);
      if (decision.verdict === 'refused') return refuse(what, caller, decision.reason);
      state.queue.push(ticketOf(caller, facts));
      lookedUp = { caller, facts, at: Date.now() };
      return;
    }
    if (!same(state.holder, caller) && inQueue < 0)
      return refuse(what, caller, `${caller.workflowId} (run ${caller.runId}) neither holds nor waits for the lane`);
    const facts = await lookUp(caller);
    const decision = decideLaneCaller(state.lane, laneQueue, 'release', facts);
    if (decision.verdict === 'refused') return refuse(what, caller, decision.reason);
    if (same(state.holder, caller)) endHolder(facts);
    else state.queue = state.queue.filter((t) => !same(t, caller));
  }

  /** The first in the queue, checked again at its turn: still asking, and not older than what runs. */
  async function grantNext(): Promise<void> {
    const next = state.queue[0] as LaneTicket;
    // Its turn comes in the same workflow task as its request (workflow time has not moved): what the request's
    // look-up found is what a second one would find.
    const fresh = lookedUp && same(next, lookedUp.caller) && lookedUp.at === Date.now() ? lookedUp.facts : undefined;
    lookedUp = undefined;
    const facts = fresh && patched(LANE_FRESH_LOOKUP_PATCH) ? fresh : await lookUp(next);
    const caller = decideLaneCaller(state.lane, laneQueue, 'acquire', facts);
    state.queue.shift();
    if (caller.verdict === 'refused') return refuse('request', next, `at its turn: ${caller.reason}`);
    const ticket = ticketOf(next, facts, next);
    const running = state.running;
    let comparison: CommitComparison | undefined;
    if (running && running.sha !== ticket.sha && ticket.kind === 'change') {
      // base = the candidate, head = what runs: `ahead` means what runs already contains the candidate.
      comparison = await compare
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

  let published = '';
  /** The answer waiting changes read (src/activities/lanes.ts), written only when it changed. */
  const publish = () => {
    if (!patched(LANE_MEMO_PATCH)) return;
    const memo = laneMemoOf(state, workflowInfo().runId);
    const text = JSON.stringify(memo);
    if (text === published) return;
    published = text;
    upsertMemo({ lane: memo });
  };

  const tooLong = () =>
    workflowInfo().continueAsNewSuggested ||
    workflowInfo().historyLength >
      (input.historyEventLimit === undefined && patched(LANE_SHORT_HISTORY_PATCH) ? SHORT_HISTORY_LIMIT : limit);
  for (;;) {
    const letter = inbox.shift();
    if (letter) {
      await read(letter);
      continue;
    }
    // After a reclaim: letters are still read, but nothing is granted until the grace has passed.
    const graceLeft = state.grace ? Date.parse(state.grace.until) - Date.now() : 0;
    if (state.grace && !(graceLeft > 0)) {
      delete state.grace;
      continue;
    }
    if (state.grace) {
      publish();
      await condition(() => inbox.length > 0, graceLeft);
      continue;
    }
    if (!state.holder && state.queue.length > 0) {
      await grantNext();
      continue;
    }
    if (tooLong()) {
      await condition(allHandlersFinished);
      if (inbox.length === 0)
        return await continueAsNew<typeof laneWorkflow>({
          lane: state.lane,
          carried: state,
          ...(input.checkEveryMs !== undefined ? { checkEveryMs: input.checkEveryMs } : {}),
          ...(input.historyEventLimit !== undefined ? { historyEventLimit: input.historyEventLimit } : {}),
          ...(input.reclaimGraceMs !== undefined ? { reclaimGraceMs: input.reclaimGraceMs } : {}),
        });
      continue;
    }
    const woken = () => inbox.length > 0 || (!state.holder && state.queue.length > 0);
    publish();
    if (!state.holder) {
      await condition(woken);
      continue;
    }
    if (await condition(woken, checkEvery)) continue;
    // A holder that ended without giving the lane back (terminated, failed, timed out) loses it.
    const holder = state.holder;
    const facts = await lookUp(holder, true);
    if (same(state.holder, holder) && (!facts.found || facts.status !== 'RUNNING')) {
      // Its deploy may still run (a terminated workflow's activity stops only at its next heartbeat).
      if (endHolder(facts) === 'reclaimed' && patched(LANE_RECLAIM_GRACE_PATCH))
        state.grace = {
          until: new Date(Date.now() + reclaimGrace).toISOString(),
          reason: `${holder.change} (run ${holder.runId}) ended without giving the lane back; its deploy may still be running`,
        };
    }
  }
}

/** Only a release deployed under an emergency carries the field: the lane's state of every other stays as it was. */
function emergencyOf(declarer: string | undefined): { emergency?: string } {
  return declarer ? { emergency: declarer } : {};
}
