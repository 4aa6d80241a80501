// GitHub REST client for the orchestrator (and the gateway's read-only look-ups): @octokit/rest against
// GITHUB_API_URL (github.com, GitHub Enterprise Server or the local stand-in), authenticated either as a
// GitHub App (GITHUB_APP_ID + GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH, optional GITHUB_INSTALLATION_ID)
// or with a plain token (GITHUB_TOKEN). Rate limits are honoured: a 429 (or a 403 with an exhausted rate
// limit) is retried after Retry-After when that is short, and reported as RateLimitedError otherwise.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';

export type GitHubAuthMode = 'app' | 'token';

export class GitHubConfigError extends Error {
  override name = 'GitHubConfigError';
}

/** GitHub asked us to wait longer than we are willing to wait inline. */
export class RateLimitedError extends Error {
  override name = 'RateLimitedError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

export interface GitHubClientOptions {
  /** Longest Retry-After waited for inside one call (ms); longer ones throw RateLimitedError. */
  maxInlineWaitMs?: number;
  /** Per-request timeout (ms). */
  timeoutMs?: number;
  /** Retries of one request after a 429 / 5xx. */
  retries?: number;
}

export interface GitHubClients {
  mode: GitHubAuthMode;
  baseUrl: string;
  /** A client allowed to act on `owner/repo` (an installation token for an App). */
  forRepo(owner: string, repo: string): Promise<Octokit>;
  /** The login our comments carry: the token's user, or `<app-slug>[bot]`. */
  selfLogin(owner: string, repo: string): Promise<string>;
}

export function hasGitHubCredentials(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.GITHUB_TOKEN || (env.GITHUB_APP_ID && (env.GITHUB_PRIVATE_KEY || env.GITHUB_PRIVATE_KEY_PATH)));
}

function privateKeyFrom(env: NodeJS.ProcessEnv): string {
  if (env.GITHUB_PRIVATE_KEY) return env.GITHUB_PRIVATE_KEY.includes('\\n') ? env.GITHUB_PRIVATE_KEY.replace(/\\n/g, '\n') : env.GITHUB_PRIVATE_KEY;
  try {
    return readFileSync(env.GITHUB_PRIVATE_KEY_PATH as string, 'utf8');
  } catch (error) {
    throw new GitHubConfigError(`GITHUB_PRIVATE_KEY_PATH cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Retry-After in ms from a failed response, when it is a rate limit or a retryable server error. */
function waitFor(error: unknown, attempt: number): number | undefined {
  const e = error as { status?: number; response?: { headers?: Record<string, string | undefined> } };
  const headers = e.response?.headers ?? {};
  const retryAfter = headers['retry-after'];
  if (e.status === 429 || (e.status === 403 && (retryAfter !== undefined || headers['x-ratelimit-remaining'] === '0'))) {
    if (retryAfter !== undefined && /^\d+$/.test(retryAfter)) return Number(retryAfter) * 1000;
    const reset = Number(headers['x-ratelimit-reset']);
    if (Number.isFinite(reset) && reset > 0) return Math.max(0, reset * 1000 - Date.now());
    return 60_000;
  }
  if (e.status !== undefined && e.status >= 500) return Math.min(4000, 250 * 2 ** attempt);
  return undefined;
}

function configure(octokit: Octokit, options: GitHubClientOptions): Octokit {
  const maxWait = options.maxInlineWaitMs ?? 10_000;
  const retries = options.retries ?? 3;
  octokit.hook.wrap('request', async (request, requestOptions) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request(requestOptions);
      } catch (error) {
        // No answer at all (timeout, reset): a write may still have been applied, so it is not re-sent
        // blindly; the activity's retry re-reads and writes only the difference (a timed-out createDeployment
        // re-sent here was a duplicated deployment, found by the GitHub-faults drill). Octokit reports these as 500.
        const method = String((requestOptions as { method?: string }).method ?? 'GET').toUpperCase();
        if ((error as { response?: unknown }).response === undefined && method !== 'GET' && method !== 'HEAD') throw error;
        const wait = waitFor(error, attempt);
        const status = (error as { status?: number }).status;
        if (wait === undefined || attempt >= retries) {
          if ((status === 429 || status === 403) && wait !== undefined) throw new RateLimitedError(`GitHub rate limit: retry after ${Math.ceil(wait / 1000)}s`, wait);
          throw error;
        }
        if (wait > maxWait) throw new RateLimitedError(`GitHub rate limit: retry after ${Math.ceil(wait / 1000)}s`, wait);
        await sleep(wait);
      }
    }
  });
  return octokit;
}

function octokitOptions(env: NodeJS.ProcessEnv, options: GitHubClientOptions) {
  const timeoutMs = options.timeoutMs ?? 15_000;
  return {
    baseUrl: (env.GITHUB_API_URL ?? 'https://api.github.com').replace(/\/+$/, ''),
    userAgent: 'foureyes',
    // No request logging: errors carry no token (Octokit redacts the authorization header).
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    request: { fetch: (url: string, init: RequestInit) => fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(timeoutMs) }) },
  };
}

/** Clients from the environment; throws GitHubConfigError naming the variables when none are set. */
export function createGitHubClients(env: NodeJS.ProcessEnv = process.env, options: GitHubClientOptions = {}): GitHubClients {
  const base = octokitOptions(env, options);
  if (env.GITHUB_APP_ID && (env.GITHUB_PRIVATE_KEY || env.GITHUB_PRIVATE_KEY_PATH)) {
    const appId = env.GITHUB_APP_ID;
    const privateKey = privateKeyFrom(env);
    const appOctokit = configure(new Octokit({ ...base, authStrategy: createAppAuth, auth: { appId, privateKey } }), options);
    const installations = new Map<string, Promise<Octokit>>();
    let slug: Promise<string> | undefined;
    const forRepo = (owner: string, repo: string): Promise<Octokit> => {
      const key = env.GITHUB_INSTALLATION_ID ? 'fixed' : `${owner}/${repo}`.toLowerCase();
      let client = installations.get(key);
      if (!client) {
        client = (async () => {
          const installationId = env.GITHUB_INSTALLATION_ID ? Number(env.GITHUB_INSTALLATION_ID) : (await appOctokit.rest.apps.getRepoInstallation({ owner, repo })).data.id;
          // auth-app caches installation tokens and renews them before they expire.
          return configure(new Octokit({ ...base, authStrategy: createAppAuth, auth: { appId, privateKey, installationId } }), options);
        })();
        client.catch(() => installations.delete(key));
        installations.set(key, client);
      }
      return client;
    };
    return {
      mode: 'app',
      baseUrl: base.baseUrl,
      forRepo,
      selfLogin: async () => {
        slug ??= appOctokit.rest.apps.getAuthenticated().then((r) => `${r.data?.slug ?? ''}[bot]`);
        slug.catch(() => (slug = undefined));
        return slug;
      },
    };
  }
  if (env.GITHUB_TOKEN) {
    const octokit = configure(new Octokit({ ...base, auth: env.GITHUB_TOKEN }), options);
    let login: Promise<string> | undefined;
    return {
      mode: 'token',
      baseUrl: base.baseUrl,
      forRepo: async () => octokit,
      selfLogin: async () => {
        login ??= octokit.rest.users.getAuthenticated().then((r) => r.data.login);
        login.catch(() => (login = undefined));
        return login;
      },
    };
  }
  throw new GitHubConfigError('no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_PRIVATE_KEY (or GITHUB_PRIVATE_KEY_PATH) for a GitHub App');
}
