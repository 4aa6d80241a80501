// Orchestrator activity: how a run of a change begins. It loads the policy from trusted configuration and
// finds out, from Temporal itself, where the run's record may come from:
// - a run continued as new carries its predecessor's record: this says which run that was (its workflow type,
//   task queue and how it closed), so the workflow takes the record only from a run of its own;
// - a run started afresh (the pull request was reopened) begins from the change's earlier runs: the record a
//   completed run returned, or, for a run that ended without one (terminated, failed), what its history shows
//   of the people who took part and the claims it received. A change's record belongs to the change, not a run.
import { Context } from '@temporalio/activity';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import proto from '@temporalio/proto';
import type { FoureyesConfig } from '../config/schema.ts';
import {
  addInitiator,
  collectInitiators,
  decideEvent,
  shortSha,
  type Initiators,
  type Predecessor,
} from '../policy/sod.ts';
import { approvalSigner } from '../shared/approval-signature.ts';
import {
  EMERGENCY_MEMO_KEY,
  emergencySigner,
  type EmergencyRecord,
  type SignedEmergency,
} from '../shared/emergency.ts';
import { CORE_V2_PATCH, patchOf } from '../shared/patches.ts';
import type { ChangePolicy, PullRequestEvent, PullRequestFacts, RunInfo, SignedApproval } from '../shared/types.ts';
import { policyFor } from './policy.ts';

export interface BeginInput {
  change: string;
  repo: string;
  workflowId: string;
  runId: string;
  /** Set when this run continued as new from that run (workflowInfo().continuedFromExecutionRunId). */
  continuedFromRunId?: string;
}

/** What the change's earlier runs leave to a run started afresh. */
export interface PriorRecord {
  /** The record the latest completed run returned (core v2), as it returned it. */
  record?: unknown;
  /** Who took part and which claims were used, from runs that ended without a record. */
  initiators: Initiators;
  nonces: string[];
  /**
   * The emergencies of runs that ended without a record, as each run last published them (its own memo
   * upserts, never the memo a start was given): a review they owe is still owed.
   */
  emergencies?: EmergencyRecord[];
  /** Every earlier run of the change, oldest first. */
  runs: RunInfo[];
  /** What was read from where, for the timeline. */
  notes: string[];
}

export interface BeginResult {
  policy: ChangePolicy;
  /** The task queue this run is on, as the server has it (the workflow decides from history, not from its worker). */
  taskQueue: string;
  predecessor?: Predecessor;
  prior?: PriorRecord;
}

/** A run that is a reset of another run of the change (workflowInfo().runId is not originalExecutionRunId). */
export interface ResetInput {
  change: string;
  repo: string;
  workflowId: string;
  runId: string;
}

/** What the runs a reset run was reset from leave it: the history after the reset point is not in its own. */
export interface ResetRecovery {
  /** Their emergencies as each last published them (its own memo upserts, never a start's memo), newest run first. */
  emergencies: EmergencyRecord[];
  /** The nonces of the signed claims they received (approvals, declarations). */
  nonces: string[];
  /** The runs read, newest first. */
  runIds: string[];
  notes: string[];
}

const MAX_RUNS = 20;
const CHANGE_WORKFLOW = 'changeWorkflow';

const STATUS: Record<string, string> = {
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'was cancelled',
  TERMINATED: 'was terminated',
  CONTINUED_AS_NEW: 'continued-as-new',
  TIMED_OUT: 'timed out',
  RUNNING: 'is still running',
};

