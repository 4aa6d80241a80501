// GET /api/environments/… and `foureyes environments`: per environment the release running now, the lane's
// queue and the last releases, read from the lanes a real change delivered through (Temporal dev server).
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as environmentsCli } from '../../src/cli/environments.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createGateway } from '../../src/gateway/app.ts';
import type { EnvironmentView } from '../../src/gateway/routes/environments.ts';
import {
  approve,
  claim,
  CONFIG,
  newChange,
  opened,
  openChange,
  sha,
  startStack,
  waitForStatus,
  type Stack,
} from '../workflows/harness.ts';

// The read endpoints need an identity (read-identity.test.ts covers GitHub tokens); here the operator's.
const OPERATOR = 'environments-operator-token-0123456789abcdef';
const headers = { authorization: `Bearer ${OPERATOR}` };
const savedGatewayToken = process.env.FOUREYES_GATEWAY_TOKEN;
let stack: Stack;
let server: ReturnType<typeof createGateway>;
let base: string;
const change = newChange();
const head = sha();

beforeAll(async () => {
  stack = await startStack();
  server = createGateway({
    client: stack.client,
    config: () => parseConfig(CONFIG, 'test.yaml'),
    env: { FOUREYES_TASK_QUEUE: stack.taskQueue, FOUREYES_OPERATOR_TOKENS: OPERATOR },
  });
  process.env.FOUREYES_GATEWAY_TOKEN = OPERATOR; // what `foureyes environments` sends
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const handle = await openChange(stack, change, opened(head));
  await waitForStatus(handle, (s) => s.stage === 'awaiting-approval');
  await approve(stack, handle, claim(change, head, 'alex-reviewer'));
  await waitForStatus(handle, (s) => s.stage === 'delivered', 40_000);
}, 60_000);
afterAll(async () => {
  if (savedGatewayToken === undefined) delete process.env.FOUREYES_GATEWAY_TOKEN;
  else process.env.FOUREYES_GATEWAY_TOKEN = savedGatewayToken;
  await new Promise((resolve) => server?.close(resolve));
  await stack?.stop();
});

describe('environments', () => {
  it('GET /api/environments/acme/shop: what runs in staging and production, approved by whom, and the last releases', async () => {
    const res = await fetch(`${base}/api/environments/acme/shop`, { headers });
    expect(res.status).toBe(200);
    const { environments } = (await res.json()) as { environments: EnvironmentView[] };
    expect(
      environments.map((e) => [e.environment, e.running?.sha, e.running?.change, e.running?.approvers, e.queue.length]),
    ).toEqual([
      ['staging', head, change, ['alex-reviewer'], 0],
      ['production', head, change, ['alex-reviewer'], 0],
    ]);
    expect(environments[1]?.releases[0]).toMatchObject({ sha: head, outcome: 'deployed', endedAt: expect.any(String) });
    // A repository nothing was delivered to yet: its environments, with nothing running.
    const all = (await (await fetch(`${base}/api/environments`, { headers })).json()) as {
      environments: EnvironmentView[];
    };
    expect(all.environments.find((e) => e.repo === 'acme/dual')).toMatchObject({
      environment: 'dual',
      queue: [],
      releases: [],
    });
    expect(all.environments.find((e) => e.repo === 'acme/dual')?.running).toBeUndefined();
  });

  it('bad input is a 4xx that says why', async () => {
    const unknown = await fetch(`${base}/api/environments/acme/nope`, { headers });
    expect([unknown.status, ((await unknown.json()) as { error: string }).error]).toEqual([
      404,
      'repository acme/nope is not configured in foureyes.yaml',
    ]);
    const env = await fetch(`${base}/api/environments/acme/shop/qa`, { headers });
    expect([env.status, ((await env.json()) as { error: string }).error]).toEqual([
      404,
      'acme/shop has no environment qa (it has staging, production)',
    ]);
    const last = await fetch(`${base}/api/environments/acme/shop?last=0`, { headers });
    expect([last.status, ((await last.json()) as { error: string }).error]).toEqual([
      400,
      'last: expected a whole number from 1 to 200, found "0"',
    ]);
  });

  it('foureyes environments acme/shop prints the running release, its approvers and the history', async () => {
    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void out.push(line));
    try {
      expect(await environmentsCli(['acme/shop', '--env', 'production', '--gateway', base])).toBe(0);
    } finally {
      log.mockRestore();
    }
    const text = out.join('\n');
    expect(text).toContain('acme/shop @ production');
    expect(text).toMatch(
      new RegExp(`running +${head.slice(0, 12)}  ${change.replace('#', '#')}  approved by alex-reviewer  deployed `),
    );
    expect(text).toContain(`${head.slice(0, 12)}  ${change}  deployed (approved by alex-reviewer)`);
    await expect(environmentsCli(['acme', '--gateway', base])).rejects.toThrow(
      'invalid repository "acme": expected owner/repo',
    );
  });
});
