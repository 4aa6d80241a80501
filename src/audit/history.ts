// Reading a change's workflow histories from Temporal: every run of the continue-as-new chain, in order,
// with payloads decoded. The audit is built from these events, not from the workflow's mutable state.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';

export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface RunHistory {
  runId: string;
  events: HistoryEvent[];
}

export function decodePayloads(payloads: { payloads?: Payload[] | null } | null | undefined): unknown[] {
  return (payloads?.payloads ?? []).map((p) => {
    try {
      return defaultPayloadConverter.fromPayload(p);
    } catch {
      return '(undecodable payload)';
    }
  });
}

export function eventTime(event: HistoryEvent): string {
  const t = event.eventTime;
  if (!t) return '';
  const ms = Number(t.seconds ?? 0) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6);
  return new Date(ms).toISOString();
}

async function fetchRun(client: Client, workflowId: string, runId: string | undefined): Promise<RunHistory> {
  const handle = client.workflow.getHandle(workflowId, runId);
  // fetchHistory surfaces an unknown workflow as a raw gRPC NOT_FOUND (code 5), not as WorkflowNotFoundError
  // like describe() does; callers answer 404 / "no change" only for the latter.
  const history = await handle.fetchHistory().catch((error: unknown) => {
    const code =
      (error as { code?: unknown; cause?: { code?: unknown } }).code ??
      (error as { cause?: { code?: unknown } }).cause?.code;
    if (code === 5) throw new WorkflowNotFoundError(`workflow not found: ${workflowId}`, workflowId, runId);
    throw error;
  });
  const events = history.events ?? [];
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  const resolvedRunId = runId ?? started?.originalExecutionRunId ?? (await handle.describe()).runId;
  return { runId: resolvedRunId, events };
}

/**
 * All runs of the continue-as-new chain that contains `runId` (default: the latest run), oldest first.
 * A change that waited for weeks and continued-as-new many times is one record.
 */
export async function fetchChangeHistory(client: Client, workflowId: string, runId?: string): Promise<RunHistory[]> {
  const first = await fetchRun(client, workflowId, runId);
  if (runId === undefined) first.runId = (await client.workflow.getHandle(workflowId).describe()).runId;
  const runs: RunHistory[] = [first];
  // Backwards: each continued run names the run it continued.
  for (let guard = 0; guard < 10_000; guard++) {
    const previous = runs[0]?.events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!previous) break;
    runs.unshift(await fetchRun(client, workflowId, previous));
  }
  // Forwards: a run that continued-as-new names its successor.
  for (let guard = 0; guard < 10_000; guard++) {
    const last = runs[runs.length - 1] as RunHistory;
    const next = last.events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    if (!next) break;
    runs.push(await fetchRun(client, workflowId, next));
  }
  return runs;
}

const MAX_RUNS = 10_000;

function firstEventMs(run: RunHistory): number {
  const t = run.events[0]?.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + Number(t.nanos ?? 0) / 1e6 : 0;
}

/** Run IDs of the change's earlier runs that a run's beginChange named (read from the change's own records). */
function priorRunIds(run: RunHistory): string[] {
  const begin = new Set<string>();
  const ids: string[] = [];
  for (const event of run.events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name === 'beginChange') begin.add(String(event.eventId ?? ''));
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed && begin.has(String(completed.scheduledEventId ?? ''))) {
      const [result] = decodePayloads(completed.result);
      const runs = (result as { prior?: { runs?: Array<{ runId?: unknown }> } } | undefined)?.prior?.runs ?? [];
      for (const r of Array.isArray(runs) ? runs : []) if (typeof r?.runId === 'string') ids.push(r.runId);
    }
  }
  return ids;
}

/**
 * Every run of a change, oldest first: the continue-as-new chain of each run, and the runs of the same
 * workflow ID before it was closed and reopened — found both in visibility and in what each run's
 * beginChange read of its predecessors (visibility may lag a run that just closed).
 */
export async function fetchAllRuns(client: Client, workflowId: string): Promise<RunHistory[]> {
  const byId = new Map<string, RunHistory>();
  const add = (runs: RunHistory[]) => {
    for (const r of runs) byId.set(r.runId, r);
  };
  add(await fetchChangeHistory(client, workflowId));
  const candidates = new Set<string>();
  for await (const execution of client.workflow.list({ query: `WorkflowId = '${workflowId.replace(/['\\]/g, '')}'` })) {
    candidates.add(execution.runId);
    if (candidates.size > MAX_RUNS) break;
  }
  for (;;) {
    for (const run of byId.values()) for (const id of priorRunIds(run)) candidates.add(id);
    const next = [...candidates].find((id) => !byId.has(id));
    if (next === undefined || byId.size > MAX_RUNS) break;
    candidates.delete(next);
    const chain = await fetchChangeHistory(client, workflowId, next).catch((error: unknown) => {
      // A run named by an earlier record but no longer retained by the server: the export says so by its absence.
      if (error instanceof WorkflowNotFoundError) return [] as RunHistory[];
      throw error;
    });
    add(chain);
    if (!chain.length) byId.set(next, { runId: next, events: [] });
  }
  return [...byId.values()].filter((r) => r.events.length > 0).sort((a, b) => firstEventMs(a) - firstEventMs(b));
}
