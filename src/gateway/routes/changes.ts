import { WorkflowNotFoundError } from '@temporalio/client';
import { changeStatus } from '../../client/read-change.ts';
import type { RouteHandler } from '../app.ts';
import { HttpError, sendJson } from '../http.ts';
import { bearerToken } from '../approvals/github-token.ts';
import { ReadAccess } from '../read-access.ts';
import {
  ChangeRefError,
  formatChangeRef,
  makeChangeRef,
  workflowIdFor,
  type ChangeRef,
} from '../../shared/change-ref.ts';

export function changeFromParams(params: Record<string, string>) {
  try {
    return makeChangeRef(params.owner ?? '', params.repo ?? '', Number(params.number));
  } catch (error) {
    if (error instanceof ChangeRefError) throw new HttpError(400, error.message);
    throw error;
  }
}

/** 401/403 unless the caller may read the change's repository (see read-access.ts). */
export async function requireReader(
  req: Parameters<RouteHandler>[0],
  ctx: Parameters<RouteHandler>[3],
  ref: ChangeRef,
): Promise<void> {
  await (ctx.readAccess ?? new ReadAccess()).requireReader(req, ctx.env, `${ref.owner}/${ref.repo}`);
}

/** GET /api/changes/{owner}/{repo}/{number}: the change's status (the workflow's `status` query). */
export const handleGetChange: RouteHandler = async (req, res, params, ctx) => {
  bearerToken(req.headers); // 401 at once without a token
  const ref = changeFromParams(params);
  await requireReader(req, ctx, ref);
  const handle = ctx.client.workflow.getHandle(workflowIdFor(ref));
  try {
    sendJson(res, 200, await changeStatus(handle));
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      throw new HttpError(404, `no change ${formatChangeRef(ref)}: no pull request event has been received for it`);
    throw error;
  }
};
