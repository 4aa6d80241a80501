// POST /webhooks/github: GitHub's deliveries in, durable Temporal starts and signals out.
//
// 1. The X-Hub-Signature-256 HMAC is verified in constant time on the raw bytes before anything is parsed
//    (401 when missing or wrong; nothing happens).
// 2. Malformed JSON or a payload of the wrong shape is a 400, an unknown event or action a 202 {ignored},
//    a repository missing from foureyes.yaml a 422, each with the reason.
// 3. A delivery ID that already had its effect answers the same again; the workflow ignores seen delivery
//    IDs too, so a duplicate has one effect even across gateway restarts.
// 4. The answer goes out only once Temporal durably accepted the start or signal (nothing acknowledged is
//    lost), and nothing else is done inline: the change's work happens in the workflow. A pull_request
//    event is sent without its commits and changed files (GitHub's webhook does not carry them): the
//    workflow has the orchestrator look them up, so the answer never waits on GitHub's API. Only a review
//    for a change not yet started reads the pull request here.
// 5. Every pull request event and close is signed with the gateway's key for its change: the workflow
//    refuses (and records) any that is not, so a signal sent straight to Temporal moves nothing.
// The gateway never reads policy from the pull request; the changed file names (looked up by the
// orchestrator) let the workflow flag a change to the policy paths of the trusted configuration.
import { WorkflowNotFoundError } from '@temporalio/client';
import { Webhooks } from '@octokit/webhooks';
import type { IncomingMessage } from 'node:http';
import type { RouteHandler, GatewayContext } from '../app.ts';
import { header, HttpError, readBody, sendJson } from '../http.ts';
import { DeliveryLog, type DeliveryAnswer } from '../github/deliveries.ts';
import { pullRequestFacts, pullRequestPayload, reviewPayload, type PullRequestJson } from '../github/payloads.ts';
import { createGitHubClients, GitHubConfigError, type GitHubClients } from '../../activities/github-client.ts';
import { loadSigningKey } from '../approvals/signing.ts';
import { signClaim, signEvent } from '../../shared/approval-signature.ts';
import {
  ChangeRefError,
  formatChangeRef,
  makeChangeRef,
  workflowIdFor,
  type ChangeRef,
} from '../../shared/change-ref.ts';
import { AuthorAttr, PullNumberAttr, RepoAttr } from '../../shared/search-attributes.ts';
import type { ApprovalClaim, ApprovalDecision, PullRequestEvent } from '../../shared/types.ts';
import { approvalSignal, pullRequestClosedSignal, pullRequestSignal } from '../../workflows/definitions.ts';
import type { z } from 'zod';

/** GitHub caps payloads at 25 MB; the events foureyes reads are far smaller. */
export const WEBHOOK_BODY_LIMIT = 5 * 1024 * 1024;

export class WebhookSecretError extends Error {
  override name = 'WebhookSecretError';
}

/** The webhook secret, checked at gateway start-up so a misconfiguration is found before GitHub's first delivery. */
export function requireWebhookSecret(env: NodeJS.ProcessEnv): string {
  const secret = env.GITHUB_WEBHOOK_SECRET;
  if (!secret || secret.trim() === '') {
    throw new WebhookSecretError(
      'GITHUB_WEBHOOK_SECRET is not set: the gateway verifies every GitHub delivery with it. Set it to the secret of the repository or App webhook (in offline mode `foureyes up` sets it for the stand-in)',
    );
  }
  return secret;
}

interface WebhookState {
  webhooks: Webhooks;
  deliveries: DeliveryLog;
  github?: GitHubClients;
}

const states = new WeakMap<GatewayContext, WebhookState>();

function stateOf(ctx: GatewayContext): WebhookState {
  let state = states.get(ctx);
  if (!state) {
    state = { webhooks: new Webhooks({ secret: requireWebhookSecret(ctx.env) }), deliveries: new DeliveryLog() };
    states.set(ctx, state);
  }
  return state;
}

