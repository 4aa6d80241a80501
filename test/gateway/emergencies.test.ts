// POST /api/changes/{owner}/{repo}/{number}/emergency and `foureyes emergency`, end to end over real HTTP: the
// gateway (in this process, on a real port) authenticates the person with their GitHub token at the GitHub
// stand-in and signs the declaration; the real changeWorkflow (bundled, on the shared Temporal dev server)
// decides it. jo-platform may declare (emergency.allowed); sam-dev, who opens every change, may not.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../../src/gateway/app.ts';
import type { EmergencyOutcome } from '../../src/shared/emergency.ts';
import { statusQuery } from '../../src/workflows/definitions.ts';
import {
  openTrackedChange,
  runFoureyesCli,
  startGatewayStack,
  threePeopleConfig,
  type GatewayStack,
} from '../helpers/gateway-stack.ts';

let stack: GatewayStack;
/** The same stack's gateway with break-glass disabled (nobody under emergency.allowed). */
let disabledUrl: string;

beforeAll(async () => {
  stack = await startGatewayStack({
    name: 'emergencies',
    configYaml: (remote) => `${threePeopleConfig(remote)}emergency:\n  allowed: [jo-platform]\n  window: 1h\n`,
    users: ['sam-dev', 'alex-reviewer', 'jo-platform', 'foureyes-bot'],
    orchestratorEnv: (s) => ({ GITHUB_TOKEN: s.tokens['foureyes-bot'] }),
  });
  const disabled: Server = createGateway({
    client: stack.client,
    config: () => ({ ...stack.config, emergency: { ...stack.config.emergency, allowed: [] } }),
    env: stack.gatewayEnv,
  });
  await new Promise<void>((resolve) => disabled.listen(0, '127.0.0.1', resolve));
  stack.onStop(async () => {
    await new Promise<void>((resolve) => disabled.close(() => resolve()));
    disabled.closeAllConnections();
  });
  disabledUrl = `http://127.0.0.1:${(disabled.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

async function declare(
  number: number,
  token: string | undefined,
  body: unknown,
  options: { cli?: boolean; gateway?: string; repo?: string } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(
    `${options.gateway ?? stack.gatewayUrl}/api/changes/${options.repo ?? 'acme/shop'}/${number}/emergency`,
    {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.cli ? { 'x-foureyes-client': 'cli' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    },
  );
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('POST /api/changes/{owner}/{repo}/{number}/emergency: refused before any workflow is asked', () => {
  it('without a token: 401; with a token GitHub refuses: 401', async () => {
    const none = await declare(1, undefined, { reason: 'checkout down' });
    expect([none.status, none.json.error]).toEqual([401, expect.stringContaining('missing GitHub token')]);
    const forged = await declare(1, `ghp_${randomBytes(18).toString('hex')}`, { reason: 'checkout down' });
    expect([forged.status, forged.json.error]).toEqual([401, expect.stringContaining('GitHub did not accept')]);
  });

  it('bad fields are a 400 naming the field', async () => {
    const jo = stack.tokens['jo-platform'];
    const cases: Array<[unknown, string, string]> = [
      [{}, 'reason', 'missing field reason: say why'],
      [{ reason: '   ' }, 'reason', 'invalid field reason: say why'],
      [{ reason: 'x'.repeat(2001) }, 'reason', 'at most 2000 characters'],
      [{ reason: 'x', sha: 'abc1234' }, 'sha', 'invalid field sha: expected the full 40-character head SHA'],
      [
        { reason: 'x', environments: ['qa'] },
        'environments',
        'invalid field environments: acme/shop has no environment qa',
      ],
      [{ reason: 'x', environments: [] }, 'environments', 'name at least one environment'],
      [{ reason: 'x', environments: 'production' }, 'environments', 'expected a list of environment names'],
      [
        { reason: 'x', person: 'jo-platform' },
        '(body)',
        'unknown field(s) person; who declares is taken from the token',
      ],
    ];
    for (const [body, field, error] of cases) {
      const answer = await declare(1, jo, body);
      expect([answer.status, answer.json.field], JSON.stringify(body)).toEqual([400, field]);
      expect(answer.json.error, JSON.stringify(body)).toContain(error);
    }
    const notJson = await declare(1, jo, '{"reason":');
    expect([notJson.status, notJson.json.error]).toEqual([400, expect.stringContaining('not valid JSON')]);
  });

  it('403 with the reason for a person not under emergency.allowed, and for everyone when break-glass is disabled', async () => {
    const sam = await declare(1, stack.tokens['sam-dev'], { reason: 'my own change, quickly' });
    expect([sam.status, sam.json.error]).toEqual([
      403,
      'sam-dev may not declare an emergency (emergency.allowed: jo-platform)',
    ]);
    const off = await declare(1, stack.tokens['jo-platform'], { reason: 'checkout down' }, { gateway: disabledUrl });
    expect([off.status, off.json.error]).toEqual([
      403,
      'break-glass is disabled for acme/shop: nobody is listed under emergency.allowed in foureyes.yaml',
    ]);
  });

  it('404 for a change foureyes does not have, and for a repository it does not know', async () => {
    const unknown = await declare(999_999_999, stack.tokens['jo-platform'], { reason: 'checkout down' });
    expect([unknown.status, unknown.json.error]).toEqual([
      404,
      expect.stringContaining('no change acme/shop#999999999'),
    ]);
    const withSha = await declare(999_999_999, stack.tokens['jo-platform'], { reason: 'x', sha: 'a'.repeat(40) });
    expect([withSha.status, withSha.json.error]).toEqual([
      404,
      expect.stringContaining('no change acme/shop#999999999'),
    ]);
    const repo = await declare(1, stack.tokens['jo-platform'], { reason: 'x' }, { repo: 'acme/nope' });
    expect([repo.status, repo.json.error]).toEqual([404, expect.stringContaining('acme/nope is not configured')]);
  });
});

describe('POST /api/changes/{owner}/{repo}/{number}/emergency: decided by the change workflow', () => {
  it('takes a declaration for the head as the token owner, and refuses a second one while it is open (409)', async () => {
    const { change, number, head, handle } = await openTrackedChange(stack, 'Fix checkout 500s');
    const taken = await declare(
      number,
      stack.tokens['jo-platform'],
      { reason: '  checkout 500s since 14:02 ' },
      { cli: true },
    );
    expect(taken.status).toBe(200);
    const outcome = taken.json as unknown as EmergencyOutcome;
    expect(outcome.taken).toBe(true);
    expect(outcome.reason).toBe(`jo-platform declares an emergency for ${head.slice(0, 7)} (staging, production)`);
    expect(outcome.emergency).toMatchObject({
      sha: head,
      declaredBy: 'jo-platform',
      channel: 'cli',
      reason: 'checkout 500s since 14:02',
      environments: ['staging', 'production'],
      keyId: stack.key.publicKey,
    });
    const e = outcome.emergency as NonNullable<EmergencyOutcome['emergency']>;
    expect(Date.parse(e.windowEndsAt) - Date.parse(e.declaredAt)).toBe(3_600_000);
    // The workflow keeps it in the change's record, as the status shows it.
    const status = await handle.query(statusQuery);
    expect(status.emergencies?.[0]).toMatchObject({ id: e.id, declaredBy: 'jo-platform' });

    const again = await declare(number, stack.tokens['jo-platform'], { reason: 'still down', sha: head });
    expect(again.status).toBe(409);
    expect(again.json.taken).toBe(false);
    expect(again.json.error).toBe(again.json.reason);
    expect(String(again.json.error)).toContain(`an emergency is already open for ${change}: declared by jo-platform`);
  });

  it('a SHA that is not the head is the workflow refusal (409); named environments only, channel api', async () => {
    const { change, number, head, handle } = await openTrackedChange(stack, 'Roll the payment key');
    const stale = 'f'.repeat(40);
    const refused = await declare(number, stack.tokens['jo-platform'], { reason: 'key leaked', sha: stale });
    expect([refused.status, refused.json.taken]).toEqual([409, false]);
    expect(refused.json.error).toBe(
      `the emergency names ${stale.slice(0, 7)} but the head is ${head.slice(0, 7)}: declare it for the head`,
    );
    const taken = await declare(number, stack.tokens['jo-platform'], {
      reason: 'key leaked',
      sha: head.toUpperCase(),
      environments: ['production', 'production'],
    });
    expect(taken.status).toBe(200);
    expect(taken.json.emergency).toMatchObject({ sha: head, channel: 'api', environments: ['production'] });

    // A change whose workflow has ended: 409, nothing can be declared on it.
    await handle.terminate('test: the change is over');
    const closed = await declare(number, stack.tokens['jo-platform'], { reason: 'late', sha: head });
    expect([closed.status, closed.json.error]).toEqual([
      409,
      `change ${change} is closed; no emergency can be declared`,
    ]);
  });
});

describe('foureyes emergency', () => {
  it('without --reason: a usage error naming --reason, exit 2', async () => {
    const result = await runFoureyesCli(
      'emergency',
      ['acme/shop#1'],
      stack.tokens['jo-platform'] as string,
      stack.gatewayUrl,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--reason is required');
    expect(result.stderr).toContain('usage: foureyes emergency');
  });

  it('prints what was declared and what is owed; a refusal prints the reason and exits 1', async () => {
    const { change, head } = await openTrackedChange(stack, 'Hotfix the cart');
    const jo = stack.tokens['jo-platform'] as string;
    const short = head.slice(0, 7);
    const taken = await runFoureyesCli(
      'emergency',
      [change, '--reason', 'cart empty for everyone', '--env', 'production'],
      jo,
      stack.gatewayUrl,
    );
    expect(taken.stderr).toBe('');
    expect(taken.code).toBe(0);
    const status = await stack.client.workflow.getHandle(`change:${change}`).query(statusQuery);
    const e = status.emergencies?.[0];
    expect(e).toMatchObject({ channel: 'cli', declaredBy: 'jo-platform', environments: ['production'] });
    expect(taken.stdout.trim()).toBe(
      `EMERGENCY declared for ${change} @ ${short} (production) by jo-platform: gates open until ${e?.windowEndsAt}; retroactive review due ${e?.reviewDueAt}: an eligible person who took no part in it approves ${short} (foureyes approve ${change})`,
    );

    const again = await runFoureyesCli('emergency', [change, '--reason', 'still empty'], jo, stack.gatewayUrl);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain(
      `the emergency for ${change} was REFUSED: an emergency is already open for ${change}`,
    );

    const sam = await runFoureyesCli(
      'emergency',
      [change, '--reason', 'mine'],
      stack.tokens['sam-dev'] as string,
      stack.gatewayUrl,
    );
    expect(sam.code).toBe(1);
    expect(sam.stdout).toContain('REFUSED: sam-dev may not declare an emergency');
  });
});
