// POST /api/changes/{owner}/{repo}/{number}/approvals (Bearer GitHub token): the API and CLI channel.
// Answers {counted, reason, environments, stage} as soon as the workflow has decided.
import type { RouteHandler } from '../app.ts';
import { header, HttpError, readBody, sendJson } from '../http.ts';
import { bearerToken, githubTokenChannel } from '../approvals/github-token.ts';
import { ApprovalDeliveryError, recordApproval } from '../approvals/record.ts';

const BODY_LIMIT = 16 * 1024;

export const handlePostApproval: RouteHandler = async (req, res, params, ctx) => {
  const rawBody = await readBody(req, BODY_LIMIT);
  const request = { headers: req.headers, rawBody, params };
  bearerToken(req.headers); // 401 at once without a token
  // Validate the request before asking GitHub about the token: a malformed call costs no API request.
  const intent = githubTokenChannel.intent(request, ctx);
  const { person, evidence } = await githubTokenChannel.authenticate(request, ctx);
  if (intent.environment && !ctx.config().environments.some((e) => e.name === intent.environment)) {
    throw new HttpError(
      400,
      `invalid field environment: no environment ${intent.environment} in foureyes.yaml (known: ${ctx
        .config()
        .environments.map((e) => e.name)
        .join(', ')})`,
      { field: 'environment' },
    );
  }
  // The CLI labels itself; the label only names the channel in the record, it grants nothing.
  const channel = header(req, 'x-foureyes-client') === 'cli' ? 'cli' : 'api';
  try {
    const { outcome, elapsedMs } = await recordApproval(ctx, { ...intent, person, evidence, channel });
    sendJson(res, 200, outcome, { 'server-timing': `workflow;dur=${elapsedMs}` });
  } catch (error) {
    if (error instanceof ApprovalDeliveryError) {
      throw new HttpError(error.kind === 'unknown-change' ? 404 : error.kind === 'closed' ? 409 : 503, error.message);
    }
    throw error;
  }
};
