// Hostile calls to the approval API and the change endpoints over real HTTP: arbitrary bodies with a real
// stand-in token, hostile path parameters (`../`, control characters, NUL, absurd lengths, look-alikes),
// hostile tokens. Each is a 4xx with a reason; the gateway keeps answering and nothing is started.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalBodySchema } from '../../src/gateway/approvals/github-token.ts';
import {
  expectHealthy,
  expectNothingStarted,
  expectRefusal,
  request,
  startHostileGateway,
  type HostileGateway,
} from './harness.ts';

let gw: HostileGateway;
beforeAll(async () => {
  gw = await startHostileGateway('api');
});
afterAll(async () => {
  await gw?.stop();
});

const reader = () => ({ authorization: `Bearer ${gw.token}` });
const approvals = (path: string) => `${gw.url}/api/changes/${path}/approvals`;
const postApproval = (path: string, body: string, token: string | undefined = gw.token) =>
  request(approvals(path), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
  });

/** Hostile path segments, percent-encoded as a client would send them. */
const hostileSegments = [
  '..',
  '.',
  '%2e%2e',
  '..%2f..%2fetc',
  '%00',
  'shop%00',
  'shop%0a',
  'shop%0d%0aX-Injected:%201',
  '%07',
  '%E0%A4%A',
  '%',
  'x'.repeat(5000),
  encodeURIComponent('ѕhop'), // Cyrillic s
  encodeURIComponent('shop\u202e'),
  encodeURIComponent('shop '),
  encodeURIComponent('<script>'),
  '-leading',
];

