// A real gateway for hostile-input tests: in this process on a real port, with the shared Temporal dev server
// from globalSetup and the GitHub stand-in for tokens and pull request look-ups. No workers: nothing hostile
// may start a workflow, and the tests check that through the Temporal client.
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { FoureyesConfig } from '../../src/config/schema.ts';
import { createGateway } from '../../src/gateway/app.ts';
import { GitHubStandin, startGitHubStandin, type RunningStandin } from '../../src/dev/github-standin/index.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import { signedSlackHeaders } from '../../src/dev/slack-standin/sign.ts';
import { testClient, uniquePullNumberBase, uniqueQueue } from '../helpers/temporal.ts';

export interface HostileGateway {
  url: string;
  client: Client;
  config: FoureyesConfig;
  /** The one configured repository, `hostile-xxxxxxxx/shop`: unique per file so a started workflow is ours. */
  repo: string;
  /** Pull requests of the stand-in repository start here (a range of our own in the shared namespace). */
  pullBase: number;
  webhookSecret: string;
  slackSecret: string;
  /** A real stand-in token of a configured person (alex-reviewer). */
  token: string;
  github: RunningStandin;
  unhandled: unknown[];
  stop(): Promise<void>;
}

export interface Answer {
  status: number;
  text: string;
  json: Record<string, unknown> | undefined;
}

export async function startHostileGateway(name: string): Promise<HostileGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), `foureyes-hostile-${name}-`));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const github = await startGitHubStandin({ dataDir: join(dataDir, 'github') });
  const owner = `hostile-${randomUUID().slice(0, 8)}`;
  const repo = `${owner}/shop`;
  const pullBase = uniquePullNumberBase();
  let token = '';
  for (const login of ['sam-dev', 'alex-reviewer']) {
    const added = github.standin.addUser({ login, email: `${login}@example.com` });
    if (login === 'alex-reviewer') token = added.token;
  }
  github.standin.createRepo({ fullName: repo, firstPullNumber: pullBase, files: { 'README.md': 'shop\n' } });
  const app = github.standin.addApp({ slug: 'foureyes' });
  const config = parseConfig(
    `
people:
  - { github: sam-dev, slack: U0SAM }
  - { github: alex-reviewer, slack: U0ALEX }
environments:
  - name: staging
    deploy: { run: "true", timeout: 60s }
    approval: { required: 1, expiry: 1h }
repositories:
  - name: ${repo}
    remote: ${JSON.stringify(github.standin.remoteOf(repo))}
    checks: [{ name: unit, run: "true", timeout: 60s }]
`,
    'hostile.yaml',
  );
  const webhookSecret = randomBytes(20).toString('hex');
  const slackSecret = randomBytes(16).toString('hex');
  const client = await testClient();
  const env: NodeJS.ProcessEnv = {
    FOUREYES_APPROVAL_SIGNING_KEY: generateSigningKey().privateKey,
    GITHUB_WEBHOOK_SECRET: webhookSecret,
    SLACK_SIGNING_SECRET: slackSecret,
    // A queue no worker polls: if anything did start, it would sit there for the tests to find.
    FOUREYES_TASK_QUEUE: uniqueQueue('hostile'),
    GITHUB_API_URL: github.url,
    GITHUB_APP_ID: String(app.appId),
    GITHUB_PRIVATE_KEY: app.privateKey,
  };
  const server: Server = createGateway({ client, config: () => config, env });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    client,
    config,
    repo,
    pullBase,
    webhookSecret,
    slackSecret,
    token,
    github,
    unhandled,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await client.connection.close();
      await github.stop();
      process.off('unhandledRejection', onUnhandled);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function request(url: string, init: RequestInit): Promise<Answer> {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

/** A refusal a person can act on: a 4xx with a non-empty reason in `error`. */
export function expectRefusal(answer: Answer, statuses?: number[]): void {
  const detail = `${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status, detail).toBeGreaterThanOrEqual(400);
  expect(answer.status, detail).toBeLessThan(500);
  if (statuses) expect(statuses, detail).toContain(answer.status);
  expect(typeof answer.json?.error, detail).toBe('string');
  expect(String(answer.json?.error).trim().length, detail).toBeGreaterThan(0);
}

export async function expectHealthy(gw: HostileGateway): Promise<void> {
  const res = await fetch(`${gw.url}/healthz`);
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

/** No change workflow exists for any pull request of the hostile repository (by ID and by search attribute). */
export async function expectNothingStarted(gw: HostileGateway, numbers: number[] = []): Promise<void> {
  for (const n of new Set([gw.pullBase, gw.pullBase + 1, ...numbers])) {
    await expect(gw.client.workflow.getHandle(`change:${gw.repo}#${n}`).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  }
  const started: string[] = [];
  for await (const wf of gw.client.workflow.list({ query: `FoureyesRepo = '${gw.repo}'` })) started.push(wf.workflowId);
  expect(started).toEqual([]);
  expect(gw.unhandled).toEqual([]);
}

export function githubHeaders(
  gw: HostileGateway,
  body: string | Buffer,
  event = 'pull_request',
  delivery: string = randomUUID(),
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-hub-signature-256': GitHubStandin.sign(body.toString(), gw.webhookSecret),
  };
}

export function slackHeaders(gw: HostileGateway, body: string): Record<string, string> {
  return signedSlackHeaders(gw.slackSecret, body);
}

/** Sends bytes as they are, for request lines and headers fetch() would refuse to send. */
export async function rawHttp(gw: HostileGateway, bytes: string | Buffer, timeoutMs = 5000): Promise<string> {
  const { port } = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(out);
    }, timeoutMs);
    socket.on('data', (chunk) => {
      out += chunk.toString('latin1');
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      // A reset after the answer is the server closing a bad connection; only no answer at all is a failure.
      if (out) resolve(out);
      else reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.write(bytes);
  });
}

/** A valid `pull_request` payload for the hostile repository, to mutate. */
export function pullRequestBody(
  gw: HostileGateway,
  overrides: {
    number?: unknown;
    fullName?: unknown;
    title?: unknown;
    headRef?: unknown;
    sha?: unknown;
    action?: unknown;
  } = {},
): Record<string, unknown> {
  const [owner, name] = gw.repo.split('/') as [string, string];
  const number = 'number' in overrides ? overrides.number : gw.pullBase;
  return {
    action: 'action' in overrides ? overrides.action : 'opened',
    number,
    pull_request: {
      number,
      title: 'title' in overrides ? overrides.title : 'Hostile',
      state: 'open',
      user: { login: 'sam-dev' },
      updated_at: new Date().toISOString(),
      merged: false,
      head: {
        ref: 'headRef' in overrides ? overrides.headRef : 'feature',
        sha: 'sha' in overrides ? overrides.sha : 'a'.repeat(40),
      },
      base: { ref: 'main' },
    },
    repository: { full_name: 'fullName' in overrides ? overrides.fullName : gw.repo, name, owner: { login: owner } },
    sender: { login: 'sam-dev' },
  };
}
