// `foureyes setup github` as a person runs it, against the GitHub stand-in as an outside service (its own
// process, shaped like GitHub Enterprise Server): the command serves its page, the test plays the browser
// (posts the manifest form to GitHub, follows GitHub's redirect back), the command exchanges the code at
// POST /app-manifests/{code}/conversions and stores the App. Then the App is installed and a later
// `foureyes up` picks it up from the data folder with no GitHub variable set.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPrivateKey } from '../../src/activities/github-client.ts';
import { APP_EVENTS, APP_PERMISSIONS } from '../../src/dev/cli/setup-github.ts';
import { projectRoot } from '../../src/dev/paths.ts';
import { startUp } from '../helpers/foureyes-up.ts';
import { startStandinProcess, type StandinProcess } from '../helpers/github-standin-process.ts';

const work = mkdtempSync(join(tmpdir(), 'foureyes-setup-github-'));
let gh: StandinProcess;
let configFile: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  gh = await startStandinProcess(join(work, 'github'));
  await gh.control('POST', '/users', { login: 'sam-dev', email: 'sam@example.com' });
  const repo = await gh.control<{ remote: string }>('POST', '/repos', { fullName: 'acme/shop' });
  configFile = join(work, 'foureyes.yaml');
  writeFileSync(
    configFile,
    `people:\n  - { github: sam-dev, emails: [sam@example.com] }\nenvironments:\n  - { name: staging, deploy: { run: "true" } }\nrepositories:\n  - { name: acme/shop, remote: ${JSON.stringify(repo.remote)} }\n`,
  );
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await gh?.stop();
  rmSync(work, { recursive: true, force: true });
});

interface Setup {
  child: ChildProcess;
  stdout: () => string;
  output: () => string;
  exited: Promise<number | null>;
  /** The local page's address, once printed. */
  page: Promise<string>;
}

function setup(dataDir: string, extra: string[] = []): Setup {
  const child = spawn(
    process.execPath,
    [
      join(projectRoot(), 'bin/foureyes.js'),
      'setup',
      'github',
      '--github-url',
      gh.url,
      '--org',
      'acme',
      '--no-open',
      ...extra,
    ],
    {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, FOUREYES_DATA: dataDir, FOUREYES_CONFIG: configFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let stdout = '';
  let all = '';
  child.stdout?.on('data', (d: Buffer) => ((stdout += d.toString()), (all += d.toString())));
  child.stderr?.on('data', (d: Buffer) => (all += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const page = (async () => {
    for (let i = 0; i < 300; i++) {
      const m = /Open (http:\/\/127\.0\.0\.1:\d+\/) in your browser/.exec(all);
      if (m) return m[1] as string;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`setup github printed no address:\n${all}`);
  })();
  // A run that refuses to start never prints one; only a test that awaits the address fails on it.
  page.catch(() => undefined);
  return { child, stdout: () => stdout, output: () => all, exited, page };
}

const unescape = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** The browser: load the page, submit its form to GitHub, follow GitHub's redirect back to the command. */
async function createInBrowser(
  pageUrl: string,
): Promise<{ manifest: Record<string, unknown>; action: string; done: Response; callback: string }> {
  const text = await (await fetch(pageUrl)).text();
  const action = unescape(/<form action="([^"]+)"/.exec(text)?.[1] ?? '');
  const manifest = JSON.parse(unescape(/name="manifest" value="([^"]+)"/.exec(text)?.[1] ?? '{}')) as Record<
    string,
    unknown
  >;
  const confirmed = await fetch(action, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ manifest: JSON.stringify(manifest) }),
  });
  expect(confirmed.status).toBe(302);
  const callback = confirmed.headers.get('location') as string;
  return { manifest, action, done: await fetch(callback), callback };
}