export function createChangeHistoryActivities(getConfig: () => FoureyesConfig, approvalKeys: string[]) {
  return {
    async beginChange(input: BeginInput): Promise<BeginResult> {
      const config = getConfig();
      const policy = policyFor(config, input.repo, approvalKeys);
      const client = Context.current().client;
      const taskQueue = (await client.workflow.getHandle(input.workflowId, input.runId).describe()).taskQueue;
      if (input.continuedFromRunId)
        return {
          policy,
          taskQueue,
          ...(await describePredecessor(client, input.workflowId, input.continuedFromRunId)),
        };
      const prior = await priorRecord(client, { ...input, taskQueue }, policy);
      return { policy, taskQueue, ...(prior ? { prior } : {}) };
    },

    /**
     * A reset run's own history names the run it was reset from (the server's WorkflowTaskFailed event of cause
     * ResetWorkflow, which no client writes): that run, and any run it was reset from in turn, is read like a
     * run that ended without a record. Only runs of foureyes' own workflow type on the run's own task queue count.
     */
    async recoverReset(input: ResetInput): Promise<ResetRecovery> {
      const policy = policyFor(getConfig(), input.repo, approvalKeys);
      const client = Context.current().client;
      const own = await client.workflow.getHandle(input.workflowId, input.runId).describe();
      const recovery: ResetRecovery = { emergencies: [], nonces: [], runIds: [], notes: [] };
      const seen = new Set([input.runId]);
      const queue = resetBases((await client.workflow.getHandle(input.workflowId, input.runId).fetchHistory()).events);
      while (queue.length > 0 && seen.size <= MAX_RUNS) {
        const base = queue.shift() as string;
        if (seen.has(base)) continue;
        seen.add(base);
        const described = await client.workflow
          .getHandle(input.workflowId, base)
          .describe()
          .catch(() => undefined);
        if (!described || described.type !== CHANGE_WORKFLOW || described.taskQueue !== own.taskQueue) {
          recovery.notes.push(`run ${base} (reset from) is not one of the change's own runs: nothing taken from it`);
          continue;
        }
        // What a start carried into the run is in this run's history too (a reset keeps the start): not read again.
        const scanned = await scanRun(client, input.workflowId, base, policy, input.change, () => false);
        if (!scanned.trusted) continue;
        recovery.runIds.push(base);
        for (const n of scanned.nonces) if (!recovery.nonces.includes(n)) recovery.nonces.push(n);
        for (const e of scanned.emergencies)
          if (!recovery.emergencies.some((x) => x.id === e.id)) recovery.emergencies.push(e);
        recovery.notes.push(`run ${base} (${STATUS[described.status.name] ?? described.status.name.toLowerCase()})`);
        queue.push(...scanned.resetFrom);
      }
      return recovery;
    },
  };
}

async function describePredecessor(
  client: Client,
  workflowId: string,
  runId: string,
): Promise<{ predecessor?: Predecessor }> {
  try {
    const described = await client.workflow.getHandle(workflowId, runId).describe();
    return {
      predecessor: {
        runId,
        workflowType: described.type,
        taskQueue: described.taskQueue,
        status: STATUS[described.status.name] ?? described.status.name.toLowerCase(),
      },
    };
  } catch {
    return {};
  }
}

interface Execution {
  runId: string;
  type: string;
  taskQueue: string;
  status: string;
  startTime: Date;
  closeTime?: Date;
}

