// Which GitHub `foureyes up` connects to, and the bad sets of variables a user can give it: each is refused
// with one message naming the variable and what to do, never the token, key or secret itself. The live
// checks run against the GitHub stand-in as a separate process, with keys and tokens GitHub would refuse.
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitHubConfigError } from '../../src/activities/github-client.ts';
import { writeStoredApp } from '../../src/dev/github-app-store.ts';
import { checkGitHub } from '../../src/dev/github-check.ts';
import { githubZoneEnv, parseApiUrl, resolveGitHub } from '../../src/dev/github-env.ts';
import { freePort } from '../../src/dev/process.ts';
import { startStandinProcess, type StandinProcess } from '../helpers/github-standin-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'foureyes-github-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pem = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ type: 'pkcs1', format: 'pem' })
  .toString();
const keyFile = join(dir, 'app.pem');
writeFileSync(keyFile, pem, { mode: 0o600 });
const SECRET = 'webhook-secret-value-1234';
const emptyData = join(dir, 'empty-data');

/** The message resolveGitHub refuses `env` with (fails the test when it accepts it). */
function refusal(env: NodeJS.ProcessEnv, dataDir = emptyData): string {
  try {
    resolveGitHub(env, dataDir);
  } catch (error) {
    expect(error).toBeInstanceOf(GitHubConfigError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(Object.keys(env))}`);
}

describe('the GitHub variables of foureyes up', () => {
  it('no credentials at all is offline mode, even with a webhook secret set', () => {
    expect(resolveGitHub({}, emptyData)).toBeUndefined();
    expect(resolveGitHub({ GITHUB_WEBHOOK_SECRET: SECRET }, emptyData)).toBeUndefined();
  });

  it('a token: GITHUB_API_URL (default github.com), the token and the secret, for the orchestrator and the gateway', () => {
    const c = resolveGitHub(
      { GITHUB_TOKEN: 'ghp_abc', GITHUB_WEBHOOK_SECRET: SECRET, HOME: '/root', VAULT_TOKEN: 'x' },
      emptyData,
    );
    expect(c).toMatchObject({
      mode: 'token',
      apiUrl: 'https://api.github.com',
      webUrl: 'https://github.com',
      flavour: 'github.com',
    });
    const zones = githubZoneEnv(c?.vars ?? {});
    expect(zones.orchestrator).toEqual({ GITHUB_API_URL: 'https://api.github.com', GITHUB_TOKEN: 'ghp_abc' });
    expect(zones.gateway).toEqual({
      GITHUB_API_URL: 'https://api.github.com',
      GITHUB_TOKEN: 'ghp_abc',
      GITHUB_WEBHOOK_SECRET: SECRET,
    });
  });

  it('an App with a key file (or the key itself) and an optional installation, on GitHub Enterprise Server', () => {
    const c = resolveGitHub(
      {
        GITHUB_APP_ID: '123',
        GITHUB_PRIVATE_KEY_PATH: keyFile,
        GITHUB_INSTALLATION_ID: '77',
        GITHUB_API_URL: 'https://ghes.example.com/api/v3/',
        GITHUB_WEBHOOK_SECRET: SECRET,
      },
      emptyData,
    );
    expect(c).toMatchObject({
      mode: 'app',
      apiUrl: 'https://ghes.example.com/api/v3',
      webUrl: 'https://ghes.example.com',
      flavour: 'GitHub Enterprise Server',
    });
    expect(githubZoneEnv(c?.vars ?? {}).orchestrator).toEqual({
      GITHUB_API_URL: 'https://ghes.example.com/api/v3',
      GITHUB_APP_ID: '123',
      GITHUB_PRIVATE_KEY_PATH: keyFile,
      GITHUB_INSTALLATION_ID: '77',
    });
    const inline = resolveGitHub(
      { GITHUB_APP_ID: '123', GITHUB_PRIVATE_KEY: pem.replace(/\n/g, '\\n'), GITHUB_WEBHOOK_SECRET: SECRET },
      emptyData,
    );
    expect(inline?.vars.GITHUB_PRIVATE_KEY).toBe(pem.replace(/\n/g, '\\n'));
    expect(parseApiUrl('https://api.acme.ghe.com')).toMatchObject({
      webUrl: 'https://acme.ghe.com',
      flavour: 'GHE.com',
    });
  });

  it('refuses an incomplete or contradictory set, naming the variable and what to do', () => {
    expect(refusal({ GITHUB_APP_ID: '123', GITHUB_WEBHOOK_SECRET: SECRET })).toMatch(
      /^GITHUB_APP_ID is set but neither GITHUB_PRIVATE_KEY nor GITHUB_PRIVATE_KEY_PATH: generate a private key/,
    );
    expect(refusal({ GITHUB_PRIVATE_KEY_PATH: keyFile, GITHUB_WEBHOOK_SECRET: SECRET })).toMatch(
      /^GITHUB_PRIVATE_KEY_PATH is set but GITHUB_APP_ID is not/,
    );
    expect(
      refusal({ GITHUB_APP_ID: 'my-app', GITHUB_PRIVATE_KEY_PATH: keyFile, GITHUB_WEBHOOK_SECRET: SECRET }),
    ).toMatch(/^GITHUB_APP_ID="my-app": expected the App's numeric App ID/);
    expect(
      refusal({
        GITHUB_APP_ID: '123',
        GITHUB_PRIVATE_KEY_PATH: keyFile,
        GITHUB_INSTALLATION_ID: 'all',
        GITHUB_WEBHOOK_SECRET: SECRET,
      }),
    ).toMatch(/^GITHUB_INSTALLATION_ID="all": expected a number/);
    expect(refusal({ GITHUB_TOKEN: 'ghp_abc' })).toMatch(
      /^GITHUB_WEBHOOK_SECRET is not set, but GitHub credentials are \(GITHUB_TOKEN\)/,
    );
    expect(refusal({ GITHUB_APP_ID: '123', GITHUB_PRIVATE_KEY_PATH: keyFile })).toMatch(
      /^GITHUB_WEBHOOK_SECRET is not set/,
    );
    expect(
      refusal({
        GITHUB_TOKEN: 'ghp_abc',
        GITHUB_APP_ID: '123',
        GITHUB_PRIVATE_KEY_PATH: keyFile,
        GITHUB_WEBHOOK_SECRET: SECRET,
      }),
    ).toMatch(/^both GITHUB_TOKEN and a GitHub App \(GITHUB_APP_ID, GITHUB_PRIVATE_KEY_PATH\) are set/);
    expect(refusal({ GITHUB_API_URL: 'https://ghes.example.com/api/v3' })).toMatch(
      /^GITHUB_API_URL is set but no GitHub credentials are/,
    );
  });

  it('refuses a key that is not PEM, or missing, without printing any of it', () => {
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 someone@laptop\n');
    const fromFile = refusal({ GITHUB_APP_ID: '123', GITHUB_PRIVATE_KEY_PATH: notPem, GITHUB_WEBHOOK_SECRET: SECRET });
    expect(fromFile).toBe(
      `GITHUB_PRIVATE_KEY_PATH=${notPem} is not a GitHub App private key: expected the PEM text GitHub downloads (-----BEGIN RSA PRIVATE KEY----- …); generate one on the App's settings page under Private keys`,
    );
    const broken = pem.replace(/^(.{80}).{40}/s, '$1');
    const inline = refusal({ GITHUB_APP_ID: '123', GITHUB_PRIVATE_KEY: broken, GITHUB_WEBHOOK_SECRET: SECRET });
    expect(inline).toMatch(/^GITHUB_PRIVATE_KEY is not a GitHub App private key/);
    for (const line of pem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')))
      expect(inline).not.toContain(line.slice(0, 20));
    expect(
      refusal({
        GITHUB_APP_ID: '123',
        GITHUB_PRIVATE_KEY_PATH: join(dir, 'missing.pem'),
        GITHUB_WEBHOOK_SECRET: SECRET,
      }),
    ).toMatch(/missing\.pem: the file cannot be read \(ENOENT\); point it at the \.pem file/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    expect(refusal({ GITHUB_APP_ID: '123', GITHUB_PRIVATE_KEY: ec, GITHUB_WEBHOOK_SECRET: SECRET })).toBe(
      'GITHUB_PRIVATE_KEY: the key is not an RSA key; GitHub App keys are RSA',
    );
  });

  it("refuses a GitHub Enterprise Server address without /api/v3, and github.com's web address", () => {
    const env = { GITHUB_TOKEN: 'ghp_abc', GITHUB_WEBHOOK_SECRET: SECRET };
    expect(refusal({ ...env, GITHUB_API_URL: 'https://ghes.example.com' })).toBe(
      "GITHUB_API_URL=https://ghes.example.com does not end in /api/v3: GitHub Enterprise Server serves its REST API under /api/v3, so set GITHUB_API_URL=https://ghes.example.com/api/v3 (github.com's is https://api.github.com)",
    );
    expect(refusal({ ...env, GITHUB_API_URL: 'https://github.com' })).toMatch(
      /is github.com's web site; its REST API is https:\/\/api.github.com/,
    );
    expect(refusal({ ...env, GITHUB_API_URL: 'ghes.example.com' })).toMatch(
      /^GITHUB_API_URL="ghes.example.com" is not a URL/,
    );
    expect(refusal({ ...env, GITHUB_API_URL: 'https://user:pw@ghes.example.com/api/v3' })).not.toContain('pw');
  });

  it('a later `foureyes up` picks up the App `foureyes setup github` stored; the environment overrides it', () => {
    const data = join(dir, 'stored');
    const files = writeStoredApp(
      data,
      {
        appId: 42,
        slug: 'foureyes-acme',
        name: 'foureyes acme',
        htmlUrl: 'https://github.com/apps/foureyes-acme',
        webUrl: 'https://github.com',
        apiUrl: 'https://api.github.com',
        owner: 'acme',
        createdAt: '2026-01-01T00:00:00Z',
      },
      { privateKey: pem, webhookSecret: SECRET },
    );
    const c = resolveGitHub({}, data);
    expect(c).toMatchObject({
      mode: 'app',
      apiUrl: 'https://api.github.com',
      vars: { GITHUB_APP_ID: '42', GITHUB_PRIVATE_KEY_PATH: files.privateKey, GITHUB_WEBHOOK_SECRET: SECRET },
    });
    expect(c?.source).toContain('foureyes-acme stored by `foureyes setup github`');
    expect(resolveGitHub({ GITHUB_TOKEN: 'ghp_x', GITHUB_WEBHOOK_SECRET: 'other' }, data)).toMatchObject({
      mode: 'token',
    });
  });
});

