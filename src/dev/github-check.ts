// The start-up check of a real GitHub connection, made the way the orchestrator will use it: who the
// credentials are (GET /user for a token, GET /app with the App's JWT) and whether each configured
// repository is reachable (for an App: installed there). Credentials GitHub refuses stop the start with a
// message naming the variable; a repository it cannot reach is a warning naming the repository (it may be
// installed later); GitHub not answering at all is a warning too (the orchestrator retries).
import { createGitHubClients, GitHubConfigError, repositoryUnreachable } from '../activities/github-client.ts';
import type { GitHubConnection } from './github-env.ts';

export interface GitHubCheck {
  /** `<login>` for a token, `<slug>[bot]` for an App; undefined when GitHub did not answer. */
  identity?: string;
  warnings: string[];
}

const status = (error: unknown) => (error as { status?: number }).status;
const requestUrl = (error: unknown) => (error as { request?: { url?: string } }).request?.url ?? '';

/** The innermost reason of a failed request (fetch wraps ECONNREFUSED, ENOTFOUND, timeouts two levels down). */
function rootCause(error: unknown): string {
  let e = error as { cause?: unknown; code?: unknown; message?: unknown } | undefined;
  for (let i = 0; i < 5 && e?.cause; i++) e = e.cause as typeof e;
  return String(e?.code ?? e?.message ?? 'no answer').split('\n')[0] as string;
}

function unreachable(connection: GitHubConnection, error: unknown): string {
  return `could not reach GitHub at ${connection.apiUrl} to check the credentials (${rootCause(error)}); starting anyway: look-ups and reports are retried`;
}

export async function checkGitHub(connection: GitHubConnection, repositories: string[]): Promise<GitHubCheck> {
  const env = connection.vars;
  const clients = createGitHubClients(env, { retries: 0, timeoutMs: 10_000, maxInlineWaitMs: 0 });
  const [first] = repositories;
  const [owner0, repo0] = (first ?? '/').split('/') as [string, string];
  let identity: string;
  try {
    identity = await clients.selfLogin(owner0, repo0);
  } catch (error) {
    if (error instanceof GitHubConfigError) throw error;
    if (status(error) === 404 && connection.mode === 'app')
      throw new GitHubConfigError(
        `GitHub at ${connection.apiUrl} does not know GITHUB_APP_ID=${env.GITHUB_APP_ID} (GET /app answered 404): check the App ID on the App's settings page`,
      );
    if (status(error) === undefined || (status(error) ?? 0) >= 500)
      return { warnings: [unreachable(connection, error)] };
    if (status(error) === 403 && connection.mode === 'token') {
      throw new GitHubConfigError(
        `GitHub at ${connection.apiUrl} answered 403 to GET /user with GITHUB_TOKEN: foureyes needs the token of a user or bot account (an App's installation token cannot say whose it is; set GITHUB_APP_ID and its key instead)`,
      );
    }
    throw new GitHubConfigError(
      `GitHub at ${connection.apiUrl} answered ${status(error)} to ${connection.mode === 'app' ? 'GET /app' : 'GET /user'}: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  const warnings: string[] = [];
  for (const fullName of repositories) {
    const [owner, repo] = fullName.split('/') as [string, string];
    try {
      const octokit = await clients.forRepo(owner, repo);
      await octokit.rest.repos.get({ owner, repo });
    } catch (error) {
      if (status(error) === 404 && requestUrl(error).includes('/app/installations/')) {
        throw new GitHubConfigError(
          `GITHUB_INSTALLATION_ID=${env.GITHUB_INSTALLATION_ID} is not an installation of the GitHub App ${env.GITHUB_APP_ID} (GitHub answered 404): take the number from the installation's settings URL, or unset GITHUB_INSTALLATION_ID to look it up per repository`,
        );
      }
      if (error instanceof GitHubConfigError && error.reason !== 'unreachable') throw error;
      if (error instanceof GitHubConfigError) warnings.push(error.message);
      else if (status(error) === 404) warnings.push(repositoryUnreachable(env, owner, repo));
      else if (status(error) === undefined || (status(error) ?? 0) >= 500)
        warnings.push(`${fullName}: ${unreachable(connection, error)}`);
      else
        warnings.push(
          `${fullName}: GitHub answered ${status(error)} to GET /repos/${fullName}: ${(error as Error).message.split('\n')[0]}`,
        );
    }
  }
  return { identity, warnings };
}

/** The start-up line: which mode, which GitHub, as whom. */
export function describeConnection(connection: GitHubConnection, check: GitHubCheck): string {
  const where = `${connection.flavour === 'github.com' ? 'github.com' : `${connection.flavour} ${connection.webUrl}`} (API ${connection.apiUrl})`;
  if (connection.mode === 'token')
    return `token of ${check.identity ?? '(not checked)'} on ${where}; stages reported as commit statuses; from ${connection.source}`;
  const slug = check.identity?.replace(/\[bot\]$/, '') ?? '(not checked)';
  const installation = connection.vars.GITHUB_INSTALLATION_ID
    ? `installation ${connection.vars.GITHUB_INSTALLATION_ID}`
    : 'installation looked up per repository';
  return `GitHub App ${slug} (App ID ${connection.vars.GITHUB_APP_ID}, ${installation}) on ${where}; stages reported as check runs; from ${connection.source}`;
}
