// Reading a change as its operators see it: the workflow's status query plus what only the Temporal server knows
// (the steps it is retrying, a failed run's error). One reader for the CLI and the gateway.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ChangeStatus, RetryingStep } from '../shared/types.ts';
import { statusQuery } from '../workflows/definitions.ts';

/** The workflow's status plus the steps Temporal is retrying and why (the workflow cannot see its retries). */
export async function changeStatus(handle: WorkflowHandle): Promise<ChangeStatus> {
  const status = await handle.query(statusQuery);
  const described = await handle.describe().catch(() => undefined);
  const retrying: RetryingStep[] = (described?.raw.pendingActivities ?? [])
    .filter((a) => (a.attempt ?? 0) > 1 && a.lastFailure?.message)
    .map((a) => ({
      activity: a.activityType?.name ?? 'activity',
      attempt: a.attempt ?? 0,
      lastFailure: String(a.lastFailure?.message).slice(0, 500),
      ...(a.nextAttemptScheduleTime?.seconds
        ? { nextAttemptAt: new Date(Number(a.nextAttemptScheduleTime.seconds) * 1000).toISOString() }
        : {}),
    }));
  const failure = described?.status.name === 'FAILED' ? await failureOf(handle) : undefined;
  return { ...status, ...(retrying.length > 0 ? { retrying } : {}), ...(failure ? { failure } : {}) };
}

/** A failed run's error as the Temporal UI shows it (e.g. a refused start), for `foureyes status`. */
async function failureOf(handle: WorkflowHandle): Promise<ChangeStatus['failure']> {
  const error = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  const cause = (error instanceof WorkflowFailedError ? error.cause : error) as
    { type?: string; name?: string; message?: string } | undefined;
  return cause
    ? { type: cause.type ?? cause.name ?? 'Error', message: String(cause.message ?? '').slice(0, 1000) }
    : undefined;
}