function githubOf(ctx: GatewayContext, state: WebhookState): GitHubClients {
  try {
    state.github ??= createGitHubClients(ctx.env, { maxInlineWaitMs: 3000, timeoutMs: 5000, retries: 1 });
    return state.github;
  } catch (error) {
    if (error instanceof GitHubConfigError)
      throw new HttpError(500, `the gateway cannot read pull requests: ${error.message}`);
    throw error;
  }
}

export const handleGitHubWebhook: RouteHandler = async (req, res, _params, ctx) => {
  let state: WebhookState;
  try {
    state = stateOf(ctx);
  } catch (error) {
    if (error instanceof WebhookSecretError) throw new HttpError(500, error.message);
    throw error;
  }
  const raw = await readBody(req, WEBHOOK_BODY_LIMIT);
  const signature = header(req, 'x-hub-signature-256');
  if (!signature)
    throw new HttpError(
      401,
      'missing X-Hub-Signature-256: the delivery is not signed (set the webhook secret in GitHub)',
    );
  // verify() compares HMAC-SHA256(secret, body) with the header in constant time.
  const wellFormed = /^sha256=[0-9a-f]{64}$/i.test(signature);
  // @octokit/webhooks refuses to verify an empty payload; say so rather than blame the secret.
  if (wellFormed && raw.length === 0)
    throw new HttpError(400, 'empty request body: expected the JSON payload of a GitHub webhook delivery');
  const valid = wellFormed && (await state.webhooks.verify(raw.toString('utf8'), signature).catch(() => false));
  if (!valid)
    throw new HttpError(401, 'bad X-Hub-Signature-256: the body was not signed with the configured webhook secret');

  const event = header(req, 'x-github-event');
  const deliveryId = header(req, 'x-github-delivery');
  if (!event) throw new HttpError(400, 'missing X-GitHub-Event header');
  if (!deliveryId || !/^[A-Za-z0-9-]{1,100}$/.test(deliveryId))
    throw new HttpError(400, 'missing or malformed X-GitHub-Delivery header');
  let payload: unknown;
  try {
    payload = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `malformed JSON: ${(error as Error).message.slice(0, 200)}`);
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload))
    throw new HttpError(400, 'malformed payload: expected a JSON object');

  if (event === 'ping') return sendJson(res, 200, { pong: true });
  if (event !== 'pull_request' && event !== 'pull_request_review')
    return sendJson(res, 202, { ignored: `event ${event} is not used by foureyes` });

  const answer = await state.deliveries.once(deliveryId, () =>
    handleEvent(ctx, state, req, event, deliveryId, payload),
  );
  sendJson(res, answer.status, answer.duplicate ? { ...answer.body, duplicate: true } : answer.body);
};