describe('the start-up check against GitHub (the stand-in as its own process)', () => {
  let gh: StandinProcess;
  let app: { appId: number; installationId: number; privateKey: string };
  let bot: string;
  const base = () => ({ GITHUB_API_URL: gh.apiUrl, GITHUB_WEBHOOK_SECRET: SECRET });
  const connect = (env: NodeJS.ProcessEnv) =>
    resolveGitHub(env, emptyData) as NonNullable<ReturnType<typeof resolveGitHub>>;
  const appEnv = (extra: Record<string, string> = {}) => ({
    ...base(),
    GITHUB_APP_ID: String(app.appId),
    GITHUB_PRIVATE_KEY: app.privateKey,
    ...extra,
  });

  beforeAll(async () => {
    gh = await startStandinProcess(join(dir, 'standin'));
    bot = (await gh.control<{ token: string }>('POST', '/users', { login: 'foureyes-bot' })).token;
    await gh.control('POST', '/repos', { fullName: 'acme/shop' });
    await gh.control('POST', '/repos', { fullName: 'acme/billing' });
    app = await gh.control('POST', '/apps', { slug: 'foureyes-check', repositories: ['acme/shop'] });
  });
  afterAll(() => gh?.stop());

  it('accepts good credentials and names whom they belong to', async () => {
    expect(await checkGitHub(connect({ ...base(), GITHUB_TOKEN: bot }), ['acme/shop'])).toEqual({
      identity: 'foureyes-bot',
      warnings: [],
    });
    expect(await checkGitHub(connect(appEnv()), ['acme/shop'])).toEqual({
      identity: 'foureyes-check[bot]',
      warnings: [],
    });
    expect(
      await checkGitHub(connect(appEnv({ GITHUB_INSTALLATION_ID: String(app.installationId) })), ['acme/shop']),
    ).toEqual({ identity: 'foureyes-check[bot]', warnings: [] });
  });

  it('a token GitHub refuses (401) stops the start, naming GITHUB_TOKEN, without the token', async () => {
    const refused = checkGitHub(connect({ ...base(), GITHUB_TOKEN: 'ghp_revoked0123456789' }), ['acme/shop']);
    await expect(refused).rejects.toThrow(
      `GitHub at ${gh.apiUrl} refused GITHUB_TOKEN (401 Bad credentials): the token is wrong, expired or revoked; create a new one and restart foureyes`,
    );
    await expect(refused).rejects.not.toThrow(/ghp_revoked/);
  });

  it("an App's installation token as GITHUB_TOKEN stops the start: foureyes needs to know whose token it is", async () => {
    const octokit = new Octokit({
      baseUrl: gh.apiUrl,
      authStrategy: createAppAuth,
      auth: { appId: app.appId, privateKey: app.privateKey, installationId: app.installationId },
    });
    const { token } = (await octokit.auth({ type: 'installation' })) as { token: string };
    await expect(checkGitHub(connect({ ...base(), GITHUB_TOKEN: token }), ['acme/shop'])).rejects.toThrow(
      /answered 403 to GET \/user with GITHUB_TOKEN: foureyes needs the token of a user or bot account/,
    );
  });

  it("a wrong App ID, or a key of another App, stops the start: the stand-in refuses a JWT not signed with the App's key", async () => {
    const other = await gh.control<{ appId: number; privateKey: string }>('POST', '/apps', { slug: 'someone-else' });
    for (const env of [
      appEnv({ GITHUB_APP_ID: String(other.appId) }),
      appEnv({ GITHUB_PRIVATE_KEY: other.privateKey }),
      appEnv({ GITHUB_APP_ID: '999999' }),
    ]) {
      await expect(checkGitHub(connect(env), ['acme/shop'])).rejects.toThrow(
        /^GitHub at http:\S+\/api\/v3 refused the GitHub App's credentials \(401 .+\): GITHUB_APP_ID=\d+ and the key in GITHUB_PRIVATE_KEY must belong to the same App/,
      );
    }
  });

  it('an installation that does not cover a repository is a warning naming the repository and what to do', async () => {
    const perRepo = await checkGitHub(connect(appEnv()), ['acme/shop', 'acme/billing']);
    expect(perRepo.warnings).toEqual([
      `the GitHub App ${app.appId} is not installed on acme/billing: install it on that repository (the App's page → Install App); push again or close and reopen the pull request once that is fixed`,
    ]);
    const fixed = await checkGitHub(connect(appEnv({ GITHUB_INSTALLATION_ID: String(app.installationId) })), [
      'acme/billing',
    ]);
    expect(fixed.warnings).toEqual([
      `installation GITHUB_INSTALLATION_ID=${app.installationId} of the GitHub App ${app.appId} does not cover acme/billing: add the repository to the installation (the owner's Settings → GitHub Apps → Configure → Repository access); push again or close and reopen the pull request once that is fixed`,
    ]);
    const token = await checkGitHub(connect({ ...base(), GITHUB_TOKEN: bot }), ['acme/nowhere']);
    expect(token.warnings).toEqual([
      "GITHUB_TOKEN cannot see acme/nowhere (GitHub answers 404): give the token's account access to the repository (a fine-grained token must have it selected); push again or close and reopen the pull request once that is fixed",
    ]);
  });

  it("an installation ID that is not the App's stops the start, naming GITHUB_INSTALLATION_ID", async () => {
    await expect(checkGitHub(connect(appEnv({ GITHUB_INSTALLATION_ID: '4242' })), ['acme/shop'])).rejects.toThrow(
      /^GITHUB_INSTALLATION_ID=4242 is not an installation of the GitHub App \d+ \(GitHub answered 404\)/,
    );
  });

  it('GitHub not answering is a warning, not a refusal (the orchestrator retries)', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/api/v3`;
    const check = await checkGitHub(
      connect({ GITHUB_TOKEN: bot, GITHUB_WEBHOOK_SECRET: SECRET, GITHUB_API_URL: closed }),
      ['acme/shop'],
    );
    expect(check.identity).toBeUndefined();
    expect(check.warnings).toEqual([
      `could not reach GitHub at ${closed} to check the credentials (ECONNREFUSED); starting anyway: look-ups and reports are retried`,
    ]);
  });
});
