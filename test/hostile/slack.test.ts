// Hostile Slack requests against the real gateway over HTTP, signed with the v0 scheme the Slack stand-in
// uses. Unsigned or stale requests are a 401; signed garbage gets a Slack answer (Slack shows only 200
// answers to the person) that explains the problem, contains no live mention or link, and starts nothing.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedSlackHeaders } from '../../src/dev/slack-standin/sign.ts';
import {
  expectHealthy,
  expectNothingStarted,
  expectRefusal,
  request,
  slackHeaders,
  startHostileGateway,
  type HostileGateway,
} from './harness.ts';

let gw: HostileGateway;
beforeAll(async () => {
  gw = await startHostileGateway('slack');
});
afterAll(async () => {
  await gw?.stop();
});

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/** Slack text with no live markup: no <…> control sequences (mentions, links, !channel), every @ defused. */
function expectInert(text: string): void {
  expect(text, text).not.toMatch(/[<>]/);
  expect(text.replace(/@\u200b/g, ''), text).not.toMatch(/@/);
}

function slackTexts(json: Record<string, unknown> | undefined): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) if (k !== 'value' && k !== 'action_id' && k !== 'block_id') walk(x);
  };
  walk(json);
  return out;
}

const hostileText = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.constantFrom(
    '<!channel>',
    '<!here>',
    '@here',
    '@channel',
    '<@U0ALEX>',
    '<https://evil.example|click>',
    '*bold* _it_ `code` ```block```',
    '&lt;!channel&gt;',
  ),
  fc
    .array(
      fc.constantFrom(
        'approve',
        'reject',
        'status',
        'acme/shop#1',
        '../x/y#1',
        'a/b#99999999999',
        '<!here>',
        '@everyone',
        'staging',
        '\u0000',
        '\u202e',
        'ａcme/shop#1',
      ),
      { maxLength: 6 },
    )
    .map((w) => w.join(' ')),
);

