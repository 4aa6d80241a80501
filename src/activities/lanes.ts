// Orchestrator activities of environment lanes. The change workflow's side (acquireLane, releaseLane) asks its
// environment's lane and waits, heartbeating, until the lane has answered it; it stays pending while it waits,
// which is how the lane tells the change's own request from an insider's signal. The lane's side
// (lookUpLaneCaller) asks the Temporal server who a signal claims to come from.
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import {
  laneIdFor,
  laneMemoOf,
  type CommitComparison,
  type LaneCallerFacts,
  type LaneGrant,
  type LaneMemo,
  type LaneState,
} from '../shared/lane.ts';
import { AUDIT_VIEW_KEY, type AuditViewMemo } from '../shared/audit-memo.ts';
import type { ChangeStatus } from '../shared/types.ts';

/** How often a waiting change reads the lane's memo (the server answers it; no worker replays anything). */
const POLL_MS = 250;
/** The first seconds of a wait, when a free lane's answer is due, it reads it more often. */
const EARLY_POLL_MS = 25;
const EARLY_MS = 2_000;
/** A lane run from before its memo (LANE_MEMO_PATCH) is asked with a query, each of which replays it: rarely. */
const QUERY_POLL_MS = 2_000;
/** A running lane without a memo of its own after this long is taken for a run from before the memo. */
const MEMO_GRACE_MS = 15_000;
const HEARTBEAT_MS = 1_000;
/** How often an acquire whose lane is not running starts it again. */
const RESTART_MS = 2_000;
/**
 * How often an acquire the lane does not list asks again: a request can be lost to a run that never read it (one
 * an insider started under the lane's ID, or one terminated before it did). Asking again is harmless.
 */
const REASK_MS = 5_000;

interface LaneCall {
  repo: string;
  environment: string;
}

function me(): { workflowId: string; runId: string } {
  const execution = Context.current().info.workflowExecution;
  if (!execution)
    throw ApplicationFailure.nonRetryable('a lane is taken only from a change workflow', 'UntrustedCaller');
  return { workflowId: execution.workflowId, runId: execution.runId };
}

/**
 * What the lane answers now. `none`: no lane runs under that ID on this task queue. `pending`: it runs but has
 * not answered yet (a new run that has not written its memo, or a memo that another run wrote).
 */
type LaneAnswer = { kind: 'memo'; memo: LaneMemo; fromQuery: boolean } | { kind: 'none' } | { kind: 'pending' };

async function laneAnswer(client: Client, lane: string, taskQueue: string): Promise<LaneAnswer> {
  const handle = client.workflow.getHandle(lane);
  let described;
  try {
    described = await handle.describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { kind: 'none' };
    return { kind: 'pending' };
  }
  if (described.status.name !== 'RUNNING' || described.type !== 'laneWorkflow' || described.taskQueue !== taskQueue)
    return { kind: 'none' };
  const memo = described.memo?.lane as LaneMemo | undefined;
  if (memo?.v === 1 && memo.run === described.runId) return { kind: 'memo', memo, fromQuery: false };
  if (memo !== undefined || Date.now() - described.startTime.getTime() < MEMO_GRACE_MS) return { kind: 'pending' };
  const state = await handle.query<LaneState>('state').catch(() => undefined);
  return state ? { kind: 'memo', memo: laneMemoOf(state, described.runId), fromQuery: true } : { kind: 'pending' };
}

/**
 * Waits (heartbeating, cancellable) until `done` says the lane has answered. The heartbeat beats on its own so
 * that a slow answer of a busy server is not taken for a dead worker.
 */
async function until<T>(
  client: Client,
  lane: string,
  done: (answer: Exclude<LaneAnswer, { kind: 'pending' }>) => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat(), HEARTBEAT_MS);
  const started = Date.now();
  try {
    for (;;) {
      ctx.heartbeat();
      if (ctx.cancellationSignal.aborted) throw new CancelledFailure('cancelled while waiting for the lane');
      const answer = await laneAnswer(client, lane, ctx.info.taskQueue);
      const result = answer.kind === 'pending' ? undefined : await done(answer);
      if (result !== undefined) return result;
      const poll = Date.now() - started < EARLY_MS ? EARLY_POLL_MS : POLL_MS;
      await ctx.sleep(answer.kind === 'memo' && answer.fromQuery ? QUERY_POLL_MS : poll).catch(() => undefined);
    }
  } finally {
    clearInterval(beat);
  }
}

