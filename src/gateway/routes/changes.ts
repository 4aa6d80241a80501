import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
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
  return retrying.length > 0 ? { ...status, retrying } : status;
}