function parse<T extends z.ZodType>(schema: T, payload: unknown, event: string): z.output<T> {
  const parsed = schema.safeParse(payload);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new HttpError(
    400,
    `malformed ${event} payload: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
  );
}

function configuredRef(ctx: GatewayContext, fullName: string, number: number): ChangeRef {
  const repo = ctx.config().repositories.find((r) => r.name.toLowerCase() === fullName.toLowerCase());
  if (!repo)
    throw new HttpError(
      422,
      `repository ${fullName} is not configured in foureyes.yaml; add it under repositories (or remove the webhook)`,
      { repository: fullName },
    );
  const [owner, name] = repo.name.split('/') as [string, string];
  try {
    return makeChangeRef(owner, name, number);
  } catch (error) {
    if (error instanceof ChangeRefError) throw new HttpError(400, error.message);
    throw error;
  }
}

async function handleEvent(
  ctx: GatewayContext,
  state: WebhookState,
  _req: IncomingMessage,
  event: string,
  deliveryId: string,
  payload: unknown,
): Promise<DeliveryAnswer> {
  const action = (payload as { action?: unknown }).action;
  if (event === 'pull_request') {
    if (!['opened', 'reopened', 'synchronize', 'closed', 'edited'].includes(String(action)))
      return { status: 202, body: { ignored: `pull_request action ${String(action)} is not used by foureyes` } };
    const p = parse(pullRequestPayload, payload, event);
    // An edit matters when it retargets the base: the commits and files of the pull request change with it.
    if (p.action === 'edited' && !p.changes?.base)
      return {
        status: 202,
        body: { ignored: 'an edit of the title or description changes nothing foureyes decides on' },
      };
    const ref = configuredRef(ctx, p.repository.full_name, p.pull_request.number);
    if (p.action === 'closed') return closeChange(ctx, ref, deliveryId, p.pull_request.merged ?? false, p.sender.login);
    // No GitHub look-up before the answer: the event goes without `commits`, and the orchestrator looks the
    // commits and files up durably (the workflow applies the event only then, in arrival order).
    const prEvent = pullRequestFacts({
      kind: p.action as PullRequestEvent['kind'],
      deliveryId,
      pr: p.pull_request,
      ...(p.action === 'synchronize' ? { sender: p.sender.login, before: p.before } : {}),
    });
    await startOrSignal(ctx, ref, prEvent, p.pull_request);
    return {
      status: 202,
      body: {
        accepted: 'pull_request',
        action: p.action,
        change: formatChangeRef(ref),
        headSha: prEvent.headSha,
        workflowId: workflowIdFor(ref),
      },
    };
  }

  // pull_request_review
  if (!['submitted', 'dismissed'].includes(String(action)))
    return { status: 202, body: { ignored: `pull_request_review action ${String(action)} is not used by foureyes` } };
  const p = parse(reviewPayload, payload, event);
  const ref = configuredRef(ctx, p.repository.full_name, p.pull_request.number);
  let decision: ApprovalDecision;
  if (p.action === 'dismissed') decision = 'dismiss';
  else if (p.review.state === 'approved') decision = 'approve';
  else if (p.review.state === 'changes_requested') decision = 'reject';
  else return { status: 202, body: { ignored: `a ${p.review.state} review neither approves nor requests changes` } };

  const claim: ApprovalClaim = {
    v: 1,
    change: formatChangeRef(ref),
    sha: p.review.commit_id,
    // The review webhook's signature authenticates GitHub; GitHub authenticated the reviewer.
    person: p.review.user.login.toLowerCase(),
    channel: 'github',
    decision,
    evidence: { reviewId: String(p.review.id), commitId: p.review.commit_id, deliveryId },
    ...(p.review.body ? { comment: p.review.body.slice(0, 2000) } : {}),
    at: new Date().toISOString(),
    // Derived from the delivery: a redelivered review is refused by the workflow as a replay.
    nonce: `github-delivery:${deliveryId}`,
  };
  const signed = signClaim(claim, gatewayKey(ctx));
  const handle = ctx.client.workflow.getHandle(workflowIdFor(ref));
  try {
    await handle.signal(approvalSignal, signed);
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw temporalFailure(error);
    if (decision === 'dismiss')
      return { status: 202, body: { ignored: `no running change ${formatChangeRef(ref)}: nothing to dismiss` } };
    // The review arrived before any pull request event (or after the change ended): start the change from
    // the pull request as the API shows it now, then hand it the review. Both are durable before we answer.
    const octokit = await githubFor(ctx, state, ref);
    const pr = await octokit.rest.pulls
      .get({ owner: ref.owner, repo: ref.repo, pull_number: ref.number })
      .catch(apiFailure);
    if (pr.data.state !== 'open')
      return {
        status: 202,
        body: { ignored: `${formatChangeRef(ref)} is ${pr.data.state}: a review does not reopen it` },
      };
    const prJson = { ...pr.data, merged: pr.data.merged ?? false } as unknown as PullRequestJson;
    await startOrSignal(
      ctx,
      ref,
      pullRequestFacts({ kind: 'opened', deliveryId: `${deliveryId}:pull-request`, pr: prJson }),
      prJson,
    );
    await handle.signal(approvalSignal, signed).catch((e: unknown) => {
      throw temporalFailure(e);
    });
  }
  return {
    status: 202,
    body: {
      accepted: 'pull_request_review',
      decision,
      change: formatChangeRef(ref),
      sha: claim.sha,
      reviewId: claim.evidence.reviewId,
    },
  };
}

async function githubFor(ctx: GatewayContext, state: WebhookState, ref: ChangeRef) {
  return githubOf(ctx, state).forRepo(ref.owner, ref.repo).catch(apiFailure);
}

function gatewayKey(ctx: GatewayContext) {
  try {
    return loadSigningKey(ctx.env);
  } catch (error) {
    throw new HttpError(500, (error as Error).message);
  }
}

async function startOrSignal(
  ctx: GatewayContext,
  ref: ChangeRef,
  unsigned: PullRequestEvent,
  pr: PullRequestJson,
): Promise<void> {
  const change = formatChangeRef(ref);
  // Signed for this change: the workflow applies no pull request event the gateway did not sign.
  const event = signEvent({ ...unsigned, change, at: new Date().toISOString() }, gatewayKey(ctx));
  try {
    await ctx.client.workflow.signalWithStart('changeWorkflow', {
      workflowId: workflowIdFor(ref),
      taskQueue: ctx.env.FOUREYES_TASK_QUEUE || 'foureyes',
      args: [{ change }],
      signal: pullRequestSignal,
      signalArgs: [event],
      staticSummary: `${change}: ${summaryText(pr.title)}`,
      staticDetails: `Pull request ${change} by ${summaryText(pr.user.login)}, ${summaryText(pr.head.ref)} → ${summaryText(pr.base.ref)}`,
      typedSearchAttributes: [
        { key: RepoAttr, value: `${ref.owner}/${ref.repo}` },
        { key: PullNumberAttr, value: ref.number },
        { key: AuthorAttr, value: pr.user.login.toLowerCase() },
      ],
    });
  } catch (error) {
    throw temporalFailure(error);
  }
}

async function closeChange(
  ctx: GatewayContext,
  ref: ChangeRef,
  deliveryId: string,
  merged: boolean,
  closedBy: string,
): Promise<DeliveryAnswer> {
  const at = new Date().toISOString();
  const closed = signEvent({ deliveryId, merged, closedBy, at, change: formatChangeRef(ref) }, gatewayKey(ctx));
  try {
    await ctx.client.workflow.getHandle(workflowIdFor(ref)).signal(pullRequestClosedSignal, closed);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      return { status: 202, body: { ignored: `no running change ${formatChangeRef(ref)}` } };
    throw temporalFailure(error);
  }
  return { status: 202, body: { accepted: 'pull_request', action: 'closed', change: formatChangeRef(ref) } };
}

/** Untrusted text shown in the Temporal UI (which renders Markdown): one line, no markup, no mentions. */
function summaryText(text: string): string {
  return text
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[\\`*_{}[\]()#+!|<>~]/g, (c) => `\\${c}`)
    .replace(/@/g, '@\u200b')
    .slice(0, 200);
}

function temporalFailure(error: unknown): HttpError {
  console.error(`gateway: Temporal did not accept a GitHub delivery: ${(error as Error)?.message?.split('\n')[0]}`);
  return new HttpError(
    503,
    'Temporal did not accept the event; nothing was recorded. Redeliver it from GitHub once Temporal is reachable',
  );
}

function apiFailure(error: unknown): never {
  if (error instanceof HttpError) throw error;
  const status = (error as { status?: number }).status;
  console.error(`gateway: GitHub API look-up failed: ${status ?? ''} ${(error as Error)?.message?.split('\n')[0]}`);
  throw new HttpError(
    502,
    `could not read the pull request from the GitHub API${status ? ` (HTTP ${status})` : ''}; nothing was recorded. Redeliver it once the API answers`,
  );
}
