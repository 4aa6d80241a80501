// POST /api/changes/{owner}/{repo}/{number}/emergency (Bearer GitHub token): break-glass. Someone listed under
// `emergency.allowed` declares that one head of a change must go out before its approvals. The gateway only
// authenticates the person and signs what they asked (src/shared/emergency.ts); the change's workflow decides
// it (decideEmergency in src/policy/sod.ts) and answers at once whether it was taken and why.
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { policyFor } from '../../activities/policy.ts';
import { emergencyDeclarerRefusal, resolvePerson } from '../../policy/sod.ts';
import { ChangeRefError, formatChangeRef, makeChangeRef, workflowIdFor } from '../../shared/change-ref.ts';
import { signEmergency, type EmergencyClaim, type EmergencyOutcome } from '../../shared/emergency.ts';
import { emergencyUpdate, statusQuery } from '../../workflows/definitions.ts';
import type { RouteHandler } from '../app.ts';
import { ANSWER_DEADLINE_MS, ApprovalDeliveryError, deliveryError } from '../approvals/record.ts';
import { bearerToken, resolveGitHubLogin } from '../approvals/github-token.ts';
import { loadSigningKey } from '../approvals/signing.ts';
import { header, HttpError, readBody, sendJson } from '../http.ts';
import { parseJsonBody } from '../json-body.ts';

const BODY_LIMIT = 16 * 1024;
const MAX_REASON = 2000;
const ENVIRONMENT = 'expected an environment name such as production';

const bodySchema = z.strictObject({
  reason: z
    .string({ error: 'say why this is an emergency (it is recorded and announced)' })
    .trim()
    .min(1, { error: 'say why this is an emergency (it is recorded and announced)' })
    .max(MAX_REASON, { error: `at most ${MAX_REASON} characters` }),
  sha: z
    .string({ error: 'expected the full 40-character head SHA' })
    .regex(/^[0-9a-fA-F]{40}$/, { error: 'expected the full 40-character head SHA' })
    .optional(),
  environments: z
    .array(z.string({ error: ENVIRONMENT }).regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, { error: ENVIRONMENT }), {
      error: 'expected a list of environment names such as ["production"]',
    })
    .min(1, { error: 'name at least one environment, or leave the field out for every environment of the change' })
    .optional(),
});

export const handlePostEmergency: RouteHandler = async (req, res, params, ctx) => {
  const rawBody = await readBody(req, BODY_LIMIT);
  const token = bearerToken(req.headers); // 401 at once without a token
  // Validate before asking GitHub about the token: a malformed call costs no API request.
  let ref;
  try {
    ref = makeChangeRef(params.owner ?? '', params.repo ?? '', Number(params.number));
  } catch (error) {
    if (error instanceof ChangeRefError) throw new HttpError(400, error.message);
    throw error;
  }
  const body = parseJsonBody(rawBody, bodySchema, {
    send: '{"reason": "<why>", "sha"?: "<head commit>", "environments"?: ["production"]}',
    unknownFields: 'who declares is taken from the token, not the body',
  });
  const config = ctx.config();
  const change = formatChangeRef(ref);
  const repoName = `${ref.owner}/${ref.repo}`;
  const repo = config.repositories.find((r) => r.name.toLowerCase() === repoName.toLowerCase());
  if (!repo) throw new HttpError(404, `no change ${change}: repository ${repoName} is not configured in foureyes.yaml`);
  const known = repo.environments ?? config.environments.map((e) => e.name);
  const unknown = (body.environments ?? []).filter((name) => !known.includes(name));
  if (unknown.length > 0)
    throw new HttpError(
      400,
      `invalid field environments: ${repo.name} has no environment ${unknown.join(', ')} (it has ${known.join(', ')})`,
      { field: 'environments' },
    );

  const { login } = await resolveGitHubLogin(token, ctx.env);
  // The configured spelling of the person; a login nobody configured stays as GitHub gave it.
  const person = resolvePerson(config.people, { login }) ?? login;
  let key;
  try {
    key = loadSigningKey(ctx.env);
  } catch (error) {
    throw new HttpError(500, (error as Error).message);
  }
  // Fail fast for who can never declare here; the workflow decides again from the signed claim.
  const refusal = emergencyDeclarerRefusal(policyFor(config, repo.name, [key.publicKey]), person);
  if (refusal) throw new HttpError(403, refusal);

  const handle = ctx.client.workflow.getHandle(workflowIdFor(ref));
  const deadline = Date.now() + ANSWER_DEADLINE_MS;
  const delivery = (error: unknown): unknown => {
    // Temporal answers an update of an ended workflow with NotFound "already completed": that change is closed.
    if (error instanceof WorkflowNotFoundError)
      return /already completed/i.test(error.message)
        ? new HttpError(409, `change ${change} is closed; no emergency can be declared`)
        : new HttpError(404, `no change ${change}: foureyes has not received its pull request (open it first)`);
    const failed = deliveryError(error, change, 'no emergency can be declared');
    if (!(failed instanceof ApprovalDeliveryError)) return failed;
    return new HttpError(failed.kind === 'unknown-change' ? 404 : failed.kind === 'closed' ? 409 : 503, failed.message);
  };
  let sha = body.sha?.toLowerCase();
  if (!sha) {
    // Without a SHA the declaration is for the head the change has now; the workflow checks it is still the head.
    const status = await ctx.client
      .withDeadline(deadline, () => handle.query(statusQuery))
      .catch((error: unknown) => {
        throw delivery(error);
      });
    if (!status.headSha) throw new HttpError(409, `${change} has no head commit yet (${status.waitingFor})`);
    sha = status.headSha;
  }
  const claim: EmergencyClaim = {
    v: 1,
    kind: 'emergency',
    change,
    sha,
    ...(body.environments ? { environments: [...new Set(body.environments)] } : {}),
    person,
    // The CLI labels itself; the label only names the channel in the record, it grants nothing.
    channel: header(req, 'x-foureyes-client') === 'cli' ? 'cli' : 'api',
    evidence: { tokenLogin: login },
    reason: body.reason,
    at: new Date().toISOString(),
    nonce: randomUUID(),
  };
  const signed = signEmergency(claim, key);
  let outcome: EmergencyOutcome;
  try {
    // executeUpdate waits for the COMPLETED stage: the answer is the workflow's decision, not an ack.
    outcome = await ctx.client.withDeadline(deadline, () =>
      handle.executeUpdate(emergencyUpdate, { args: [signed], updateId: `emergency:${claim.nonce}` }),
    );
  } catch (error) {
    // The workflow refused the update outright (a failed handler): a refusal like any other.
    if (error instanceof WorkflowUpdateFailedError)
      outcome = { taken: false, reason: (error.cause as Error | undefined)?.message ?? error.message };
    else throw delivery(error);
  }
  if (outcome.taken) sendJson(res, 200, outcome);
  else sendJson(res, 409, { error: outcome.reason, ...outcome });
};
