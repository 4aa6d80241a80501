// Which GitHub `foureyes up` connects to and with what: read from the environment (GITHUB_TOKEN, or
// GITHUB_APP_ID with GITHUB_PRIVATE_KEY / GITHUB_PRIVATE_KEY_PATH and optional GITHUB_INSTALLATION_ID;
// GITHUB_API_URL; GITHUB_WEBHOOK_SECRET), else from the App `foureyes setup github` stored in the data
// folder, else none (offline mode). An incomplete or contradictory set is refused with a message naming
// the variable; no message carries a token, key or secret. The result is the variables each zone gets:
// the orchestrator and the gateway, never the checks or the deployer.
import { GitHubConfigError, readPrivateKey } from '../activities/github-client.ts';
import { readStoredApp } from './github-app-store.ts';
import { checkGitHub, describeConnection } from './github-check.ts';

export type GitHubFlavour = 'github.com' | 'GHE.com' | 'GitHub Enterprise Server';

export interface GitHubConnection {
  mode: 'token' | 'app';
  apiUrl: string;
  webUrl: string;
  flavour: GitHubFlavour;
  /** The GitHub variables of the orchestrator and the gateway (GITHUB_WEBHOOK_SECRET for the gateway only). */
  vars: Record<string, string>;
  /** Where the credentials came from, for the start-up line. */
  source: string;
}

/** Variables the orchestrator reports and looks up with; the gateway also verifies webhooks. */
const CREDENTIAL_VARS = [
  'GITHUB_API_URL',
  'GITHUB_TOKEN',
  'GITHUB_APP_ID',
  'GITHUB_PRIVATE_KEY',
  'GITHUB_PRIVATE_KEY_PATH',
  'GITHUB_INSTALLATION_ID',
] as const;
const GATEWAY_ONLY_VARS = ['GITHUB_WEBHOOK_SECRET'] as const;

/** The GitHub part of each zone's environment, from one set of variables (a real GitHub's or the stand-in's). */
export function githubZoneEnv(vars: Record<string, string | undefined>): {
  orchestrator: Record<string, string>;
  gateway: Record<string, string>;
} {
  const pick = (names: readonly string[]) =>
    Object.fromEntries(names.flatMap((k) => (vars[k] ? [[k, vars[k] as string]] : [])));
  return { orchestrator: pick(CREDENTIAL_VARS), gateway: pick([...CREDENTIAL_VARS, ...GATEWAY_ONLY_VARS]) };
}

/**
 * GITHUB_API_URL as GitHub serves its REST API: api.github.com, api.<name>.ghe.com, or a GitHub Enterprise
 * Server's https://HOST/api/v3. A GHES address without /api/v3 is its web site, which answers HTML.
 */