describe('foureyes setup github', () => {
  it('creates the App from a manifest with exactly what foureyes uses, stores it 0600 without showing the key, and a later foureyes up uses it', async () => {
    const data = join(work, 'data');
    const run = setup(data);
    const pageUrl = await run.page;

    // A redirect that is not this run's (wrong state) is refused and the command keeps waiting.
    const forged = await fetch(`${pageUrl}callback?code=abc&state=not-this-one`);
    expect(forged.status).toBe(400);
    expect(run.child.exitCode).toBeNull();

    const { manifest, action, done } = await createInBrowser(pageUrl);
    expect(action).toMatch(new RegExp(`^${gh.url}/organizations/acme/settings/apps/new\\?state=[0-9a-f]{32}$`));
    expect(manifest).toMatchObject({
      name: 'foureyes-acme',
      public: false,
      redirect_url: `${pageUrl}callback`,
      hook_attributes: { url: 'http://127.0.0.1:3000/webhooks/github', active: false },
    });
    expect(manifest.default_permissions).toEqual({
      metadata: 'read',
      contents: 'read',
      pull_requests: 'read',
      checks: 'write',
      deployments: 'write',
      issues: 'write',
    });
    expect(manifest.default_events).toEqual(['pull_request', 'pull_request_review']);
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Created foureyes-acme');
    expect(await run.exited).toBe(0);

    // Stored for `foureyes up`: the key and the secret in files of their own, readable by the owner only.
    const dir = join(data, 'github-app');
    const info = JSON.parse(readFileSync(join(dir, 'app.json'), 'utf8')) as {
      appId: number;
      slug: string;
      apiUrl: string;
    };
    expect(info).toMatchObject({ slug: 'foureyes-acme', apiUrl: `${gh.url}/api/v3`, webUrl: gh.url, owner: 'acme' });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const file of ['app.json', 'private-key.pem', 'webhook-secret'])
      expect(statSync(join(dir, file)).mode & 0o777, file).toBe(0o600);
    const key = readFileSync(join(dir, 'private-key.pem'), 'utf8');
    const secret = readFileSync(join(dir, 'webhook-secret'), 'utf8');
    expect(readPrivateKey({ GITHUB_PRIVATE_KEY_PATH: join(dir, 'private-key.pem') })).toBe(key);
    expect(JSON.stringify(info)).not.toContain(secret);
    for (const line of key.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')))
      expect(run.output()).not.toContain(line);
    expect(run.output()).not.toContain(secret);
    expect(run.output()).toContain(`created the GitHub App foureyes-acme (App ID ${info.appId})`);
    expect(run.output()).toContain(`install it on acme/shop: ${gh.url}/apps/foureyes-acme/installations/new`);
    expect(run.output()).toContain(
      `gh webhook forward --repo=acme/shop --events=pull_request,pull_request_review --url=http://127.0.0.1:3000/webhooks/github --secret="$(cat ${join(dir, 'webhook-secret')})"`,
    );
    // GitHub's side: the App exists with that manifest, and the code was used up.
    const app = await gh.control<{ manifest: { default_permissions: unknown; default_events: unknown } }>(
      'GET',
      `/apps/${info.appId}`,
    );
    expect(app.manifest.default_permissions).toEqual(manifest.default_permissions);
    expect(
      (await gh.requests())
        .filter((r) => r.path.endsWith('/conversions'))
        .map((r) => [r.method, r.path.replace(/[0-9a-f]{40}/, 'CODE'), r.status]),
    ).toEqual([['POST', '/api/v3/app-manifests/CODE/conversions', 201]]);

    // A second run refuses to replace it.
    const again = setup(data);
    expect(await again.exited).toBe(1);
    expect(again.output()).toContain(
      `foureyes setup: an App is already stored in ${dir} (foureyes-acme, App ID ${info.appId}) and \`foureyes up\` uses it`,
    );

    // The person installs it; `npm start` with no GitHub variable at all connects as that App.
    await gh.control('POST', `/apps/${info.appId}/installation`, { repositories: ['acme/shop'] });
    const up = await startUp({ dataDir: data, configFile, env: {} });
    try {
      expect(up.output()).toMatch(
        new RegExp(
          `GitHub +GitHub App foureyes-acme \\(App ID ${info.appId}, installation looked up per repository\\) on GitHub Enterprise Server ${gh.url} \\(API ${gh.apiUrl}\\); stages reported as check runs; from the App foureyes-acme stored by \`foureyes setup github\``,
        ),
      );
      expect(up.output()).not.toContain('GitHub stand-in');
      expect(up.output()).not.toContain('warning');
      for (const line of key.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')))
        expect(up.output()).not.toContain(line);
    } finally {
      expect(await up.stop()).toBe(0);
    }
  }, 300_000);

  it('--print writes the variables to stdout for a secret manager and stores nothing', async () => {
    const data = join(work, 'print-data');
    const run = setup(data, ['--print', '--name', 'foureyes-printed']);
    const { done } = await createInBrowser(await run.page);
    expect(done.status).toBe(200);
    expect(await run.exited).toBe(0);
    const vars = Object.fromEntries(
      run
        .stdout()
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    expect(Object.keys(vars)).toEqual([
      'GITHUB_APP_ID',
      'GITHUB_API_URL',
      'GITHUB_WEBHOOK_SECRET',
      'GITHUB_PRIVATE_KEY',
    ]);
    expect(vars.GITHUB_API_URL).toBe(gh.apiUrl);
    expect(vars.GITHUB_WEBHOOK_SECRET).toMatch(/^[0-9a-f]{40}$/);
    // One line with \n escapes (as a shell keeps them inside double quotes), as foureyes reads GITHUB_PRIVATE_KEY.
    const key = (vars.GITHUB_PRIVATE_KEY as string).replace(/^"|"$/g, '');
    expect(key.split('\\n').length).toBeGreaterThan(10);
    expect(key).not.toMatch(/\n/);
    expect(readPrivateKey({ GITHUB_PRIVATE_KEY: key })).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(existsSync(join(data, 'github-app'))).toBe(false);
  }, 120_000);

  it('the README lists exactly the permissions and events of the manifest, each with why', () => {
    const readme = readFileSync(join(projectRoot(), 'README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('## Connect a real repository'),
      readme.indexOf('\n## ', readme.indexOf('## Connect a real repository') + 5),
    );
    const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (read|write|event) \| (.+) \|$/gm)].map((m) => [m[1], m[2]]);
    expect(rows).toEqual([
      ...APP_PERMISSIONS.map((p) => [p.name, p.level]),
      ...APP_EVENTS.map((e) => [e.name, 'event']),
    ]);
  });
});
