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
    const code = (error as { code?: unknown; cause?: { code?: unknown } }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
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