describe('hostile Slack requests', () => {
  it('unsigned, wrongly signed, stale or future requests: 401 with a reason', async () => {
    const body = form({ text: 'approve x/y#1', user_id: 'U0ALEX' });
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<Record<string, string>> = [
      { 'content-type': 'application/x-www-form-urlencoded' },
      { ...slackHeaders(gw, body), 'x-slack-signature': 'v0=00' },
      { ...slackHeaders(gw, body), 'x-slack-request-timestamp': 'abc' },
      signedSlackHeaders(gw.slackSecret, body, now - 3600),
      signedSlackHeaders(gw.slackSecret, body, now + 3600),
      signedSlackHeaders('not-the-secret', body),
      { ...slackHeaders(gw, body), 'x-slack-request-timestamp': '9'.repeat(40) },
    ];
    for (const path of ['/slack/commands', '/slack/interactions']) {
      for (const headers of cases)
        expectRefusal(await request(`${gw.url}${path}`, { method: 'POST', headers, body }), [401]);
    }
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 500 }), fc.string({ maxLength: 80 }), async (text, sig) => {
        fc.pre(/^[\x20-\x7e]*$/.test(sig));
        const b = form({ text, user_id: 'U0ALEX' });
        expectRefusal(
          await request(`${gw.url}/slack/commands`, {
            method: 'POST',
            headers: { ...slackHeaders(gw, b), 'x-slack-signature': sig },
            body: b,
          }),
          [401],
        );
      }),
      { numRuns: 40 },
    );
    await expectHealthy(gw);
  });

  it('signed slash commands with arbitrary text: an ephemeral explanation, no live mention or link, nothing started', async () => {
    await fc.assert(
      fc.asyncProperty(
        hostileText,
        fc.constantFrom('U0ALEX', 'U0NOBODY', '<!channel>', ''),
        fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
        async (text, userId, userName) => {
          const body = form({
            text,
            user_id: userId,
            ...(userName !== undefined ? { user_name: userName } : {}),
            response_url: 'http://127.0.0.1:9/never',
          });
          const answer = await request(`${gw.url}/slack/commands`, {
            method: 'POST',
            headers: slackHeaders(gw, body),
            body,
          });
          expect(answer.status, answer.text).toBe(200);
          expect(answer.json?.response_type, answer.text).toBe('ephemeral');
          expect(String(answer.json?.text ?? '').length).toBeGreaterThan(0);
          for (const t of slackTexts(answer.json))
            if (!t.startsWith('usage:') && t !== 'ephemeral') expectInert(t.replace(/usage: .*$/s, ''));
        },
      ),
      { numRuns: 60 },
    );
    await expectHealthy(gw);
    await expectNothingStarted(gw);
  });

  it('slash commands naming hostile refs are refused with the reason', async () => {
    const refs = [
      `${gw.repo}#0`,
      `${gw.repo}/../x#1`,
      `../${gw.repo}#1`,
      `${gw.repo}#1\u0000`,
      `${gw.repo}\u0007#1`,
      `${gw.repo.replace('shop', 'ѕhop')}#1`,
      `${'a'.repeat(300)}/b#1`,
      `a/${'b'.repeat(101)}#1`,
      `${gw.repo}#${'9'.repeat(12)}`,
    ];
    for (const ref of refs) {
      const body = form({ text: `approve ${ref}`, user_id: 'U0ALEX' });
      const answer = await request(`${gw.url}/slack/commands`, {
        method: 'POST',
        headers: slackHeaders(gw, body),
        body,
      });
      expect(answer.status).toBe(200);
      expect(String(answer.json?.text), ref).toMatch(/invalid (change reference|repository|pull request)/);
    }
    // A well-formed ref for a change that does not exist: the person learns so, nothing is created.
    const body = form({ text: `approve ${gw.repo}#${gw.pullBase}`, user_id: 'U0ALEX' });
    const answer = await request(`${gw.url}/slack/commands`, { method: 'POST', headers: slackHeaders(gw, body), body });
    expect(answer.status).toBe(200);
    expect(String(answer.json?.text)).toMatch(/^:x: /);
    await expectNothingStarted(gw);
  });

  it('signed interactions with arbitrary payloads: 400 unless a JSON object, an empty acknowledgement otherwise, nothing started', async () => {
    const payload = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc
        .record({
          type: fc.constantFrom('block_actions', 'view_submission', 'x'),
          user: fc.record({
            id: fc.constantFrom('U0ALEX', 'U0SAM', 'U0NOBODY'),
            team_id: fc.string({ maxLength: 10 }),
          }),
          actions: fc.array(
            fc.record({
              action_id: fc.constantFrom('foureyes_approve:staging', 'foureyes_reject', 'foureyes_approve', 'other'),
              value: fc.oneof(
                fc.string({ maxLength: 100 }),
                fc.jsonValue().map((v) => JSON.stringify(v)),
                fc.constant(JSON.stringify({ c: `../../x#1`, s: 'a'.repeat(40) })),
              ),
            }),
            { maxLength: 2 },
          ),
        })
        .map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(payload, fc.boolean(), async (p, asField) => {
        const body = asField ? form({ payload: p }) : p;
        const answer = await request(`${gw.url}/slack/interactions`, {
          method: 'POST',
          headers: slackHeaders(gw, body),
          body,
        });
        let isObject = true;
        try {
          const v: unknown = JSON.parse(new URLSearchParams(body).get('payload') ?? '');
          isObject = v !== null && typeof v === 'object' && !Array.isArray(v);
        } catch {
          isObject = false;
        }
        if (!isObject) expectRefusal(answer, [400]);
        else expect(answer.status, answer.text).toBe(200);
      }),
      { numRuns: 60 },
    );
    // JSON that is not an object (null, a number, a list) is not an interaction either.
    for (const p of [
      'null',
      '0',
      '"x"',
      '[]',
      '{"actions":null}',
      '{"actions":[null]}',
      '{"actions":"abc"}',
      '{"type":"block_actions","actions":[{"action_id":5,"value":{}}],"response_url":"http://127.0.0.1:9/"}',
      '{"user":null,"actions":[{"action_id":"foureyes_reject","value":"{}"}],"type":"block_actions","response_url":"http://127.0.0.1:9/"}',
    ]) {
      const body = form({ payload: p });
      const answer = await request(`${gw.url}/slack/interactions`, {
        method: 'POST',
        headers: slackHeaders(gw, body),
        body,
      });
      expect([200, 400], `${p}: ${answer.status} ${answer.text}`).toContain(answer.status);
      if (answer.status === 400) expectRefusal(answer);
    }
    // A body over the limit is a 413 before anything is parsed.
    const huge = form({ payload: 'x'.repeat(70 * 1024) });
    expectRefusal(
      await request(`${gw.url}/slack/interactions`, { method: 'POST', headers: slackHeaders(gw, huge), body: huge }),
      [413],
    );
    await expectHealthy(gw);
    await expectNothingStarted(gw);
  });
});
