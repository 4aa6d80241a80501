// POST /api/rollbacks (Bearer GitHub token): an eligible person asks for an environment to run an earlier
// release again. The gateway only authenticates the person and signs what they asked; whether they may, and
// which release, the rollbackWorkflow decides from the signed request (src/shared/rollback.ts).
// GET /api/rollbacks/{id}: the rollback's status, as private as the repository's changes.
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { resolvePerson } from '../../policy/sod.ts';
import {
  parseRollbackId,
  rollbackWorkflowId,
  signRollback,
  type RollbackClaim,
  type RollbackStatus,
  type RollbackWorkflowInput,
} from '../../shared/rollback.ts';
import { TASK_QUEUES } from '../../shared/task-queues.ts';
import type { GatewayContext, RouteHandler } from '../app.ts';
import { bearerToken, resolveGitHubLogin } from '../approvals/github-token.ts';
import { loadSigningKey } from '../approvals/signing.ts';
import { header, HttpError, readBody, sendJson } from '../http.ts';
import { parseJsonBody } from '../json-body.ts';
import { ReadAccess } from '../read-access.ts';

const BODY_LIMIT = 16 * 1024;
const MAX_REASON = 2000;
/** How long GET waits for the workflow's status query before answering from describe() instead. */
const QUERY_DEADLINE_MS = 5_000;

const bodySchema = z.strictObject({
  repo: z.string({ error: 'expected "owner/repo"' }).regex(/^[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/, {
    error: 'expected "owner/repo"',
  }),
  environment: z
    .string({ error: 'expected an environment name such as production' })
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, {
      error: 'expected an environment name such as production',
    }),
  to: z
    .string({ error: 'expected a commit SHA or its prefix (7 to 64 hex characters)' })
    .regex(/^[0-9a-fA-F]{7,64}$/, { error: 'expected a commit SHA or its prefix (7 to 64 hex characters)' })
    .optional(),
  reason: z
    .string({ error: 'say why you roll back (it is recorded with the rollback)' })
    .trim()
    .min(1, { error: 'say why you roll back (it is recorded with the rollback)' })
    .max(MAX_REASON, { error: `at most ${MAX_REASON} characters` }),
});

type RollbackBody = z.output<typeof bodySchema>;

function parseBody(raw: Buffer): RollbackBody {
  return parseJsonBody(raw, bodySchema, {
    send: '{"repo": "owner/repo", "environment": "<name>", "to"?: "<sha>", "reason": "<why>"}',
    unknownFields: 'who asks is taken from the token, not the body',
  });
}

/** The repository and environment must be configured: anything else could never be rolled back. */
function requireConfigured(ctx: GatewayContext, body: RollbackBody): void {
  const config = ctx.config();
  const repo = config.repositories.find((r) => r.name.toLowerCase() === body.repo.toLowerCase());
  if (!repo)
    throw new HttpError(404, `invalid field repo: repository ${body.repo} is not configured in foureyes.yaml`, {
      field: 'repo',
    });
  const names = repo.environments ?? config.environments.map((e) => e.name);
  if (!names.includes(body.environment))
    throw new HttpError(
      400,
      `invalid field environment: ${repo.name} has no environment ${body.environment} (it has ${names.join(', ')})`,
      { field: 'environment' },
    );
}

