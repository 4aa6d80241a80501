// POST /api/rollbacks and GET /api/rollbacks/{id}, and `foureyes rollback`, over real HTTP: the gateway (in this
// process, on a real port) authenticates the person with their GitHub token at the GitHub stand-in (its own
// process, acme/shop private there) and starts rollbackWorkflow on the Temporal dev server. The workflow is
// not in this file's reach and no worker polls its queue: what the gateway did is read back from Temporal
// itself (the execution, its first event's signed input), which is what the workflow will be given.
import { defaultPayloadConverter, type Client } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { createGateway } from '../../src/gateway/app.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import { rollbackSigner, type RollbackStatus, type RollbackWorkflowInput } from '../../src/shared/rollback.ts';
import { startStandinProcess, type StandinProcess } from '../helpers/github-standin-process.ts';
import { threePeopleConfig } from '../helpers/gateway-stack.ts';
import { testClient, uniqueQueue } from '../helpers/temporal.ts';

const OPERATOR = randomBytes(32).toString('hex');
const key = generateSigningKey();
const taskQueue = uniqueQueue('rollbacks');
let dataDir: string;
let github: StandinProcess;
let client: Client;
let server: Server;
let gatewayUrl: string;
const tokens: Record<string, string> = {};
const started: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'foureyes-rollbacks-'));
  github = await startStandinProcess(join(dataDir, 'github'));
  for (const login of ['jo-platform', 'sam-dev', 'stranger']) {
    const user = await github.control<{ token: string }>('POST', '/users', { login });
    tokens[login] = user.token;
  }
  const repo = await github.control<{ remote: string }>('POST', '/repos', { fullName: 'acme/shop', private: true });
  for (const login of ['jo-platform', 'sam-dev'])
    await github.control('PUT', `/repos/acme/shop/collaborators/${login}`, { permission: 'write' });
  const config = parseConfig(threePeopleConfig(repo.remote), 'test.yaml');
  client = await testClient();
  server = createGateway({
    client,
    config: () => config,
    env: {
      FOUREYES_APPROVAL_SIGNING_KEY: key.privateKey,
      GITHUB_API_URL: github.url,
      FOUREYES_TASK_QUEUE: taskQueue,
      FOUREYES_OPERATOR_TOKENS: OPERATOR,
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  gatewayUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await Promise.all(
    started.map((id) =>
      client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined),
    ),
  );
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server?.closeAllConnections();
  await client?.connection.close();
  await github?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function post(
  body: unknown,
  token: string | undefined,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${gatewayUrl}/api/rollbacks`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-foureyes-client': 'cli',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status === 202) started.push(String(json.rollback));
  return { status: res.status, json };
}

async function get(path: string, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${gatewayUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Rollback workflows this file's runs started on its queue (the visibility store lags a little). */
async function rollbacksOnQueue(): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) ids.push(w.workflowId);
  return ids;
}

function runCli(args: string[], token: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/foureyes.js', 'rollback', ...args, '--gateway', gatewayUrl],
      {
        cwd: join(import.meta.dirname, '..', '..'),
        env: { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_TOKEN: token },
        timeout: 60_000,
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('POST /api/rollbacks', () => {
  it('starts rollbackWorkflow on the orchestrator queue with a request signed by the gateway for the token owner', async () => {
    const to = 'abc1234def';
    const answer = await post(
      { repo: 'acme/shop', environment: 'production', to, reason: 'checkout 500s since 14:02' },
      tokens['jo-platform'],
    );
    expect(answer.status).toBe(202);
    const id = String(answer.json.rollback);
    expect(id).toMatch(/^rollback:acme\/shop@production:[0-9a-f-]{36}$/);
    expect(answer.json.status).toBe(`/api/rollbacks/${encodeURIComponent(id)}`);

    const handle = client.workflow.getHandle(id);
    const described = await handle.describe();
    expect([described.type, described.taskQueue, described.status.name]).toEqual([
      'rollbackWorkflow',
      taskQueue,
      'RUNNING',
    ]);
    const history = await handle.fetchHistory();
    const first = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const input = defaultPayloadConverter.fromPayload(first?.input?.payloads?.[0] ?? {}) as RollbackWorkflowInput;
    expect(first?.input?.payloads).toHaveLength(1);
    expect(Object.keys(input)).toEqual(['request']);
    const { claim } = input.request;
    expect(claim).toMatchObject({
      v: 1,
      kind: 'rollback',
      repo: 'acme/shop',
      environment: 'production',
      person: 'jo-platform',
      channel: 'cli',
      evidence: { tokenLogin: 'jo-platform' },
      to,
      reason: 'checkout 500s since 14:02',
    });
    expect(id).toBe(`rollback:acme/shop@production:${claim.nonce}`);
    expect(Math.abs(Date.parse(claim.at) - Date.now())).toBeLessThan(60_000);
    expect(rollbackSigner(input.request, [key.publicKey])).toBe(key.publicKey);
    // The signature covers what was asked: another target under the same signature is not the gateway's.
    expect(rollbackSigner({ ...input.request, claim: { ...claim, to: '0000000' } }, [key.publicKey])).toBeUndefined();

    // Without `to`: the claim names no target, the workflow picks the release before the running one.
    const previous = await post({ repo: 'acme/shop', environment: 'staging', reason: 'bad config' }, tokens['sam-dev']);
    expect(previous.status).toBe(202);
    const other = await client.workflow.getHandle(String(previous.json.rollback)).fetchHistory();
    const otherInput = defaultPayloadConverter.fromPayload(
      other.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0] ?? {},
    ) as RollbackWorkflowInput;
    // The gateway decides nothing: a developer's request is signed as well, for the workflow to judge.
    expect(otherInput.request.claim).toMatchObject({ person: 'sam-dev', environment: 'staging' });
    expect(otherInput.request.claim.to).toBeUndefined();
    expect(otherInput.request.claim.nonce).not.toBe(claim.nonce);
  });

  it('a missing or refused token is a 401 with a reason, and starts nothing', async () => {
    const before = await rollbacksOnQueue();
    const body = { repo: 'acme/shop', environment: 'production', reason: 'forged' };
    const none = await post(body, undefined);
    expect([none.status, none.json.error]).toEqual([401, expect.stringContaining('missing GitHub token')]);
    const forged = await post(body, `ghp_${randomBytes(18).toString('hex')}`);
    expect([forged.status, forged.json.error]).toEqual([401, expect.stringContaining('GitHub did not accept')]);
    await new Promise((r) => setTimeout(r, 1500)); // visibility catches up with any start
    expect(await rollbacksOnQueue()).toEqual(before);
  });

  it('bad fields are a 4xx naming the field, and start nothing', async () => {
    const before = await rollbacksOnQueue();
    const jo = tokens['jo-platform'];
    const cases: Array<[unknown, number, string]> = [
      [{ repo: 'acme/nope', environment: 'production', reason: 'x' }, 404, 'repo'],
      [{ repo: 'acme/shop', environment: 'qa', reason: 'x' }, 400, 'environment'],
      [{ repo: 'acme/shop', environment: 'production' }, 400, 'reason'],
      [{ repo: 'acme/shop', environment: 'production', reason: '   ' }, 400, 'reason'],
      [{ repo: 'acme/shop', environment: 'production', reason: 'x', to: 'abc12' }, 400, 'to'],
      [{ repo: 'acme/shop', environment: 'production', reason: 'x', to: 'zzzzzzzz' }, 400, 'to'],
      [{ repo: 'acme/shop', environment: 'production', reason: 'x', person: 'alex-reviewer' }, 400, '(body)'],
    ];
    for (const [body, status, field] of cases) {
      const answer = await post(body, jo);
      expect([answer.status, answer.json.field], JSON.stringify(body)).toEqual([status, field]);
      expect(answer.json.error, JSON.stringify(body)).toContain(field === '(body)' ? 'person' : field);
    }
    const notJson = await post('{"repo":', jo);
    expect([notJson.status, notJson.json.error]).toEqual([400, expect.stringContaining('not valid JSON')]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await rollbacksOnQueue()).toEqual(before);
  });
});

describe('GET /api/rollbacks/{id}', () => {
  it('answers what Temporal knows while no worker answers the status query, to readers of the repository only', async () => {
    const asked = await post(
      { repo: 'acme/shop', environment: 'production', reason: 'read me' },
      tokens['jo-platform'],
    );
    const path = String(asked.json.status);
    const id = String(asked.json.rollback);
    const view = await get(path, tokens['sam-dev']);
    expect(view.status).toBe(200);
    expect(view.json).toMatchObject({
      kind: 'rollback',
      rollback: id,
      repo: 'acme/shop',
      environment: 'production',
      status: 'RUNNING',
      stage: 'checking',
      summary: 'starting',
    } satisfies Partial<RollbackStatus> & { status: string });
    expect((await get(path, OPERATOR)).json.stage).toBe('checking');

    // The same rule as GET /api/changes: no token 401, a token that cannot read the private repository 403.
    const anonymous = await get(path);
    expect([anonymous.status, anonymous.json.error]).toEqual([401, expect.stringContaining('missing GitHub token')]);
    const stranger = await get(path, tokens.stranger);
    expect([stranger.status, stranger.json.error]).toEqual([403, expect.stringContaining('cannot read acme/shop')]);
    expect(JSON.stringify(stranger.json)).not.toContain('read me');

    // Ended without a status (terminated by an operator): a failed stage that says so.
    await client.workflow.getHandle(id).terminate('operator stopped it');
    const ended = await get(path, OPERATOR);
    expect([ended.status, ended.json.status, ended.json.stage]).toEqual([200, 'TERMINATED', 'failed']);
    expect(ended.json.summary).toContain('TERMINATED');
  });

  it('an unknown or malformed rollback ID is a 404 with a reason', async () => {
    const unknown = `rollback:acme/shop@production:${randomBytes(8).toString('hex')}`;
    const missing = await get(`/api/rollbacks/${encodeURIComponent(unknown)}`, OPERATOR);
    expect([missing.status, missing.json.error]).toEqual([404, `no rollback ${unknown}`]);
    const malformed = await get(`/api/rollbacks/${encodeURIComponent('change:acme/shop#1')}`, OPERATOR);
    expect([malformed.status, malformed.json.error]).toEqual([404, expect.stringContaining('expected an ID such as')]);
  });
});

describe('foureyes rollback', () => {
  it('without --reason: a usage message naming --reason, exit 2, nothing sent', async () => {
    const before = await rollbacksOnQueue();
    const result = await runCli(['acme/shop', 'production', '--to', 'abc1234'], tokens['jo-platform'] as string);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--reason is required');
    expect(result.stderr).toContain('usage: foureyes rollback');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await rollbacksOnQueue()).toEqual(before);
  });

  it('asks, follows the rollback while it starts, and ends with exit 1 and the summary when it fails', async () => {
    const cli = runCli(
      ['acme/shop', 'production', '--reason', 'checkout 500s', '--timeout', '50s'],
      tokens['jo-platform'] as string,
    );
    // An operator ends the run the CLI follows: it reports the failure and exits 1.
    const deadline = Date.now() + 30_000;
    let id: string | undefined;
    while (!id && Date.now() < deadline) {
      id = (await rollbacksOnQueue()).find((w) => !started.includes(w));
      if (!id) await new Promise((r) => setTimeout(r, 300));
    }
    expect(id).toBeDefined();
    started.push(id as string);
    await new Promise((r) => setTimeout(r, 1200)); // let the CLI print the starting stage
    await client.workflow.getHandle(id as string).terminate('operator stopped it');
    const result = await cli;
    expect(result.stdout).toContain(`rollback of acme/shop @ production asked (${id})`);
    expect(result.stdout).toMatch(/checking +starting/);
    expect(result.stdout).toMatch(/rollback FAILED: the rollback workflow ended \(TERMINATED\)/);
    expect(result.code).toBe(1);
    const input = defaultPayloadConverter.fromPayload(
      (await client.workflow.getHandle(id as string).fetchHistory()).events?.[0]
        ?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0] ?? {},
    ) as RollbackWorkflowInput;
    expect(input.request.claim).toMatchObject({ person: 'jo-platform', channel: 'cli', reason: 'checkout 500s' });
  });

  it('a refused token: exit 1 with what to do next', async () => {
    const result = await runCli(['acme/shop', 'production', '--reason', 'x'], `ghp_${randomBytes(18).toString('hex')}`);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('the gateway did not accept your GitHub token');
    expect(result.stderr).toContain('gh auth status');
  });
});
