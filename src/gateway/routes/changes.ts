import { WorkflowNotFoundError } from '@temporalio/client';
import { changeStatus } from '../../client/read-change.ts';
import type { RouteHandler } from '../app.ts';
import { HttpError, sendJson } from '../http.ts';
import { ChangeRefError, formatChangeRef, makeChangeRef, workflowIdFor } from '../../shared/change-ref.ts';

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
    if (error instanceof WorkflowNotFoundError)
      throw new HttpError(404, `no change ${formatChangeRef(ref)}: no pull request event has been received for it`);
    throw error;
  }
};