async function priorRecord(
  client: Client,
  input: BeginInput & { taskQueue: string },
  policy: ChangePolicy,
): Promise<PriorRecord | undefined> {
  const runs: Execution[] = [];
  for await (const e of client.workflow.list({ query: `WorkflowId = ${JSON.stringify(input.workflowId)}` })) {
    if (e.runId !== input.runId)
      runs.push({
        runId: e.runId,
        type: e.type,
        taskQueue: e.taskQueue,
        status: e.status.name,
        startTime: e.startTime,
        ...(e.closeTime ? { closeTime: e.closeTime } : {}),
      });
  }
  // Only runs foureyes' own code ran (its workflow type on its own task queue); newest first.
  const ours = runs
    .filter((r) => r.type === CHANGE_WORKFLOW && r.taskQueue === input.taskQueue)
    .sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
  if (ours.length === 0) return undefined;
  const prior: PriorRecord = { initiators: {}, nonces: [], runs: [], notes: [] };
  for (const run of ours.slice(0, MAX_RUNS)) {
    const info: RunInfo = {
      runId: run.runId,
      startedAt: run.startTime.toISOString(),
      how: 'first',
      ...(run.closeTime ? { endedAt: run.closeTime.toISOString() } : {}),
      outcome: STATUS[run.status] ?? run.status.toLowerCase(),
    };
    if (run.status === 'COMPLETED') {
      const result = (await client.workflow
        .getHandle(input.workflowId, run.runId)
        .result()
        .catch(() => undefined)) as { record?: unknown } | undefined;
      if (result?.record && typeof result.record === 'object') {
        prior.record = result.record;
        prior.notes.push(`the record of run ${run.runId} (completed)`);
        break;
      }
    }
    if (run.status === 'CONTINUED_AS_NEW') continue;
    // A run continued from one of ours started with the change's record as its input: what it carried counts.
    const continuedFrom = (id: string) => ours.some((r) => r.runId === id && r.status === 'CONTINUED_AS_NEW');
    const scanned = await scanRun(client, input.workflowId, run.runId, policy, input.change, continuedFrom);
    if (!scanned.trusted) continue;
    prior.runs.unshift(info);
    for (const [who, roles] of Object.entries(scanned.initiators))
      for (const role of roles) addInitiator(prior.initiators, who, role);
    prior.nonces.push(...scanned.nonces);
    // Newest run first: the state it left is the latest of an emergency it shares with an older run.
    for (const e of scanned.emergencies)
      if (!(prior.emergencies ??= []).some((x) => x.id === e.id)) prior.emergencies.push(e);
    prior.notes.push(`who took part in run ${run.runId} (${info.outcome}, no record): read from its history`);
  }
  return prior;
}

type Event = temporal.api.history.v1.IHistoryEvent;

function decode(payloads: { payloads?: Payload[] | null } | null | undefined): unknown[] {
  return (payloads?.payloads ?? []).map((p) => {
    try {
      return defaultPayloadConverter.fromPayload(p);
    } catch {
      return undefined;
    }
  });
}

/**
 * What a run that ended without a record leaves: every person its pull request events and look-ups named, and
 * the nonces of the signed claims it received. A run that refused its own start (a forged one) leaves nothing.
 */