/**
 * A lane this process starts waits this long after reclaiming a holder (FOUREYES_LANE_RECLAIM_GRACE_MS; tests set
 * it short). Unset, the lane's own default (40 s) holds.
 */
function reclaimGraceOf(env: NodeJS.ProcessEnv): { reclaimGraceMs?: number } {
  const ms = Number(env.FOUREYES_LANE_RECLAIM_GRACE_MS);
  return env.FOUREYES_LANE_RECLAIM_GRACE_MS && Number.isFinite(ms) ? { reclaimGraceMs: ms } : {};
}

/**
 * A change asking for a lane has just opened that environment's gate and written what it held there to its memo
 * (AUDIT_VIEW_KEY): the lane reads it from the server instead of a status query, which replays the whole change.
 * Only for an acquire (a release needs the outcome, from the query), only when the memo is that gate's.
 */
function gateViewOf(
  memo: Record<string, unknown> | undefined,
  facts: LaneCallerFacts,
  environment: string,
): LaneCallerFacts['change'] | undefined {
  const view = memo?.[AUDIT_VIEW_KEY] as AuditViewMemo | undefined;
  const acquiring = facts.pending.some((a) => a.type === 'acquireLane');
  if (facts.workflowType !== 'changeWorkflow' || facts.status !== 'RUNNING' || !acquiring) return undefined;
  if (view?.at !== 'gate' || view.environment !== environment || typeof view.head !== 'string' || !view.head)
    return undefined;
  if (!Array.isArray(view.counted) || !facts.workflowId.startsWith('change:')) return undefined;
  return {
    change: facts.workflowId.slice('change:'.length),
    headSha: view.head,
    environment: {
      state: 'approved',
      approvedBy: view.counted.filter((p): p is string => typeof p === 'string'),
      ...(typeof view.emergency === 'string' && view.emergency ? { emergency: view.emergency } : {}),
    },
  };
}

export interface LaneCallerQuestion {
  workflowId: string;
  runId: string;
  environment: string;
  /** Ask the change for its status only when its run has ended (the lane's check that its holder still runs). */
  changeOnlyIfEnded?: boolean;
  /**
   * The release running in the environment: a change's head found here is compared with it in the same call, so
   * the lane can decide the grant without a compare of its own (one workflow task fewer).
   */
  compareWith?: { repo: string; sha: string };
}

/** GitHub's compare of `base...head` (src/activities/github.ts), as the orchestrator zone has it. */
export type CompareCommits = (input: { repo: string; base: string; head: string }) => Promise<CommitComparison>;

async function lookUpCaller(
  client: Client,
  input: LaneCallerQuestion,
  compareCommits?: CompareCommits,
): Promise<LaneCallerFacts> {
  const facts = await callerFacts(client, input);
  return compareCommits ? withComparison(facts, input.compareWith, compareCommits) : facts;
}

/** How long the look-up waits for GitHub's compare: well inside its own timeout, so a slow GitHub never fails it. */
export const FOLDED_COMPARE_DEADLINE_MS = 10_000;

/**
 * The found change's head compared with what runs (base = the head, head = what runs, as the lane's grant reads
 * it). Only for a change of the lane's repository that waits for the lane (a request naming any other run costs
 * no GitHub call). Left out when GitHub does not answer in time: the lane then compares on its own.
 */
