// Reading a change needs an identity: GET /api/changes/…, …/audit and /api/environments… answer only a bearer
// token whose owner can read the repository at GitHub (the stand-in over real HTTP; acme/shop is private
// there, so a stranger's token cannot see it, as on GitHub) or an operator token of the gateway. The real
// changeWorkflow runs on the Temporal dev server; the gateway's output is captured to show no token leaks.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as environmentsCli } from '../../src/cli/environments.ts';
import { OPERATOR_TOKENS_ENV, ReadAccess } from '../../src/gateway/read-access.ts';
import type { ChangeStatus } from '../../src/shared/types.ts';
import { pullRequestSignal, statusQuery } from '../../src/workflows/definitions.ts';
import { pullRequestEvent, startGatewayStack, threePeopleConfig, type GatewayStack } from '../helpers/gateway-stack.ts';

const OPERATOR = randomBytes(32).toString('hex');
const REFUSED = `ghp_${randomBytes(18).toString('hex')}`; // a token GitHub never issued
let stack: GatewayStack;
let number: number;
let head: string;
const output: string[] = [];
const restore: Array<() => void> = [];

beforeAll(async () => {
  // Everything this process writes (the gateway runs in it), to scan for token values.
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      output.push(String(chunk));
      return write(chunk, ...rest);
    }) as typeof stream.write;
    restore.push(() => (stream.write = write));
  }
  stack = await startGatewayStack({
    name: 'read-identity',
    configYaml: (remote) => threePeopleConfig(remote),
    users: ['sam-dev', 'alex-reviewer', 'jo-platform', 'foureyes-bot', 'stranger'],
    privateRepo: true,
    gatewayEnv: () => ({ [OPERATOR_TOKENS_ENV]: OPERATOR }),
    orchestratorEnv: (s) => ({ GITHUB_TOKEN: s.tokens['foureyes-bot'] }),
  });
  const { standin } = stack.github;
  standin.setCollaborator('acme/shop', 'sam-dev', 'write');
  standin.setCollaborator('acme/shop', 'alex-reviewer', 'read');
  standin.setCollaborator('acme/shop', 'foureyes-bot', 'write');
  const { pull } = await standin.openPullRequest({
    repo: 'acme/shop',
    author: 'sam-dev',
    title: 'Speed up checkout',
    commits: [{ message: 'faster checkout', author: 'sam-dev' }],
    deliver: false,
  });
  ({ number, headSha: head } = pull);
  const change = `acme/shop#${number}`;
  const handle = await stack.client.workflow.signalWithStart('changeWorkflow', {
    workflowId: `change:${change}`,
    taskQueue: stack.taskQueue,
    args: [{ change }],
    signal: pullRequestSignal,
    signalArgs: [stack.signed(change, pullRequestEvent(stack.github, number, 'opened'))],
  });
  stack.track(handle);
  const deadline = Date.now() + 30_000;
  while ((await handle.query(statusQuery).catch(() => undefined))?.stage !== 'awaiting-approval') {
    if (Date.now() > deadline) throw new Error('the change never reached awaiting-approval');
    await new Promise((r) => setTimeout(r, 150));
  }
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  for (const r of restore) r();
});

const endpoints = () => ({
  status: `/api/changes/acme/shop/${number}`,
  audit: `/api/changes/acme/shop/${number}/audit`,
  environments: '/api/environments/acme/shop',
  'all environments': '/api/environments',
});
const bodies: string[] = [];

async function get(path: string, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${stack.gatewayUrl}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const text = await res.text();
  bodies.push(text);
  return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
}

