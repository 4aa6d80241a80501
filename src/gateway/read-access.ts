// Who may read a change, its audit record and the environments: a person whose own GitHub token can read the
// repository (GitHub answers GET /repos/{owner}/{repo} with it), or an operator token configured for the
// gateway. A change's status and audit name people, commits and deploy output: they are as private as the
// repository. GitHub's answer is cached briefly per token hash, so a polling dashboard does not spend the
// caller's rate limit; the token itself is never stored, logged or echoed.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { askGitHubAsPerson, bearerToken, githubApiUrl } from './approvals/github-token.ts';
import { HttpError } from './http.ts';

export const OPERATOR_TOKENS_ENV = 'FOUREYES_OPERATOR_TOKENS';
export const OPERATOR_TOKENS_FILE_ENV = 'FOUREYES_OPERATOR_TOKENS_FILE';
/** Shorter tokens could be guessed; `openssl rand -hex 32` gives 64 characters. */
export const MIN_OPERATOR_TOKEN_LENGTH = 32;
const CACHE_TTL_MS = 60_000;
const CACHE_CAPACITY = 10_000;

export class OperatorTokenError extends Error {
  override name = 'OperatorTokenError';
}

export type Reader = { kind: 'operator' } | { kind: 'github' };

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** One token per line in the file (# starts a comment); comma- or space-separated in the variable. */
function parseTokens(text: string, source: string): Buffer[] {
  const tokens = text
    .split(/\r?\n/)
    .map((line) => line.replace(/#.*$/, ''))
    .flatMap((line) => line.split(/[\s,]+/))
    .filter(Boolean);
  tokens.forEach((token, i) => {
    if (token.length < MIN_OPERATOR_TOKEN_LENGTH)
      throw new OperatorTokenError(
        `${source}: operator token ${i + 1} has ${token.length} characters; use at least ${MIN_OPERATOR_TOKEN_LENGTH} (e.g. \`openssl rand -hex 32\`)`,
      );
  });
  return tokens.map(digest);
}

export class ReadAccess {
  private readonly cache = new Map<string, { until: number; canRead: boolean }>();
  private operators: { key: string; digests: Buffer[] } | undefined;

  constructor(
    private readonly ttlMs = CACHE_TTL_MS,
    private readonly capacity = CACHE_CAPACITY,
  ) {}

  /** The configured operator tokens' digests; the file is read again when it changes (rotation without restart). */
  operatorDigests(env: NodeJS.ProcessEnv): Buffer[] {
    const file = env[OPERATOR_TOKENS_FILE_ENV]?.trim();
    let stamp = '';
    if (file) {
      try {
        stamp = String(statSync(file).mtimeMs);
      } catch {
        throw new OperatorTokenError(`${OPERATOR_TOKENS_FILE_ENV}: cannot read ${file}`);
      }
    }
    const key = `${env[OPERATOR_TOKENS_ENV] ?? ''}\0${file ?? ''}\0${stamp}`;
    if (this.operators?.key !== key) {
      const digests = parseTokens(env[OPERATOR_TOKENS_ENV] ?? '', OPERATOR_TOKENS_ENV);
      if (file) digests.push(...parseTokens(readFileSync(file, 'utf8'), `${OPERATOR_TOKENS_FILE_ENV} (${file})`));
      this.operators = { key, digests };
    }
    return this.operators.digests;
  }

  /** Compares against every operator token in constant time, so timing tells nothing about how close a guess was. */
  isOperator(token: string, env: NodeJS.ProcessEnv): boolean {
    const candidate = digest(token);
    let match = false;
    for (const d of this.operatorDigests(env)) match = timingSafeEqual(d, candidate) || match;
    return match;
  }

  /** 401 without a token or with one GitHub refuses, 403 when it cannot read `repo` (owner/name). */
  async requireReader(req: IncomingMessage, env: NodeJS.ProcessEnv, repo: string): Promise<Reader> {
    const token = bearerToken(req.headers);
    if (this.isOperator(token, env)) return { kind: 'operator' };
    if (!(await this.canRead(token, repo, env)))
      throw new HttpError(
        403,
        `your GitHub token cannot read ${repo}: ask for read access to the repository, or use a token that has it`,
      );
    return { kind: 'github' };
  }

  /** The repositories of `repos` the caller may read (all of them for an operator); 401 as requireReader. */
  async readable(req: IncomingMessage, env: NodeJS.ProcessEnv, repos: string[]): Promise<string[]> {
    const token = bearerToken(req.headers);
    if (this.isOperator(token, env)) return repos;
    const verdicts = await Promise.all(
      repos.map((repo) =>
        this.canRead(token, repo, env).catch((error: unknown) => {
          // One repository behind SSO the token is not authorised for hides that one only.
          if (error instanceof HttpError && error.status === 403) return false;
          throw error;
        }),
      ),
    );
    return repos.filter((_, i) => verdicts[i]);
  }

  private async canRead(token: string, repo: string, env: NodeJS.ProcessEnv): Promise<boolean> {
    const api = githubApiUrl(env);
    // The hash, not the token, is the key: a heap dump of the gateway shows no reader's token.
    const key = createHash('sha256').update(`${api}\0${repo.toLowerCase()}\0${token}`).digest('base64');
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.canRead;
    const canRead = await askGitHub(token, repo, api);
    this.cache.delete(key);
    this.cache.set(key, { until: Date.now() + this.ttlMs, canRead });
    if (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value as string);
    return canRead;
  }
}

/** GitHub's own answer: a repository the token cannot read does not exist for it (404). */
async function askGitHub(token: string, repo: string, api: string): Promise<boolean> {
  const [owner, name] = repo.split('/') as [string, string];
  const response = await askGitHubAsPerson(
    api,
    `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`,
    token,
  );
  if (response.status === 401)
    throw new HttpError(
      401,
      'GitHub did not accept the bearer token; use a valid token of your own (GITHUB_TOKEN or `gh auth token`)',
      { hint: 'run `gh auth status`' },
    );
  if (response.status === 404) return false;
  if (response.status === 403) {
    // Not cached: an SSO authorisation or a rate limit, which the person can fix and retry.
    const body = (await response.json().catch(() => ({}))) as { message?: unknown };
    const message = typeof body.message === 'string' ? body.message.slice(0, 200) : 'no reason given';
    throw new HttpError(403, `GitHub refused to show ${repo} to your token: ${message}`);
  }
  if (!response.ok)
    throw new HttpError(502, `the GitHub API answered ${response.status} to GET /repos/${repo}; try again later`);
  const body = (await response.json().catch(() => ({}))) as { permissions?: { pull?: unknown } };
  // Seeing the repository is reading it on GitHub; `permissions` (present for user tokens) says so explicitly.
  return body.permissions?.pull !== false;
}
