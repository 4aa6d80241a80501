import { WorkflowNotFoundError } from '@temporalio/client';
import type { RouteHandler } from '../app.ts';
import { HttpError, sendJson } from '../http.ts';
import { renderMarkdown } from '../../audit/document.ts';
import { exportChange } from '../../audit/export.ts';
import { formatChangeRef } from '../../shared/change-ref.ts';
import { bearerToken } from '../approvals/github-token.ts';
import { changeFromParams, requireReader } from './changes.ts';

/** GET /api/changes/{owner}/{repo}/{number}/audit[?format=md|json][&run=<runId>]: the sealed audit record. */
export const handleGetAudit: RouteHandler = async (req, res, params, ctx) => {
  bearerToken(req.headers); // 401 at once without a token
  const ref = changeFromParams(params);
  const url = new URL(req.url ?? '/', 'http://gateway');
  const format = url.searchParams.get('format') ?? 'json';
  if (format !== 'json' && format !== 'md')
    throw new HttpError(400, `format: expected json or md, found ${JSON.stringify(format.slice(0, 20))}`);
  const run = url.searchParams.get('run') ?? undefined;
  if (run !== undefined && !/^[0-9a-f-]{36}$/i.test(run))
    throw new HttpError(400, 'run: expected a Temporal run ID (a UUID)');
  // Input checked first: a malformed request costs no GitHub API call.
  await requireReader(req, ctx, ref);
  try {
    const doc = await exportChange(ctx.client, ref, { runId: run, signingKey: ctx.env.FOUREYES_AUDIT_SIGNING_KEY });
    if (format === 'json') sendJson(res, 200, doc);
    else {
      const text = renderMarkdown(doc);
      res.writeHead(200, { 'content-type': 'text/markdown; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      throw new HttpError(404, `no change ${formatChangeRef(ref)}${run ? ` with run ${run}` : ''}`);
    throw error;
  }
};