describe('hostile approval API and change endpoints', () => {
  it('arbitrary bodies with a valid token: 400 naming the field (or 404 for a change that does not exist), nothing started', async () => {
    const body = fc.oneof(
      fc.string({ maxLength: 400 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc
        .record(
          {
            decision: fc.oneof(fc.constantFrom('approve', 'reject', 'dismiss', 'APPROVE', ''), fc.integer()),
            comment: fc.oneof(
              fc.string({ maxLength: 100 }),
              fc.string({ minLength: 2001, maxLength: 2100 }),
              fc.constant(null),
            ),
            environment: fc.oneof(
              fc.constantFrom('staging', 'production', '../staging', 'staging\u0000', 'Staging', 'x'.repeat(64)),
              fc.string({ maxLength: 20 }),
            ),
            sha: fc.oneof(fc.constant('a'.repeat(40)), fc.constant('A'.repeat(40)), fc.string({ maxLength: 45 })),
            person: fc.constantFrom('sam-dev', 'jo-platform'),
          },
          { requiredKeys: [] },
        )
        .map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        const answer = await postApproval(`${gw.repo}/${gw.pullBase}`, text);
        let parsed: unknown = {};
        let validJson = true;
        try {
          parsed = text.length > 0 ? JSON.parse(text) : {};
        } catch {
          validJson = false;
        }
        const valid = validJson && approvalBodySchema.safeParse(parsed).success;
        const env = (parsed as { environment?: unknown })?.environment;
        // A valid body for a change that does not exist is a 404; an unknown environment a 400.
        if (valid && (env === undefined || env === 'staging')) expectRefusal(answer, [404]);
        else expectRefusal(answer, [400]);
      }),
      { numRuns: 80 },
    );
    await expectHealthy(gw);
    await expectNothingStarted(gw);
  });

  it('hostile owner, repository and number in the path: 400 (404/405 when no longer a route) with a reason, for every endpoint', async () => {
    const [owner, repo] = gw.repo.split('/') as [string, string];
    const paths: string[] = [];
    for (const s of hostileSegments) paths.push(`${s}/${repo}/1`, `${owner}/${s}/1`, `${owner}/${repo}/${s}`);
    for (const n of ['0', '-1', '1.5', '1e3', '0x10', '9'.repeat(10), '9'.repeat(400), 'NaN', 'Infinity', '%201', '١٢'])
      paths.push(`${owner}/${repo}/${n}`);
    for (const path of paths) {
      for (const [method, url, body] of [
        ['GET', `${gw.url}/api/changes/${path}`, undefined],
        ['GET', `${gw.url}/api/changes/${path}/audit`, undefined],
        ['POST', approvals(path), '{}'],
      ] as const) {
        const answer = await request(url, {
          method,
          headers: { authorization: `Bearer ${gw.token}`, 'content-type': 'application/json' },
          ...(body ? { body } : {}),
        });
        // 404/405 only where the path no longer matches that route: fetch resolves a literal `..` or `.`
        // segment before sending, like any HTTP client. 403: a well-formed name of a repository the reader's
        // token cannot see on GitHub (the read endpoints ask).
        expectRefusal(answer, method === 'GET' ? [400, 403, 404, 405] : [400, 404, 405]);
        if (answer.status === 403) expect(String(answer.json?.error), `${method} ${path}`).toMatch(/cannot read/);
        if (answer.status === 404)
          expect(String(answer.json?.error), `${method} ${path}`).toMatch(/no such endpoint|no (open )?change/);
        // Echoed input stays inside the JSON string: no raw CR/LF, so no header or log line can be forged.
        expect(answer.text, `${method} ${path}`).not.toMatch(/[\r\n\u0000]/);
      }
    }
    const injected = await fetch(`${gw.url}/api/changes/shop%0d%0aX-Injected:%201/shop/1`);
    expect(injected.headers.get('x-injected')).toBeNull();
    await injected.arrayBuffer();
    await expectHealthy(gw);
    await expectNothingStarted(gw);
  });

  it('property: any path parameters either name a valid reference or are refused with 400; never a 5xx', async () => {
    const segment = fc.oneof(
      fc.string({ minLength: 1, maxLength: 60 }),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }),
      fc.constantFrom('..', '.', 'a', 'shop'),
    );
    await fc.assert(
      fc.asyncProperty(
        segment,
        segment,
        fc.oneof(fc.nat().map(String), fc.string({ minLength: 1, maxLength: 12 })),
        async (o, r, n) => {
          const path = [o, r, n].map(encodeURIComponent).join('/');
          const answer = await request(`${gw.url}/api/changes/${path}`, { headers: reader() });
          expect(answer.status, `${path}: ${answer.text}`).toBeLessThan(500);
          // 403: a well-formed repository the reader's token cannot see on GitHub.
          expectRefusal(answer, [400, 403, 404]);
        },
      ),
      { numRuns: 80 },
    );
    await expectHealthy(gw);
  });

  it('hostile tokens and audit query parameters: 401 / 400 with a reason, tokens never echoed', async () => {
    for (const auth of [
      '',
      'Bearer',
      'Bearer a b',
      'Basic dXNlcjpwYXNz',
      `Bearer ${'x'.repeat(8000)}`,
      'Bearer ghp_not_a_real_token',
    ]) {
      const answer = await request(approvals(`${gw.repo}/${gw.pullBase}`), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: auth },
        body: JSON.stringify({ sha: 'a'.repeat(40) }),
      });
      expectRefusal(answer, [401, 431]);
      if (auth.length > 12) expect(answer.text).not.toContain(auth.slice(7, 40));
    }
    for (const query of [
      'format=html',
      'format=../../etc/passwd',
      'run=../../x',
      'run=%00',
      `format=${'x'.repeat(3000)}`,
    ]) {
      expectRefusal(
        await request(`${gw.url}/api/changes/${gw.repo}/${gw.pullBase}/audit?${query}`, { headers: reader() }),
        [400],
      );
    }
    // The audit of a change that does not exist is a 404 that says so (it was a 500).
    const missing = await request(`${gw.url}/api/changes/${gw.repo}/${gw.pullBase}/audit`, { headers: reader() });
    expectRefusal(missing, [404]);
    expect(String(missing.json?.error)).toMatch(/no change/);
    const huge = JSON.stringify({ comment: 'x'.repeat(20 * 1024) });
    expectRefusal(await postApproval(`${gw.repo}/${gw.pullBase}`, huge), [413]);
    await expectHealthy(gw);
    await expectNothingStarted(gw);
  });
});
