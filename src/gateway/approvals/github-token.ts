// The API / CLI channel: `Authorization: Bearer <GitHub token>`. The person is whoever GitHub says owns
// the token (GET /user at GITHUB_API_URL); a name in the request body is never trusted.
import { z } from 'zod';
import { ChangeRefError, makeChangeRef } from '../../shared/change-ref.ts';
import type { GatewayContext } from '../app.ts';
import { HttpError } from '../http.ts';
import type { ApprovalChannelAdapter, ApprovalIntent, AuthenticatedPerson, ChannelRequest } from './channel.ts';

export function githubApiUrl(env: NodeJS.ProcessEnv): string {
  return (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '');
}

/**
 * GET `path` of the GitHub API with a person's own token: 502 with the reason when GitHub cannot be reached (the
 * token never appears in it); the caller reads the answer.
 */
export async function askGitHubAsPerson(api: string, path: string, token: string): Promise<Response> {
  try {
    return await fetch(`${api}${path}`, {
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        'user-agent': 'foureyes-gateway',
      },
      signal: AbortSignal.timeout(5000),
    });
  } catch (error) {
    throw new HttpError(502, `cannot reach the GitHub API at ${api} to check the token: ${(error as Error).name}`);
  }
}

/** Resolves a token to its GitHub login. 401 when GitHub does not accept it; the token never appears in errors. */
export async function resolveGitHubLogin(
  token: string,
  env: NodeJS.ProcessEnv,
): Promise<{ login: string; id: string }> {
  const response = await askGitHubAsPerson(githubApiUrl(env), '/user', token);
  if (response.status === 401 || response.status === 403) {
    throw new HttpError(
      401,
      'GitHub did not accept the bearer token; use a valid token of your own (GITHUB_TOKEN or `gh auth token`)',
      { hint: 'run `gh auth status`' },
    );
  }
  if (!response.ok)
    throw new HttpError(502, `the GitHub API answered ${response.status} to GET /user; try again later`);
  const user = (await response.json().catch(() => ({}))) as { login?: unknown; id?: unknown; type?: unknown };
  if (typeof user.login !== 'string' || !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(user.login))
    throw new HttpError(502, 'the GitHub API answered GET /user without a valid login');
  return { login: user.login, id: String(user.id ?? '') };
}

export function bearerToken(headers: ChannelRequest['headers']): string {
  const raw = headers.authorization;
  const value = Array.isArray(raw) ? raw[0] : raw;
  const match = value ? /^(?:Bearer|token)\s+(\S+)\s*$/i.exec(value) : null;
  if (!match)
    throw new HttpError(
      401,
      'missing GitHub token: send `Authorization: Bearer <token>` (the CLI reads GITHUB_TOKEN or `gh auth token`)',
    );
  return match[1] as string;
}

export const approvalBodySchema = z.strictObject({
  decision: z.enum(['approve', 'reject']).default('approve'),
  comment: z.string().max(2000).optional(),
  environment: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected an environment name such as staging or production')
    .optional(),
  // Required: an approval counts for the commit the person saw, never for whatever the head is when it arrives.
  sha: z
    .string({
      error: (issue) =>
        issue.input === undefined
          ? 'name the commit you reviewed (the full head SHA; `foureyes approve` sends the head it shows you)'
          : 'expected a string',
    })
    .regex(/^[0-9a-f]{40}$/, 'expected a full 40-character lower-case commit SHA'),
});

function parseBody(raw: Buffer): z.output<typeof approvalBodySchema> {
  let json: unknown = {};
  if (raw.length > 0) {
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(
        400,
        'request body is not valid JSON; send {"sha": "<head commit>", "decision": "approve"|"reject", "comment"?, "environment"?}',
      );
    }
  }
  const parsed = approvalBodySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.length ? issue.path.join('.') : '(body)';
    const what =
      issue?.code === 'unrecognized_keys'
        ? `unknown field(s) ${issue.keys.join(', ')}; the approver is taken from the token, not the body`
        : issue?.message;
    const missing =
      issue?.code === 'invalid_type' &&
      issue.path.length === 1 &&
      (json === null ||
        typeof json !== 'object' ||
        (json as Record<string, unknown>)[String(issue.path[0])] === undefined);
    throw new HttpError(400, `${missing ? 'missing' : 'invalid'} field ${field}: ${what}`, { field });
  }
  return parsed.data;
}

export const githubTokenChannel: ApprovalChannelAdapter = {
  channel: 'api',
  async authenticate(request: ChannelRequest, ctx: GatewayContext): Promise<AuthenticatedPerson> {
    const token = bearerToken(request.headers);
    const { login, id } = await resolveGitHubLogin(token, ctx.env);
    return { person: login, evidence: { githubLogin: login, ...(id ? { githubUserId: id } : {}), via: 'GET /user' } };
  },
  intent(request: ChannelRequest): ApprovalIntent {
    let ref;
    try {
      ref = makeChangeRef(request.params.owner ?? '', request.params.repo ?? '', Number(request.params.number));
    } catch (error) {
      if (error instanceof ChangeRefError) throw new HttpError(400, error.message);
      throw error;
    }
    const body = parseBody(request.rawBody);
    return {
      ref,
      decision: body.decision,
      sha: body.sha,
      ...(body.environment ? { environment: body.environment } : {}),
      ...(body.comment ? { comment: body.comment } : {}),
    };
  },
};