export function parseApiUrl(raw: string | undefined): { apiUrl: string; webUrl: string; flavour: GitHubFlavour } {
  const text = (raw ?? 'https://api.github.com').trim().replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new GitHubConfigError(
      `GITHUB_API_URL=${JSON.stringify(text.slice(0, 200))} is not a URL; expected https://api.github.com or, for GitHub Enterprise Server, https://HOST/api/v3`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new GitHubConfigError(`GITHUB_API_URL=${text}: expected an http(s) URL such as https://api.github.com`);
  if (url.search || url.hash || url.username || url.password)
    throw new GitHubConfigError(
      'GITHUB_API_URL: expected a plain base URL without credentials, query or fragment, such as https://api.github.com',
    );
  const host = url.hostname.toLowerCase();
  const path = url.pathname.replace(/\/+$/, '');
  if (host === 'api.github.com' && path === '')
    return { apiUrl: text, webUrl: 'https://github.com', flavour: 'github.com' };
  if (/^api\.[a-z0-9-]+\.ghe\.com$/.test(host) && path === '')
    return { apiUrl: text, webUrl: `${url.protocol}//${host.slice(4)}`, flavour: 'GHE.com' };
  if (path.endsWith('/api/v3'))
    return {
      apiUrl: text,
      webUrl: `${url.origin}${path.slice(0, -'/api/v3'.length)}`,
      flavour: 'GitHub Enterprise Server',
    };
  if (host === 'github.com')
    throw new GitHubConfigError(
      `GITHUB_API_URL=${text} is github.com's web site; its REST API is https://api.github.com: set GITHUB_API_URL=https://api.github.com (or leave it unset)`,
    );
  throw new GitHubConfigError(
    `GITHUB_API_URL=${text} does not end in /api/v3: GitHub Enterprise Server serves its REST API under /api/v3, so set GITHUB_API_URL=${url.origin}${path}/api/v3 (github.com's is https://api.github.com)`,
  );
}

function requireWebhookSecret(env: NodeJS.ProcessEnv, how: string): string {
  const secret = env.GITHUB_WEBHOOK_SECRET?.trim();
  if (!secret) {
    throw new GitHubConfigError(
      `GITHUB_WEBHOOK_SECRET is not set, but GitHub credentials are (${how}): the gateway verifies every GitHub delivery with it. Set it to the secret of the App's or the repository's webhook (\`foureyes setup github\` stores one for the App it creates)`,
    );
  }
  return secret;
}

function fromEnvironment(env: NodeJS.ProcessEnv): GitHubConnection {
  const { apiUrl, webUrl, flavour } = parseApiUrl(env.GITHUB_API_URL);
  const keyVars = ['GITHUB_PRIVATE_KEY', 'GITHUB_PRIVATE_KEY_PATH'].filter((k) => env[k]);
  if (env.GITHUB_TOKEN && (env.GITHUB_APP_ID || keyVars.length > 0)) {
    throw new GitHubConfigError(
      `both GITHUB_TOKEN and a GitHub App (${['GITHUB_APP_ID', ...keyVars].filter((k) => env[k]).join(', ')}) are set: foureyes uses one of them; unset the other`,
    );
  }
  if (env.GITHUB_TOKEN) {
    if (/\s/.test(env.GITHUB_TOKEN.trim()))
      throw new GitHubConfigError('GITHUB_TOKEN contains white space: set it to the token alone');
    if (env.GITHUB_INSTALLATION_ID)
      throw new GitHubConfigError(
        'GITHUB_INSTALLATION_ID is set with GITHUB_TOKEN: an installation belongs to a GitHub App; set GITHUB_APP_ID and its key instead, or unset GITHUB_INSTALLATION_ID',
      );
    const secret = requireWebhookSecret(env, 'GITHUB_TOKEN');
    return {
      mode: 'token',
      apiUrl,
      webUrl,
      flavour,
      source: 'GITHUB_TOKEN',
      vars: { GITHUB_API_URL: apiUrl, GITHUB_TOKEN: env.GITHUB_TOKEN.trim(), GITHUB_WEBHOOK_SECRET: secret },
    };
  }
  const appId = env.GITHUB_APP_ID?.trim();
  if (!appId)
    throw new GitHubConfigError(
      `${keyVars[0] ?? 'GITHUB_INSTALLATION_ID'} is set but GITHUB_APP_ID is not: set GITHUB_APP_ID to the App ID shown on the App's settings page`,
    );
  if (!/^[1-9][0-9]{0,11}$/.test(appId) && !/^Iv[0-9A-Za-z.]{4,40}$/.test(appId)) {
    throw new GitHubConfigError(
      `GITHUB_APP_ID=${JSON.stringify(appId.slice(0, 40))}: expected the App's numeric App ID (or its client ID, Iv…), shown on the App's settings page`,
    );
  }
  if (keyVars.length === 0) {
    throw new GitHubConfigError(
      `GITHUB_APP_ID is set but neither GITHUB_PRIVATE_KEY nor GITHUB_PRIVATE_KEY_PATH: generate a private key on the App's settings page (Private keys) and set GITHUB_PRIVATE_KEY_PATH to the downloaded .pem file`,
    );
  }
  if (keyVars.length > 1)
    throw new GitHubConfigError('both GITHUB_PRIVATE_KEY and GITHUB_PRIVATE_KEY_PATH are set: set one of them');
  readPrivateKey(env);
  const installation = env.GITHUB_INSTALLATION_ID?.trim();
  if (installation !== undefined && installation !== '' && !/^[1-9][0-9]{0,15}$/.test(installation)) {
    throw new GitHubConfigError(
      `GITHUB_INSTALLATION_ID=${JSON.stringify(installation.slice(0, 40))}: expected a number (the end of the installation's settings URL), or leave it unset to look it up per repository`,
    );
  }
  const secret = requireWebhookSecret(env, 'GITHUB_APP_ID');
  const key = keyVars[0] as string;
  return {
    mode: 'app',
    apiUrl,
    webUrl,
    flavour,
    source: `GITHUB_APP_ID and ${key}`,
    vars: {
      GITHUB_API_URL: apiUrl,
      GITHUB_APP_ID: appId,
      [key]: env[key] as string,
      ...(installation ? { GITHUB_INSTALLATION_ID: installation } : {}),
      GITHUB_WEBHOOK_SECRET: secret,
    },
  };
}

/** The App `foureyes setup github` stored, with the environment's GITHUB_API_URL / GITHUB_WEBHOOK_SECRET overriding its own. */
function fromStoredApp(env: NodeJS.ProcessEnv, dataDir: string): GitHubConnection | undefined {
  const stored = readStoredApp(dataDir);
  if (!stored) return undefined;
  const vars = {
    GITHUB_API_URL: env.GITHUB_API_URL ?? stored.app.apiUrl,
    GITHUB_APP_ID: String(stored.app.appId),
    GITHUB_PRIVATE_KEY_PATH: stored.files.privateKey,
    ...(env.GITHUB_INSTALLATION_ID ? { GITHUB_INSTALLATION_ID: env.GITHUB_INSTALLATION_ID } : {}),
    GITHUB_WEBHOOK_SECRET: env.GITHUB_WEBHOOK_SECRET ?? stored.webhookSecret,
  };
  const connection = fromEnvironment(vars);
  return {
    ...connection,
    source: `the App ${stored.app.slug} stored by \`foureyes setup github\` in ${stored.files.dir}`,
  };
}

/** The GitHub to connect to, or undefined for offline mode (no credentials anywhere). */
export function resolveGitHub(env: NodeJS.ProcessEnv, dataDir: string): GitHubConnection | undefined {
  const given = [
    'GITHUB_TOKEN',
    'GITHUB_APP_ID',
    'GITHUB_PRIVATE_KEY',
    'GITHUB_PRIVATE_KEY_PATH',
    'GITHUB_INSTALLATION_ID',
  ].some((k) => env[k]);
  if (given) return fromEnvironment(env);
  const stored = fromStoredApp(env, dataDir);
  if (stored) return stored;
  if (env.GITHUB_API_URL) {
    throw new GitHubConfigError(
      `GITHUB_API_URL is set but no GitHub credentials are: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_PRIVATE_KEY_PATH (\`foureyes setup github\` creates an App), or unset GITHUB_API_URL to run offline`,
    );
  }
  return undefined;
}

/**
 * `foureyes up`'s GitHub: resolved, checked against GitHub (credentials refused stop the start), announced.
 * Undefined for offline mode.
 */
export async function connectGitHub(
  env: NodeJS.ProcessEnv,
  options: { dataDir: string; repositories: string[]; log: (line: string) => void },
): Promise<(GitHubConnection & { summary: string }) | undefined> {
  const connection = resolveGitHub(env, options.dataDir);
  if (!connection) return undefined;
  options.log(`foureyes: checking the GitHub credentials (${connection.source}) at ${connection.apiUrl} …`);
  const check = await checkGitHub(connection, options.repositories);
  for (const warning of check.warnings) options.log(`foureyes: warning: ${warning}`);
  return { ...connection, summary: describeConnection(connection, check) };
}
