// The GitHub stand-in, driven through its HTTP control API and read through GitHub's REST API with
// Octokit, exactly as foureyes and its tests use it.
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { Webhooks } from '@octokit/webhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitHubStandin, type RunningStandin } from '../../src/dev/github-standin/index.ts';

const SECRET = 'standin-test-secret';
interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('GitHub stand-in', () => {
  let dir: string;
  let gh: RunningStandin;
  let receiver: Server;
  const received: Received[] = [];
  let samToken: string;

  async function control(path: string, body: unknown = {}): Promise<Record<string, unknown>> {
    const res = await fetch(`${gh.url}/_standin${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'standin-test-'));
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(202).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    gh = await startGitHubStandin({ dataDir: dir });
    await control('/webhook', {
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/github`,
      secret: SECRET,
    });
    samToken = (await control('/users', { login: 'sam-dev', email: 'sam@example.com', name: 'Sam' })).token as string;
    await control('/users', { login: 'alex-reviewer', email: 'alex@example.com' });
    await control('/repos', { fullName: 'acme/shop', files: { 'README.md': 'shop\n', 'foureyes.yaml': 'x: 1\n' } });
  });

  afterAll(async () => {
    await gh?.stop();
    await new Promise<void>((r) => receiver.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens a pull request as one person, signs the webhook, and serves it through the REST API', async () => {
    const opened = await control('/repos/acme/shop/pulls', {
      author: 'sam-dev',
      title: 'Add checkout',
      commits: [
        {
          message: 'Add checkout\n\nCo-authored-by: Alex <alex@example.com>',
          files: { 'src/checkout.ts': 'export {}\n' },
        },
      ],
    });
    expect(opened.status).toBe(202);
    const hook = received.at(-1)!;
    expect(hook.headers['x-github-event']).toBe('pull_request');
    expect(hook.headers['x-github-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    expect(await new Webhooks({ secret: SECRET }).verify(hook.body, String(hook.headers['x-hub-signature-256']))).toBe(
      true,
    );
    const payload = JSON.parse(hook.body) as {
      action: string;
      pull_request: { head: { sha: string }; user: { login: string } };
      repository: { full_name: string };
    };
    expect(payload.action).toBe('opened');
    expect(payload.pull_request.head.sha).toBe(opened.headSha);
    expect(payload.repository.full_name).toBe('acme/shop');

    const octokit = new Octokit({ auth: samToken, baseUrl: gh.url });
    expect((await octokit.rest.users.getAuthenticated()).data.login).toBe('sam-dev');
    const number = opened.number as number;
    const commits = await octokit.paginate(octokit.rest.pulls.listCommits, {
      owner: 'acme',
      repo: 'shop',
      pull_number: number,
      per_page: 1,
    });
    expect(commits).toHaveLength(1);
    expect(commits[0]!.author?.login).toBe('sam-dev');
    expect(commits[0]!.commit.message).toContain('Co-authored-by: Alex <alex@example.com>');
    const files = await octokit.rest.pulls.listFiles({ owner: 'acme', repo: 'shop', pull_number: number });
    expect(files.data.map((f) => f.filename)).toEqual(['src/checkout.ts']);

    // The remote is a real git repository: the exact SHA can be fetched.
    const clone = join(dir, 'clone');
    execFileSync('git', ['init', '-q', clone]);
    execFileSync('git', ['-C', clone, 'fetch', '-q', gh.standin.remoteOf('acme/shop'), String(opened.headSha)]);
    expect(execFileSync('git', ['-C', clone, 'rev-parse', 'FETCH_HEAD'], { encoding: 'utf8' }).trim()).toBe(
      opened.headSha,
    );

    // Pushes by another person, reviews spelled lower case in the webhook and upper case in REST.
    const pushed = await control(`/repos/acme/shop/pulls/${number}/commits`, {
      pusher: 'alex-reviewer',
      commits: [{ message: 'fix', author: { name: 'Ghost', email: 'ghost@example.com' } }],
    });
    expect(pushed.before).toBe(opened.headSha);
    const sync = JSON.parse(received.at(-1)!.body) as {
      action: string;
      before: string;
      after: string;
      sender: { login: string };
    };
    expect(sync).toMatchObject({
      action: 'synchronize',
      before: opened.headSha,
      after: pushed.headSha,
      sender: { login: 'alex-reviewer' },
    });
    const review = await control(`/repos/acme/shop/pulls/${number}/reviews`, {
      reviewer: 'alex-reviewer',
      event: 'APPROVE',
      commitId: opened.headSha,
    });
    const reviewHook = JSON.parse(received.at(-1)!.body) as {
      action: string;
      review: { state: string; commit_id: string };
    };
    expect(reviewHook.action).toBe('submitted');
    expect(reviewHook.review).toMatchObject({ state: 'approved', commit_id: opened.headSha });
    const reviews = await octokit.rest.pulls.listReviews({ owner: 'acme', repo: 'shop', pull_number: number });
    expect(reviews.data.map((r) => r.state)).toEqual(['APPROVED']);
    await control(`/repos/acme/shop/pulls/${number}/reviews/${review.reviewId as number}/dismissals`, {
      by: 'sam-dev',
      message: 'stale',
    });
    expect(JSON.parse(received.at(-1)!.body)).toMatchObject({ action: 'dismissed', review: { state: 'dismissed' } });

    // The author cannot approve their own pull request (as on GitHub).
    await expect(
      control(`/repos/acme/shop/pulls/${number}/reviews`, { reviewer: 'sam-dev', event: 'APPROVE' }),
    ).rejects.toThrow(/422/);

    // Merge is guarded by the head SHA.
    await expect(
      octokit.rest.pulls.merge({ owner: 'acme', repo: 'shop', pull_number: number, sha: String(opened.headSha) }),
    ).rejects.toMatchObject({ status: 409 });
    const merged = await octokit.rest.pulls.merge({
      owner: 'acme',
      repo: 'shop',
      pull_number: number,
      sha: String(pushed.headSha),
    });
    expect(merged.data.merged).toBe(true);
    expect(JSON.parse(received.at(-1)!.body)).toMatchObject({ action: 'closed', pull_request: { merged: true } });
  });

  it('holds a delivery for later and redelivers with the same delivery ID', async () => {
    const before = received.length;
    const opened = await control('/repos/acme/shop/pulls', {
      author: 'sam-dev',
      title: 'held',
      commits: [{ message: 'one' }],
      deliver: false,
    });
    expect(opened.status).toBeNull();
    expect(received.length).toBe(before);
    await control(`/deliveries/${opened.deliveryId as string}/send`);
    await control(`/deliveries/${opened.deliveryId as string}/send`);
    expect(received.slice(before).map((r) => r.headers['x-github-delivery'])).toEqual([
      opened.deliveryId,
      opened.deliveryId,
    ]);
  });

  it('injects faults: 429 with Retry-After, 500, and refuses check runs to a personal token', async () => {
    await control('/faults', { path: '^/user$', status: 429, retryAfter: 7 });
    const limited = await fetch(`${gh.url}/user`, { headers: { authorization: `token ${samToken}` } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect((await fetch(`${gh.url}/user`, { headers: { authorization: `token ${samToken}` } })).status).toBe(200);
    await control('/faults', { path: '/pulls/', status: 500, count: 1 });
    expect(
      (await fetch(`${gh.url}/repos/acme/shop/pulls/1`, { headers: { authorization: `token ${samToken}` } })).status,
    ).toBe(500);
    expect((await fetch(`${gh.url}/user`)).status).toBe(401);
    expect((await fetch(`${gh.url}/user`, { headers: { authorization: 'token nope' } })).status).toBe(401);
    const octokit = new Octokit({ auth: samToken, baseUrl: gh.url });
    const sha = gh.standin.requirePull('acme/shop', 1).headSha;
    await expect(
      octokit.rest.checks.create({ owner: 'acme', repo: 'shop', name: 'x', head_sha: sha }),
    ).rejects.toMatchObject({ status: 403 });
  });

  it('authenticates a GitHub App (JWT -> installation token) that may create check runs', async () => {
    const app = await control('/apps', { slug: 'foureyes-test' });
    const octokit = new Octokit({
      baseUrl: gh.url,
      authStrategy: createAppAuth,
      auth: { appId: app.appId, privateKey: app.privateKey, installationId: app.installationId },
    });
    const sha = gh.standin.requirePull('acme/shop', 1).headSha;
    const run = await octokit.rest.checks.create({
      owner: 'acme',
      repo: 'shop',
      name: 'foureyes / checks',
      head_sha: sha,
      status: 'in_progress',
    });
    await octokit.rest.checks.update({ owner: 'acme', repo: 'shop', check_run_id: run.data.id, conclusion: 'success' });
    const list = await octokit.rest.checks.listForRef({ owner: 'acme', repo: 'shop', ref: sha });
    expect(list.data.check_runs).toMatchObject([
      { name: 'foureyes / checks', status: 'completed', conclusion: 'success', app: { slug: 'foureyes-test' } },
    ]);
  });

  it('serves the REST API under /api/v3 as GitHub Enterprise Server does, and marks endpoints it does not know', async () => {
    const octokit = new Octokit({ auth: samToken, baseUrl: `${gh.url}/api/v3` });
    expect((await octokit.rest.users.getAuthenticated()).data.login).toBe('sam-dev');
    const unknown = await fetch(`${gh.url}/api/v3/repos/acme/shop/branches/main/protection`, {
      headers: { authorization: `token ${samToken}` },
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ message: 'Not Found' });
    const missing = await fetch(`${gh.url}/api/v3/repos/acme/shop/pulls/9999`, {
      headers: { authorization: `token ${samToken}` },
    });
    expect(missing.status).toBe(404);
    const record = gh.server.requests.slice(-3).map((r) => [r.method, r.path, r.known, r.status, r.host]);
    expect(record).toEqual([
      ['GET', '/api/v3/user', true, 200, new URL(gh.url).host],
      ['GET', '/api/v3/repos/acme/shop/branches/main/protection', false, 404, new URL(gh.url).host],
      ['GET', '/api/v3/repos/acme/shop/pulls/9999', true, 404, new URL(gh.url).host],
    ]);
  });

  it('filters list endpoints by their query parameters and paginates with Link headers', async () => {
    const app = await control('/apps', { slug: 'foureyes-lists' });
    const octokit = new Octokit({
      baseUrl: `${gh.url}/api/v3`,
      authStrategy: createAppAuth,
      auth: { appId: app.appId, privateKey: app.privateKey, installationId: app.installationId },
    });
    const pull = gh.standin.requirePull('acme/shop', 1);
    const first = pull.headSha;
    const second = (
      await control('/repos/acme/shop/pulls', { author: 'sam-dev', title: 'second', commits: [{ message: 'two' }] })
    ).headSha as string;
    for (const [sha, environment] of [
      [first, 'staging'],
      [first, 'production'],
      [second, 'staging'],
      [first, 'staging'],
    ] as const) {
      await octokit.rest.repos.createDeployment({
        owner: 'acme',
        repo: 'shop',
        ref: sha,
        environment,
        required_contexts: [],
        auto_merge: false,
      });
    }
    const list = await octokit.rest.repos.listDeployments({
      owner: 'acme',
      repo: 'shop',
      sha: first,
      environment: 'staging',
    });
    expect(list.data.map((d) => [d.sha, d.environment])).toEqual([
      [first, 'staging'],
      [first, 'staging'],
    ]);
    const page = await octokit.rest.repos.listDeployments({ owner: 'acme', repo: 'shop', per_page: 3 });
    expect(page.data).toHaveLength(3);
    expect(page.headers.link).toMatch(
      new RegExp(`<${gh.url}/api/v3/repos/acme/shop/deployments\\?per_page=3&page=2>; rel="next"`),
    );
    expect(
      await octokit.paginate(octokit.rest.repos.listDeployments, { owner: 'acme', repo: 'shop', per_page: 1 }),
    ).toHaveLength(4);
  });

  it("refuses a JWT not signed with the App's key, an unsigned one, and installation tokens outside the installation", async () => {
    const app = await control('/apps', { slug: 'foureyes-scoped', repositories: ['acme/shop'] });
    const forged = new Octokit({
      baseUrl: gh.url,
      authStrategy: createAppAuth,
      auth: { appId: app.appId, privateKey: (await control('/apps', { slug: 'forger' })).privateKey },
    });
    await expect(forged.rest.apps.getAuthenticated()).rejects.toMatchObject({ status: 401 });
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: app.appId, iat: now - 30, exp: now + 500 })}.`;
    expect((await fetch(`${gh.url}/app`, { headers: { authorization: `Bearer ${unsigned}` } })).status).toBe(401);
    const appOctokit = new Octokit({
      baseUrl: gh.url,
      authStrategy: createAppAuth,
      auth: { appId: app.appId, privateKey: app.privateKey },
    });
    expect((await appOctokit.rest.apps.getRepoInstallation({ owner: 'acme', repo: 'shop' })).data.id).toBe(
      app.installationId,
    );
    await control('/repos', { fullName: 'acme/other' });
    await expect(appOctokit.rest.apps.getRepoInstallation({ owner: 'acme', repo: 'other' })).rejects.toMatchObject({
      status: 404,
    });
    const installation = new Octokit({
      baseUrl: gh.url,
      authStrategy: createAppAuth,
      auth: { appId: app.appId, privateKey: app.privateKey, installationId: app.installationId },
    });
    expect((await installation.rest.repos.get({ owner: 'acme', repo: 'shop' })).status).toBe(200);
    await expect(installation.rest.repos.get({ owner: 'acme', repo: 'other' })).rejects.toMatchObject({ status: 404 });
    const repos = await installation.rest.apps.listReposAccessibleToInstallation();
    expect(repos.data.repositories.map((r) => r.full_name)).toEqual(['acme/shop']);
  });

  it("creates an App from a manifest: the form redirects with a one-time code that converts once into the App's id, key and secret", async () => {
    const manifest = {
      name: 'foureyes acme',
      url: 'https://example.com',
      hook_attributes: { url: 'https://example.com/webhooks/github' },
      redirect_url: 'http://127.0.0.1:1/callback',
      default_events: ['pull_request'],
      default_permissions: { pull_requests: 'read', metadata: 'read' },
    };
    const post = (m: unknown) =>
      fetch(`${gh.url}/organizations/acme/settings/apps/new?state=s123`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ manifest: JSON.stringify(m) }),
      });
    const res = await post(manifest);
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe('http://127.0.0.1:1/callback');
    expect(location.searchParams.get('state')).toBe('s123');
    const code = location.searchParams.get('code') as string;
    const octokit = new Octokit({ baseUrl: `${gh.url}/api/v3` });
    const created = await octokit.rest.apps.createFromManifest({ code });
    expect(created.data).toMatchObject({
      slug: 'foureyes-acme',
      owner: { login: 'acme' },
      events: ['pull_request'],
      permissions: { pull_requests: 'read', metadata: 'read' },
    });
    expect(created.data.pem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    expect(created.data.webhook_secret).toMatch(/^[0-9a-f]{40}$/);
    await expect(octokit.rest.apps.createFromManifest({ code })).rejects.toMatchObject({ status: 404 });
    // The new App authenticates with its key, but is installed nowhere until someone installs it.
    const app = new Octokit({
      baseUrl: gh.url,
      authStrategy: createAppAuth,
      auth: { appId: created.data.id, privateKey: created.data.pem },
    });
    expect((await app.rest.apps.getAuthenticated()).data?.slug).toBe('foureyes-acme');
    await expect(app.rest.apps.getRepoInstallation({ owner: 'acme', repo: 'shop' })).rejects.toMatchObject({
      status: 404,
    });
    // GitHub refuses a manifest subscribing to an event its permissions do not allow.
    const bad = await post({ ...manifest, default_events: ['check_run'] });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { message: string }).message).toBe(
      'Invalid GitHub App manifest: Default events unsupported: check_run (needs the checks permission)',
    );
  });
});