export async function withComparison(
  facts: LaneCallerFacts,
  against: LaneCallerQuestion['compareWith'],
  compareCommits: CompareCommits,
  deadlineMs = FOLDED_COMPARE_DEADLINE_MS,
): Promise<LaneCallerFacts> {
  const base = facts.change?.headSha;
  const repo = against?.repo;
  const head = against?.sha;
  if (facts.workflowType !== 'changeWorkflow' || typeof repo !== 'string' || typeof head !== 'string') return facts;
  if (!base || !head || base === head) return facts;
  if (!facts.change?.change.toLowerCase().startsWith(`${repo.toLowerCase()}#`)) return facts;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), deadlineMs)));
  const result = await Promise.race([compareCommits({ repo, base, head }).catch(() => undefined), late]);
  clearTimeout(timer);
  return result ? { ...facts, comparison: { base, head, result } } : facts;
}

async function callerFacts(client: Client, input: LaneCallerQuestion): Promise<LaneCallerFacts> {
  const facts: LaneCallerFacts = {
    workflowId: String(input.workflowId),
    runId: String(input.runId),
    found: false,
    pending: [],
  };
  let handle;
  let memo: Record<string, unknown> | undefined;
  try {
    handle = client.workflow.getHandle(facts.workflowId, facts.runId);
    const described = await handle.describe();
    // An empty run ID names no run: the server would describe the latest one, a run that never asked.
    if (described.runId !== facts.runId) return facts;
    memo = described.memo;
    Object.assign(facts, {
      found: true,
      workflowType: described.type,
      taskQueue: described.taskQueue,
      status: described.status.name,
      pending: (described.raw.pendingActivities ?? []).map((a) => ({
        type: a.activityType?.name ?? '',
        id: a.activityId ?? '',
      })),
    });
  } catch (error) {
    // Only the server saying there is no such run means the holder is gone; anything else (a timeout, the
    // server busy) is retried — taking a running holder's lane for a slow answer lets two deploys overlap.
    if (error instanceof WorkflowNotFoundError || isInvalidArgument(error)) return facts;
    throw error;
  }
  const atGate = gateViewOf(memo, facts, input.environment);
  if (atGate) return { ...facts, change: atGate };
  // A rollback answers its status in the same shape where the lane reads it.
  if (
    (facts.workflowType === 'changeWorkflow' || facts.workflowType === 'rollbackWorkflow') &&
    !(input.changeOnlyIfEnded === true && facts.status === 'RUNNING')
  ) {
    const change = await changeFacts(handle, input.environment);
    if (change) facts.change = change;
  }
  return facts;
}

/** The change as its own status query answers, for this environment. */
async function changeFacts(handle: WorkflowHandle, environment: string): Promise<LaneCallerFacts['change']> {
  const status = await handle.query<ChangeStatus>('status').catch(() => undefined);
  if (!status) return undefined;
  const env = status.environments.find((e) => e.name === environment);
  return {
    change: status.change,
    headSha: status.headSha,
    ...(env
      ? {
          environment: {
            state: env.state,
            approvedBy: env.approvedBy,
            ...(env.emergency ? { emergency: env.emergency } : {}),
            ...(env.deploy?.sha ? { deployedSha: env.deploy.sha } : {}),
          },
        }
      : {}),
  };
}