describe('reading a change needs an identity', () => {
  it('401 without a token and with a token GitHub refuses, each with what to send', async () => {
    for (const [name, path] of Object.entries(endpoints())) {
      const none = await get(path);
      expect([name, none.status, none.json.error]).toEqual([
        name,
        401,
        expect.stringContaining('send `Authorization: Bearer <token>`'),
      ]);
      const refused = await get(path, REFUSED);
      expect([name, refused.status, refused.json.error]).toEqual([
        name,
        401,
        expect.stringContaining('GitHub did not accept the bearer token'),
      ]);
    }
  });

  it('403 for a valid token of someone who cannot read the repository', async () => {
    for (const [name, path] of Object.entries(endpoints())) {
      const answer = await get(path, stack.tokens.stranger);
      expect([name, answer.status]).toEqual([name, 403]);
      expect(answer.json.error).toMatch(/cannot read (acme\/shop|any repository foureyes delivers)/);
    }
  });

  it('200 for a reader of the repository and for an operator token', async () => {
    for (const token of [stack.tokens['alex-reviewer'] as string, OPERATOR]) {
      const status = await get(endpoints().status, token);
      expect([status.status, (status.json as unknown as ChangeStatus).headSha]).toEqual([200, head]);
      const audit = await get(endpoints().audit, token);
      expect([audit.status, audit.json.change]).toEqual([200, `acme/shop#${number}`]);
      for (const path of [endpoints().environments, endpoints()['all environments']]) {
        const envs = await get(path, token);
        expect(envs.status).toBe(200);
        expect((envs.json.environments as Array<{ repo: string }>).map((e) => e.repo)).toEqual([
          'acme/shop',
          'acme/shop',
        ]);
      }
    }
  });

  it('asks GitHub once per token and repository for a while, not on every read', async () => {
    const token = stack.tokens['sam-dev'] as string;
    const asked = () =>
      stack.github.server.requests.filter((r) => r.method === 'GET' && r.path === '/repos/acme/shop').length;
    const before = asked();
    for (let i = 0; i < 3; i++) expect((await get(endpoints().status, token)).status).toBe(200);
    expect(asked() - before).toBe(1);
  });

  it('a bad request is a 400 that costs no GitHub call', async () => {
    const before = stack.github.server.requests.length;
    const answer = await get(`/api/changes/acme/shop/${number}/audit?format=pdf`, stack.tokens.stranger);
    expect([answer.status, answer.json.error]).toEqual([400, 'format: expected json or md, found "pdf"']);
    expect(stack.github.server.requests.length).toBe(before);
  });

  it('foureyes environments sends the token it has and says what to set when refused', async () => {
    const saved = {
      GITHUB_TOKEN: process.env.GITHUB_TOKEN,
      FOUREYES_GATEWAY_TOKEN: process.env.FOUREYES_GATEWAY_TOKEN,
      FOUREYES_DATA: process.env.FOUREYES_DATA,
    };
    try {
      delete process.env.FOUREYES_GATEWAY_TOKEN;
      process.env.FOUREYES_DATA = stack.dataDir; // no local `foureyes up` operator token there
      process.env.GITHUB_TOKEN = stack.tokens.stranger;
      await expect(environmentsCli(['acme/shop', '--gateway', stack.gatewayUrl])).rejects.toThrow(
        /cannot read acme\/shop.*Ask for read access to the repository on GitHub, or set FOUREYES_GATEWAY_TOKEN/,
      );
      process.env.GITHUB_TOKEN = REFUSED;
      await expect(environmentsCli(['acme/shop', '--gateway', stack.gatewayUrl])).rejects.toThrow(
        /did not accept your token.*Set GITHUB_TOKEN to a valid token of your own/,
      );
      process.env.GITHUB_TOKEN = stack.tokens['alex-reviewer'];
      expect(await environmentsCli(['acme/shop', '--gateway', stack.gatewayUrl])).toBe(0);
      process.env.GITHUB_TOKEN = REFUSED;
      process.env.FOUREYES_GATEWAY_TOKEN = OPERATOR;
      expect(await environmentsCli(['acme/shop', '--gateway', stack.gatewayUrl, '--json'])).toBe(0);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('no token value appears in an answer or in the output', () => {
    const secrets = [OPERATOR, REFUSED, ...Object.values(stack.tokens)];
    const text = [...bodies, ...output].join('\n');
    expect(bodies.length).toBeGreaterThan(20);
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('an operator token too short to be safe is refused by name, without its value', () => {
    const short = 'operator-token-short';
    expect(() => new ReadAccess().operatorDigests({ [OPERATOR_TOKENS_ENV]: `${OPERATOR},${short}` })).toThrow(
      `${OPERATOR_TOKENS_ENV}: operator token 2 has ${short.length} characters; use at least 32`,
    );
    try {
      new ReadAccess().operatorDigests({ [OPERATOR_TOKENS_ENV]: short });
    } catch (error) {
      expect((error as Error).message).not.toContain(short);
    }
  });
});