async function scanRun(
  client: Client,
  workflowId: string,
  runId: string,
  policy: ChangePolicy,
  change: string,
  continuedFrom: (runId: string) => boolean,
): Promise<{
  trusted: boolean;
  initiators: Initiators;
  nonces: string[];
  emergencies: EmergencyRecord[];
  resetFrom: string[];
}> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const events: Event[] = history.events ?? [];
  const resetFrom = resetBases(events);
  const initiators: Initiators = {};
  const nonces: string[] = [];
  let emergencies: EmergencyRecord[] = [];
  const failure = events.find((e) => e.workflowExecutionFailedEventAttributes)?.workflowExecutionFailedEventAttributes
    ?.failure;
  if (failure?.applicationFailureInfo?.type === 'UntrustedStart')
    return { trusted: false, initiators, nonces, emergencies, resetFrom };
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  if (started?.continuedExecutionRunId && continuedFrom(started.continuedExecutionRunId)) {
    const carried = (
      decode(started.input)[0] as
        { carried?: { initiators?: unknown; nonces?: unknown; emergencies?: unknown } } | undefined
    )?.carried;
    emergencies = emergencyRecords(carried?.emergencies);
    if (carried?.initiators && typeof carried.initiators === 'object') {
      for (const [who, roles] of Object.entries(carried.initiators as Record<string, unknown>))
        for (const role of Array.isArray(roles) ? roles : []) addInitiator(initiators, who, String(role));
    }
    if (Array.isArray(carried?.nonces))
      nonces.push(...carried.nonces.filter((n): n is string => typeof n === 'string'));
  }
  // Core v2 runs take only signed events; earlier runs applied every event (so what they named took part).
  const v2 = events.some((e) => patchOf(e) === CORE_V2_PATCH);
  const scheduled = new Map<string, string>();
  for (const e of events) {
    const signal = e.workflowExecutionSignaledEventAttributes;
    if (signal?.signalName === 'pullRequest') {
      const event = decode(signal.input)[0] as PullRequestEvent | undefined;
      if (
        !event ||
        typeof event !== 'object' ||
        (v2 && decideEvent(event, policy.approvalKeys, change).verdict !== 'accepted')
      )
        continue;
      if (event.pusher)
        addInitiator(initiators, String(event.pusher).toLowerCase(), `pusher of ${shortSha(String(event.headSha))}`);
      if (event.kind === 'opened' && event.author)
        addInitiator(initiators, String(event.author).toLowerCase(), 'author of the pull request');
      if (!v2 && Array.isArray(event.commits)) collectInitiators(policy.people, { commits: event.commits }, initiators);
    }
    const claims: unknown[] = [];
    if (signal?.signalName === 'approval') claims.push(decode(signal.input)[0]);
    const update = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
    if (update?.input?.name === 'approve') claims.push(decode(update.input.args)[0]);
    for (const signed of claims as SignedApproval[]) {
      if (
        signed &&
        typeof signed === 'object' &&
        approvalSigner(signed, policy.approvalKeys) &&
        typeof signed.claim?.nonce === 'string'
      )
        nonces.push(signed.claim.nonce);
    }
    if (update?.input?.name === 'emergency') {
      const signed = decode(update.input.args)[0] as SignedEmergency | undefined;
      if (
        signed &&
        typeof signed === 'object' &&
        emergencySigner(signed, policy.approvalKeys) &&
        typeof signed.claim?.nonce === 'string'
      )
        nonces.push(signed.claim.nonce);
    }
    // The run's own upserts (workflow commands): what it last published of its emergencies.
    const memo = e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.[EMERGENCY_MEMO_KEY];
    if (memo) emergencies = emergencyRecords(decode({ payloads: [memo] })[0]);
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched?.activityType?.name) scheduled.set(String(e.eventId), sched.activityType.name);
    const done = e.activityTaskCompletedEventAttributes;
    if (done && scheduled.get(String(done.scheduledEventId)) === 'lookUpPullRequest') {
      const found = decode(done.result)[0] as PullRequestFacts | undefined;
      if (found?.head)
        collectInitiators(policy.people, { author: found.author, commits: found.head.commits }, initiators);
    }
  }
  return { trusted: true, initiators, nonces, emergencies, resetFrom };
}

/** The runs a history says it was reset from (the server writes these events, newest last). */
function resetBases(events: Event[] | null | undefined): string[] {
  const bases: string[] = [];
  for (const e of events ?? []) {
    const failed = e.workflowTaskFailedEventAttributes;
    if (
      failed?.cause === proto.temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW &&
      failed.baseRunId &&
      !bases.includes(failed.baseRunId)
    )
      bases.push(failed.baseRunId);
  }
  return bases.reverse();
}

/** Emergency records as a run of the change kept them; anything not shaped like one is dropped. */
function emergencyRecords(value: unknown): EmergencyRecord[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (e): e is EmergencyRecord =>
      typeof e === 'object' &&
      e !== null &&
      typeof (e as EmergencyRecord).id === 'string' &&
      typeof (e as EmergencyRecord).sha === 'string' &&
      typeof (e as EmergencyRecord).declaredBy === 'string' &&
      typeof (e as EmergencyRecord).declaredAt === 'string' &&
      typeof (e as EmergencyRecord).windowEndsAt === 'string' &&
      typeof (e as EmergencyRecord).reviewDueAt === 'string' &&
      Array.isArray((e as EmergencyRecord).usedFor) &&
      Array.isArray((e as EmergencyRecord).environments),
  );
}