export function createLaneActivities(
  env: NodeJS.ProcessEnv = process.env,
  options: { compareCommits?: CompareCommits } = {},
) {
  const grace = reclaimGraceOf(env);
  return {
    /** Joins the lane (starting it if it is not running) and returns once this run holds it, or was declined. */
    async acquireLane(input: LaneCall): Promise<LaneGrant> {
      const ctx = Context.current();
      const client = ctx.client;
      const lane = laneIdFor(input.repo, input.environment, ctx.info.taskQueue);
      const self = me();
      const ask = () =>
        client.workflow.signalWithStart('laneWorkflow', {
          workflowId: lane,
          taskQueue: ctx.info.taskQueue,
          args: [{ lane, ...grace }],
          signal: 'request',
          signalArgs: [self],
        });
      await ask();
      let askedAt = Date.now();
      /** Sends the request again once `ms` have passed since the last one (a duplicate is harmless). */
      const askAgainAfter = async (ms: number) => {
        if (Date.now() - askedAt < ms) return;
        askedAt = Date.now();
        await ask().catch(() => undefined);
      };
      return until(client, lane, async (answer): Promise<LaneGrant | undefined> => {
        // The lane ended (terminated, failed) before answering: its next run takes over what it knew.
        if (answer.kind === 'none') return void (await askAgainAfter(RESTART_MS));
        const { memo } = answer;
        if (memo.holder?.workflowId === self.workflowId && memo.holder.runId === self.runId)
          return { granted: true, lane, ...(memo.running ? { running: memo.running.sha } : {}) };
        const declined = memo.declined[self.runId];
        if (declined) return { granted: false, lane, reason: declined };
        const refused = memo.refused[self.runId];
        if (refused) return { granted: false, lane, reason: `the lane refused the request: ${refused}` };
        if (!memo.queue.some((t) => t.workflowId === self.workflowId && t.runId === self.runId))
          await askAgainAfter(REASK_MS);
        return undefined;
      });
    },

    /** Gives the lane back (or leaves its queue) and returns once the lane has let go of this run. */
    async releaseLane(input: LaneCall): Promise<{ released: boolean }> {
      const ctx = Context.current();
      const client = ctx.client;
      const lane = laneIdFor(input.repo, input.environment, ctx.info.taskQueue);
      const self = me();
      const ours = (m: LaneMemo) =>
        (m.holder?.runId === self.runId && m.holder.workflowId === self.workflowId) ||
        m.queue.some((t) => t.runId === self.runId && t.workflowId === self.workflowId);
      const before = await until(client, lane, (answer) => answer);
      if (before.kind === 'none' || !ours(before.memo)) return { released: false };
      await client.workflow.getHandle(lane).signal('release', self);
      return until(client, lane, (answer) =>
        answer.kind === 'memo' && ours(answer.memo) ? undefined : { released: true },
      );
    },

    /** Who a lane signal claims to come from, as the Temporal server and that workflow itself answer. */
    async lookUpLaneCaller(input: LaneCallerQuestion): Promise<LaneCallerFacts> {
      return lookUpCaller(Context.current().client, input, options.compareCommits);
    },

    /**
     * A lane started afresh (its previous run terminated, say by someone with Temporal access) takes over what
     * its latest earlier run knew — holder, queue, releases — read from that run itself (a query replays it).
     */
    async priorLaneState(input: {
      workflowId: string;
      runId: string;
      taskQueue: string;
    }): Promise<{ runId: string; status: string; state: LaneState } | undefined> {
      const client = Context.current().client;
      const runs: Array<{ runId: string; status: string; startTime: Date }> = [];
      for await (const e of client.workflow.list({ query: `WorkflowId = ${JSON.stringify(input.workflowId)}` })) {
        if (e.runId !== input.runId && e.type === 'laneWorkflow' && e.taskQueue === input.taskQueue)
          runs.push({ runId: e.runId, status: e.status.name, startTime: e.startTime });
      }
      runs.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
      for (const run of runs.slice(0, 5)) {
        const state = await client.workflow
          .getHandle(input.workflowId, run.runId)
          .query<LaneState>('state')
          .catch(() => undefined);
        if (state && state.v === 1 && state.lane === input.workflowId)
          return { runId: run.runId, status: run.status.toLowerCase(), state };
      }
      return undefined;
    },

    /** Which run a lane continued from, as the server has it. */
    async describeLaneRun(input: {
      workflowId: string;
      runId: string;
    }): Promise<{ workflowType: string; taskQueue: string; status: string } | undefined> {
      try {
        const described = await Context.current().client.workflow.getHandle(input.workflowId, input.runId).describe();
        return {
          workflowType: described.type,
          taskQueue: described.taskQueue,
          status:
            described.status.name === 'CONTINUED_AS_NEW' ? 'continued-as-new' : described.status.name.toLowerCase(),
        };
      } catch {
        return undefined;
      }
    },
  };
}

/** A gRPC INVALID_ARGUMENT (a workflow or run ID no run can have): no such caller, as with NOT_FOUND. */
function isInvalidArgument(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  return cause?.code === 3 || (error as { code?: unknown } | undefined)?.code === 3;
}
