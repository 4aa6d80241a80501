import { WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { ChangeStatus, RetryingStep } from '../../shared/types.ts';
import type { RouteHandler } from '../app.ts';
import { HttpError, sendJson } from '../http.ts';
import { ChangeRefError, formatChangeRef, makeChangeRef, workflowIdFor } from '../../shared/change-ref.ts';
import { statusQuery } from '../../workflows/definitions.ts';

export function changeFromParams(params: Record<string, string>) {
  try {
    return makeChangeRef(params.owner ?? '', params.repo ?? '', Number(params.number));
  } catch (error) {
    if (error instanceof ChangeRefError) throw new HttpError(400, error.message);
    throw error;
  }
}

/** GET /api/changes/{owner}/{repo}/{number}: the change's status (the workflow's `status` query). */
export const handleGetChange: RouteHandler = async (_req, res, params, ctx) => {
  const ref = changeFromParams(params);
  const handle = ctx.client.workflow.getHandle(workflowIdFor(ref));
  try {
    sendJson(res, 200, await changeStatus(handle));
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new HttpError(404, `no change ${formatChangeRef(ref)}: no pull request event has been received for it`);
    throw error;
  }
};

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
      ...(a.nextAttemptScheduleTime?.seconds ? { nextAttemptAt: new Date(Number(a.nextAttemptScheduleTime.seconds) * 1000).toISOString() } : {}),
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
  const cause = (error instanceof WorkflowFailedError ? error.cause : error) as { type?: string; name?: string; message?: string } | undefined;
  return cause ? { type: cause.type ?? cause.name ?? 'Error', message: String(cause.message ?? '').slice(0, 1000) } : undefined;
}
