// GitHub REST client for the orchestrator (and the gateway's read-only look-ups): @octokit/rest against
// GITHUB_API_URL (github.com, GitHub Enterprise Server or the local stand-in), authenticated either as a
// GitHub App (GITHUB_APP_ID + GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH, optional GITHUB_INSTALLATION_ID)
// or with a plain token (GITHUB_TOKEN). Rate limits are honoured: a 429 (or a 403 with an exhausted rate
// limit) is retried after Retry-After when that is short, and reported as RateLimitedError otherwise.
// Credentials GitHub refuses (401) and repositories the credentials cannot reach (404) become a
// GitHubConfigError naming the variable or the repository and what to do; it never carries a secret.
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';

export type GitHubAuthMode = 'app' | 'token';

export class GitHubConfigError extends Error {
  override name = 'GitHubConfigError';
  constructor(
    message: string,
    /** `unreachable`: these credentials cannot see one repository (the others may be fine). */
    readonly reason: 'configuration' | 'unauthorized' | 'unreachable' = 'configuration',
  ) {
    super(message);
  }
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

/**
 * The App's private key from GITHUB_PRIVATE_KEY (PEM, `\n` escapes allowed) or the file GITHUB_PRIVATE_KEY_PATH,
 * checked to be an RSA private key in PEM, as GitHub hands it out. Errors name the variable, never the key.
 */
export function readPrivateKey(env: NodeJS.ProcessEnv): string {
  let pem: string;
  let source: string;
  if (env.GITHUB_PRIVATE_KEY) {
    pem = env.GITHUB_PRIVATE_KEY.includes('\\n')
      ? env.GITHUB_PRIVATE_KEY.replace(/\\n/g, '\n')
      : env.GITHUB_PRIVATE_KEY;
    source = 'GITHUB_PRIVATE_KEY';
  } else {
    source = `GITHUB_PRIVATE_KEY_PATH=${env.GITHUB_PRIVATE_KEY_PATH ?? ''}`;
    try {
      pem = readFileSync(env.GITHUB_PRIVATE_KEY_PATH as string, 'utf8');
    } catch (error) {
      throw new GitHubConfigError(
        `${source}: the file cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}); point it at the .pem file downloaded from the App's settings page (Private keys)`,
      );
    }
  }
  const notPem = `${source} is not a GitHub App private key: expected the PEM text GitHub downloads (-----BEGIN RSA PRIVATE KEY----- …); generate one on the App's settings page under Private keys`;
  if (!/-----BEGIN (RSA )?PRIVATE KEY-----/.test(pem)) throw new GitHubConfigError(notPem);
  try {
    if (createPrivateKey(pem).asymmetricKeyType !== 'rsa')
      throw new GitHubConfigError(`${source}: the key is not an RSA key; GitHub App keys are RSA`);
  } catch (error) {
    if (error instanceof GitHubConfigError) throw error;
    throw new GitHubConfigError(notPem);
  }
  return pem;
}

/** What a refused credential and an unreachable repository mean for the credentials in use. */
interface Diagnosis {
  unauthorized: (message: string) => string;
  notFound: (owner: string, repo: string) => string;
}

const NOT_FOUND_HINT = 'push again or close and reopen the pull request once that is fixed';

function tokenDiagnosis(baseUrl: string): Diagnosis {
  return {
    unauthorized: (message) =>
      `GitHub at ${baseUrl} refused GITHUB_TOKEN (401 ${message}): the token is wrong, expired or revoked; create a new one and restart foureyes`,
    notFound: (owner, repo) =>
      `GITHUB_TOKEN cannot see ${owner}/${repo} (GitHub answers 404): give the token's account access to the repository (a fine-grained token must have it selected); ${NOT_FOUND_HINT}`,
  };
}

function appDiagnosis(env: NodeJS.ProcessEnv, baseUrl: string): Diagnosis {
  const appId = env.GITHUB_APP_ID ?? '';
  const key = env.GITHUB_PRIVATE_KEY ? 'GITHUB_PRIVATE_KEY' : 'GITHUB_PRIVATE_KEY_PATH';
  return {
    unauthorized: (message) =>
      `GitHub at ${baseUrl} refused the GitHub App's credentials (401 ${message}): GITHUB_APP_ID=${appId} and the key in ${key} must belong to the same App (the App ID is on the App's settings page, the key under Private keys)`,
    notFound: (owner, repo) =>
      env.GITHUB_INSTALLATION_ID
        ? `installation GITHUB_INSTALLATION_ID=${env.GITHUB_INSTALLATION_ID} of the GitHub App ${appId} does not cover ${owner}/${repo}: add the repository to the installation (the owner's Settings → GitHub Apps → Configure → Repository access); ${NOT_FOUND_HINT}`
        : `the GitHub App ${appId} is not installed on ${owner}/${repo}: install it on that repository (the App's page → Install App); ${NOT_FOUND_HINT}`,
  };
}

/** Retry-After in ms from a failed response, when it is a rate limit or a retryable server error. */
function waitFor(error: unknown, attempt: number): number | undefined {
  const e = error as { status?: number; response?: { headers?: Record<string, string | undefined> } };
  const headers = e.response?.headers ?? {};
  const retryAfter = headers['retry-after'];
  if (
    e.status === 429 ||
    (e.status === 403 && (retryAfter !== undefined || headers['x-ratelimit-remaining'] === '0'))
  ) {
    if (retryAfter !== undefined && /^\d+$/.test(retryAfter)) return Number(retryAfter) * 1000;
    const reset = Number(headers['x-ratelimit-reset']);
    if (Number.isFinite(reset) && reset > 0) return Math.max(0, reset * 1000 - Date.now());
    return 60_000;
  }
  if (e.status !== undefined && e.status >= 500) return Math.min(4000, 250 * 2 ** attempt);
  return undefined;
}

/** Why the credentials in `env` cannot reach a repository (GitHub answers 404 for what a credential may not see). */
export function repositoryUnreachable(env: NodeJS.ProcessEnv, owner: string, repo: string): string {
  const baseUrl = (env.GITHUB_API_URL ?? 'https://api.github.com').replace(/\/+$/, '');
  return (env.GITHUB_APP_ID ? appDiagnosis(env, baseUrl) : tokenDiagnosis(baseUrl)).notFound(owner, repo);
}

/** The repository a REST path is about, for a path below it (the repository itself is what is checked). */
function repositoryBelow(url: string | undefined): { owner: string; repo: string } | undefined {
  const m = /\/repos\/([^/?#]+)\/([^/?#]+)\/[^?#]/.exec(new URL(url ?? '/', 'http://x').pathname);
  return m ? { owner: decodeURIComponent(m[1] as string), repo: decodeURIComponent(m[2] as string) } : undefined;
}

/** A 404 below /repos/{o}/{r}/ is explained when the repository itself is 404 too: the credentials cannot reach it. */
async function explainNotFound(octokit: Octokit, error: unknown, diagnosis: Diagnosis): Promise<unknown> {
  const url = (error as { request?: { url?: string } }).request?.url;
  const below = repositoryBelow(url);
  // The App's installation look-up is explained by its caller (a JWT cannot read the repository itself).
  if (!below || /\/installation$/.test(new URL(url ?? '/', 'http://x').pathname)) return error;
  const status = await octokit.rest.repos.get(below).then(
    () => 200,
    (e: unknown) => (e as { status?: number }).status,
  );
  return status === 404 ? new GitHubConfigError(diagnosis.notFound(below.owner, below.repo), 'unreachable') : error;
}

function configure(octokit: Octokit, options: GitHubClientOptions, diagnosis: Diagnosis): Octokit {
  const maxWait = options.maxInlineWaitMs ?? 10_000;
  const retries = options.retries ?? 3;
  octokit.hook.wrap('request', async (request, requestOptions) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request(requestOptions);
      } catch (error) {
        const failed = (error as { status?: number }).status;
        if (failed === 401)
          throw new GitHubConfigError(
            diagnosis.unauthorized(
              String(
                (error as { response?: { data?: { message?: unknown } } }).response?.data?.message ?? 'Bad credentials',
              ).slice(0, 100),
            ),
            'unauthorized',
          );
        if (failed === 404) throw await explainNotFound(octokit, error, diagnosis);
        // No answer at all (timeout, reset): a write may still have been applied, so it is not re-sent
        // blindly; the activity's retry re-reads and writes only the difference (a timed-out createDeployment
        // re-sent here was a duplicated deployment, found by the GitHub-faults drill). Octokit reports these as 500.
        const method = String((requestOptions as { method?: string }).method ?? 'GET').toUpperCase();
        if ((error as { response?: unknown }).response === undefined && method !== 'GET' && method !== 'HEAD')
          throw error;
        const wait = waitFor(error, attempt);
        const status = (error as { status?: number }).status;
        if (wait === undefined || attempt >= retries) {
          if ((status === 429 || status === 403) && wait !== undefined)
            throw new RateLimitedError(`GitHub rate limit: retry after ${Math.ceil(wait / 1000)}s`, wait);
          throw error;
        }
        if (wait > maxWait)
          throw new RateLimitedError(`GitHub rate limit: retry after ${Math.ceil(wait / 1000)}s`, wait);
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
    request: {
      fetch: (url: string, init: RequestInit) =>
        fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(timeoutMs) }),
    },
  };
}

/** Clients from the environment; throws GitHubConfigError naming the variables when none are set. */
export function createGitHubClients(
  env: NodeJS.ProcessEnv = process.env,
  options: GitHubClientOptions = {},
): GitHubClients {
  const base = octokitOptions(env, options);
  if (env.GITHUB_APP_ID && (env.GITHUB_PRIVATE_KEY || env.GITHUB_PRIVATE_KEY_PATH)) {
    const appId = env.GITHUB_APP_ID;
    const privateKey = readPrivateKey(env);
    const diagnosis = appDiagnosis(env, base.baseUrl);
    const appOctokit = configure(
      new Octokit({ ...base, authStrategy: createAppAuth, auth: { appId, privateKey } }),
      options,
      diagnosis,
    );
    const installations = new Map<string, Promise<Octokit>>();
    let slug: Promise<string> | undefined;
    const forRepo = (owner: string, repo: string): Promise<Octokit> => {
      const key = env.GITHUB_INSTALLATION_ID ? 'fixed' : `${owner}/${repo}`.toLowerCase();
      let client = installations.get(key);
      if (!client) {
        client = (async () => {
          const installationId = env.GITHUB_INSTALLATION_ID
            ? Number(env.GITHUB_INSTALLATION_ID)
            : await repoInstallation(appOctokit, owner, repo, diagnosis);
          // auth-app caches installation tokens and renews them before they expire.
          return configure(
            new Octokit({ ...base, authStrategy: createAppAuth, auth: { appId, privateKey, installationId } }),
            options,
            diagnosis,
          );
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
    const octokit = configure(new Octokit({ ...base, auth: env.GITHUB_TOKEN }), options, tokenDiagnosis(base.baseUrl));
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
  throw new GitHubConfigError(
    'no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_PRIVATE_KEY (or GITHUB_PRIVATE_KEY_PATH) for a GitHub App',
  );
}

/** One set of clients for a worker, created on first use (its activities share the App's installation tokens). */
export function lazyGitHubClients(env: NodeJS.ProcessEnv, options: GitHubClientOptions = {}): () => GitHubClients {
  let clients: GitHubClients | undefined;
  return () => (clients ??= createGitHubClients(env, options));
}

/** The App's installation on a repository; 404 means the App is not installed there. */
async function repoInstallation(
  appOctokit: Octokit,
  owner: string,
  repo: string,
  diagnosis: Diagnosis,
): Promise<number> {
  try {
    return (await appOctokit.rest.apps.getRepoInstallation({ owner, repo })).data.id;
  } catch (error) {
    if ((error as { status?: number }).status === 404)
      throw new GitHubConfigError(diagnosis.notFound(owner, repo), 'unreachable');
    throw error;
  }
}