export const handlePostRollback: RouteHandler = async (req, res, _params, ctx) => {
  const rawBody = await readBody(req, BODY_LIMIT);
  const token = bearerToken(req.headers); // 401 at once without a token
  // Validate before asking GitHub about the token: a malformed call costs no API request.
  const body = parseBody(rawBody);
  requireConfigured(ctx, body);
  const { login } = await resolveGitHubLogin(token, ctx.env);
  let key;
  try {
    key = loadSigningKey(ctx.env);
  } catch (error) {
    throw new HttpError(500, (error as Error).message);
  }
  const config = ctx.config();
  const repo = config.repositories.find((r) => r.name.toLowerCase() === body.repo.toLowerCase())?.name ?? body.repo;
  // The configured spelling of the person; a login nobody configured stays as GitHub gave it, for the workflow to refuse.
  const person = resolvePerson(config.people, { login }) ?? login;
  const claim: RollbackClaim = {
    v: 1,
    kind: 'rollback',
    repo,
    environment: body.environment,
    person,
    // The CLI labels itself; the label only names the channel in the record, it grants nothing.
    channel: header(req, 'x-foureyes-client') === 'cli' ? 'cli' : 'api',
    evidence: { tokenLogin: login },
    ...(body.to ? { to: body.to.toLowerCase() } : {}),
    reason: body.reason,
    at: new Date().toISOString(),
    nonce: randomUUID(),
  };
  const workflowId = rollbackWorkflowId(repo, body.environment, claim.nonce);
  const input: RollbackWorkflowInput = { request: signRollback(claim, key) };
  try {
    await ctx.client.workflow.start('rollbackWorkflow', {
      workflowId,
      // The queue change workflows run on: a rollback takes the same lane, lease and deploy zone.
      taskQueue: ctx.env.FOUREYES_TASK_QUEUE || TASK_QUEUES.orchestrator,
      args: [input],
      // One signed request runs once, even when the gateway's start is retried.
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      staticSummary: `rollback of ${repo} @ ${body.environment} asked by ${person}`,
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError)
      throw new HttpError(409, `rollback ${workflowId} was already started`);
    const message = (error as Error)?.message ?? '';
    if (/deadline|timed? ?out|UNAVAILABLE|DEADLINE_EXCEEDED|connect/i.test(message))
      throw new HttpError(503, 'cannot reach Temporal to start the rollback; nothing was started, try again later');
    throw error;
  }
  sendJson(res, 202, { rollback: workflowId, status: `/api/rollbacks/${encodeURIComponent(workflowId)}` });
};

export type RollbackView = RollbackStatus & { status: string };

/** GET /api/rollbacks/{id}: the workflow's `status` query plus its Temporal execution status. */
export const handleGetRollback: RouteHandler = async (req, res, params, ctx) => {
  bearerToken(req.headers); // 401 at once without a token
  const id = params.id ?? '';
  const parsed = parseRollbackId(id);
  if (!parsed)
    throw new HttpError(
      404,
      `no rollback ${JSON.stringify(id.slice(0, 200))}: expected an ID such as rollback:owner/repo@production:<nonce>, as POST /api/rollbacks answered`,
    );
  await (ctx.readAccess ?? new ReadAccess()).requireReader(req, ctx.env, parsed.repo);
  const handle = ctx.client.workflow.getHandle(id);
  let described;
  try {
    described = await handle.describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new HttpError(404, `no rollback ${id}`);
    throw error;
  }
  // Until its first workflow task completes (started, task scheduled, task started) a workflow cannot answer a
  // query; asking would only wait for the deadline.
  const answered = described.historyLength > 3;
  const status = answered
    ? await ctx.client
        .withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query<RollbackStatus>('status'))
        .catch(() => undefined)
    : undefined;
  const execution = described.status.name;
  if (status) {
    sendJson(res, 200, { ...status, status: execution } satisfies RollbackView);
    return;
  }
  // Not answering yet: no worker has run its first task (it is starting), or it ended before it could.
  if (execution === 'COMPLETED')
    throw new HttpError(
      503,
      `rollback ${id} completed, but no orchestrator worker answers its status now; try again when the orchestrator runs`,
    );
  const running = execution === 'RUNNING' || execution === 'CONTINUED_AS_NEW';
  const view: RollbackView = {
    kind: 'rollback',
    rollback: id,
    repo: parsed.repo,
    environment: parsed.environment,
    requestedBy: '',
    reason: '',
    stage: running ? 'checking' : 'failed',
    summary: running ? 'starting' : `the rollback workflow ended (${execution}) before it reported a status`,
    change: '',
    headSha: '',
    approvedBy: [],
    environments: [],
    timeline: [],
    status: execution,
  };
  sendJson(res, 200, view);
};
