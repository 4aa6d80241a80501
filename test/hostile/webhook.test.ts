// Hostile GitHub deliveries against the real gateway over HTTP: arbitrary headers and bodies, a valid
// signature over garbage, huge bodies, hostile refs and repository names. Each must be refused with a 4xx
// and a reason, the gateway must keep answering, and no change workflow may exist afterwards.
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_BODY_LIMIT } from '../../src/gateway/routes/github-webhook.ts';
import { GitHubStandin } from '../../src/dev/github-standin/index.ts';
import {
  expectHealthy,
  expectNothingStarted,
  expectRefusal,
  githubHeaders,
  pullRequestBody,
  rawHttp,
  request,
  startHostileGateway,
  type HostileGateway,
} from './harness.ts';

let gw: HostileGateway;
const hook = () => `${gw.url}/webhooks/github`;

beforeAll(async () => {
  gw = await startHostileGateway('webhook');
});
afterAll(async () => {
  await gw?.stop();
});

const post = (body: string | Buffer, headers: Record<string, string>) =>
  request(hook(), { method: 'POST', headers, body });

describe('hostile GitHub webhooks', () => {
  it('arbitrary unsigned or wrongly signed deliveries: 401 with a reason', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 2000 }),
        fc.option(
          fc.oneof(
            fc.string({ maxLength: 80 }),
            fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256=${h}`),
            fc.constant('sha256='),
          ),
          { nil: undefined },
        ),
        fc.constantFrom('pull_request', 'pull_request_review', 'ping', 'push', ''),
        async (body, signature, event) => {
          const headers: Record<string, string> = {
            'content-type': 'application/json',
            'x-github-event': event,
            'x-github-delivery': randomUUID(),
          };
          // fetch refuses control characters in header values; those are a raw-socket case below.
          if (signature !== undefined && /^[\x20-\x7e]*$/.test(signature)) headers['x-hub-signature-256'] = signature;
          expectRefusal(
            await post(body, headers),
            body === '' && /^sha256=[0-9a-f]{64}$/.test(headers['x-hub-signature-256'] ?? '') ? [400, 401] : [401],
          );
        },
      ),
      { numRuns: 60 },
    );
    await expectHealthy(gw);
  });

  it('a valid signature over garbage (not JSON, not an object, wrong shape): 400 naming the problem', async () => {
    const garbage = fc.oneof(
      fc.string({ maxLength: 500 }).filter((s) => {
        try {
          const v: unknown = JSON.parse(s);
          return v === null || typeof v !== 'object' || Array.isArray(v);
        } catch {
          return true;
        }
      }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
    );
    await fc.assert(
      fc.asyncProperty(garbage, fc.constantFrom('pull_request', 'pull_request_review'), async (body, event) => {
        const answer = await post(body, githubHeaders(gw, body, event));
        // A JSON object without a used action is acknowledged as ignored (202), which starts nothing either.
        if (answer.status === 202) expect(answer.json?.ignored, answer.text).toBeTruthy();
        else expectRefusal(answer, [400]);
      }),
      { numRuns: 80 },
    );
    await expectHealthy(gw);
    await expectNothingStarted(gw);
  });

  it('a correctly shaped payload with one field replaced by anything is refused, never started', async () => {
    const hostileValue = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.integer(),
      fc.double(),
      fc.constant(null),
      fc.boolean(),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
    );
    const field = fc.constantFrom('number', 'fullName', 'sha', 'title', 'headRef');
    await fc.assert(
      fc.asyncProperty(field, hostileValue, async (which, value) => {
        // A value that happens to be valid would be a real delivery; those are tested elsewhere.
        const payload = pullRequestBody(gw, { [which]: value });
        const valid =
          (which === 'title' && typeof value === 'string' && value.length <= 1024) ||
          (which === 'headRef' && typeof value === 'string') ||
          (which === 'fullName' && typeof value === 'string' && value.toLowerCase() === gw.repo.toLowerCase()) ||
          (which === 'sha' && typeof value === 'string' && /^[0-9a-f]{40}$/.test(value)) ||
          (which === 'number' && Number.isSafeInteger(value) && (value as number) > 0);
        fc.pre(!valid);
        const body = JSON.stringify(payload);
        expectRefusal(await post(body, githubHeaders(gw, body)), [400, 422]);
      }),
      { numRuns: 80 },
    );
    await expectNothingStarted(gw);
  });

  it('hostile repository names and pull request numbers: 4xx, never a workflow ID built from them', async () => {
    const names = [
      `${gw.repo}/../../etc`,
      `../${gw.repo}`,
      `${gw.repo}\u0000`,
      `${gw.repo}\n`,
      `${gw.repo.replace('shop', 'ѕhop')}`, // Cyrillic s
      `${gw.repo.replace('/', '\u2215')}`, // division slash
      `${'a'.repeat(150)}/shop`,
      'x'.repeat(10_000),
      ' ',
    ];
    for (const fullName of names) {
      const body = JSON.stringify(pullRequestBody(gw, { fullName }));
      expectRefusal(await post(body, githubHeaders(gw, body)), [400, 422]);
    }
    for (const number of [0, -1, 1.5, 1e10, Number.MAX_SAFE_INTEGER + 2, '12', '../1']) {
      const body = JSON.stringify(pullRequestBody(gw, { number }));
      expectRefusal(await post(body, githubHeaders(gw, body)), [400]);
    }
    await expectNothingStarted(gw);
  });

  it('hostile headers: delivery IDs with traversal, control characters or absurd lengths; odd events', async () => {
    const body = JSON.stringify(pullRequestBody(gw));
    for (const delivery of ['../../x', 'a'.repeat(101), 'id with space', '', 'ünïcode']) {
      const headers = { ...githubHeaders(gw, body), 'x-github-delivery': delivery };
      const answer = await request(hook(), {
        method: 'POST',
        headers: Object.fromEntries(
          Object.entries(headers).map(([k, v]) => [k, encodeURI(v) === v ? v : encodeURIComponent(v)]),
        ),
        body,
      });
      expectRefusal(answer, [400]);
    }
    // Control characters and NUL in headers can only be sent raw; Node's parser refuses them with 400.
    const raw = await rawHttp(
      gw,
      `POST /webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Delivery: a\u0001b\r\nContent-Length: 2\r\n\r\n{}`,
    );
    expect(raw).toMatch(/^HTTP\/1\.1 4\d\d/);
    await expectHealthy(gw);
    await expectNothingStarted(gw);
  });

  it('huge bodies: 413 with a reason, declared or streamed, without the gateway buffering them', async () => {
    const big = Buffer.alloc(WEBHOOK_BODY_LIMIT + 1, 0x61);
    const declared = await post(big, githubHeaders(gw, big));
    expectRefusal(declared, [413]);
    // Chunked (no content-length): refused once the limit is passed. The server may reset the connection
    // after the answer; what matters is the 413 and that it keeps serving.
    const chunks = Math.ceil((WEBHOOK_BODY_LIMIT + 1) / 65536);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < chunks; i++) controller.enqueue(new Uint8Array(65536).fill(0x62));
        controller.close();
      },
    });
    const chunked = await fetch(hook(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': GitHubStandin.sign('x', gw.webhookSecret) },
      body: stream,
      duplex: 'half',
    } as RequestInit).then(
      async (res) => ({ status: res.status, text: await res.text() }),
      (error: unknown) => ({ status: 0, text: String(error) }),
    );
    if (chunked.status !== 0) expect(chunked.status, chunked.text).toBe(413);
    // A valid signature over a 4 MB JSON string is still a 400, not a crash.
    const hugeJson = JSON.stringify({ action: 'opened', junk: 'x'.repeat(4 * 1024 * 1024) });
    expectRefusal(await post(hugeJson, githubHeaders(gw, hugeJson)), [400]);
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    expectRefusal(await post(deep, githubHeaders(gw, deep)), [400]);
    await expectHealthy(gw);
    await expectNothingStarted(gw);
  });

  it('malformed request lines and URLs never take the gateway down', async () => {
    for (const target of ['//[', '//%zz/', '/api/changes/%E0%A4%A/x/1', '/webhooks/github?%', '/%00']) {
      const raw = await rawHttp(gw, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(raw, target).toMatch(/^HTTP\/1\.1 4\d\d/);
    }
    await expectHealthy(gw);
    await expectNothingStarted(gw);
  });

  // Last, because it starts one workflow (on a queue no worker polls) and terminates it again.
  it('a real, signed pull request with a hostile title, branch and commit message: accepted, and inert in the Temporal UI', async () => {
    const title = '@here <!channel> [click](https://evil.example) ![x](y) `code` **b** <img src=x> # h\n| a | b |';
    const head = 'feat/$(touch_pwned)_<!here>_@octocat_`x`';
    gw.github.standin.setWebhook(hook(), gw.webhookSecret);
    const { pull, delivery } = await gw.github.standin.openPullRequest({
      repo: gw.repo,
      author: 'sam-dev',
      title,
      head,
      commits: [{ message: '<!everyone> $(id) `id` [x](y)\n\n@alex-reviewer' }],
    });
    const workflowId = `change:${gw.repo}#${pull.number}`;
    try {
      expect(delivery.attempts.at(-1)?.status, JSON.stringify(delivery.attempts)).toBe(202);
      const description = await gw.client.workflow.getHandle(workflowId).describe();
      const shown = [(await description.staticSummary()) ?? '', (await description.staticDetails()) ?? ''];
      expect(shown[0]).toContain(`${gw.repo}#${pull.number}`);
      for (const text of shown) {
        // Markdown in the Temporal UI: every markup character backslash-escaped, every @ defused, one line.
        // (The change reference itself, `owner/repo#n`, is foureyes' own validated text.)
        const unescaped = text.split(`${gw.repo}#${pull.number}`).join('').replace(/\\./g, '');
        expect(unescaped, text).not.toMatch(/[`*_{}[\]()#+!|<>~\n\r]/);
        expect(text.replace(/@\u200b/g, ''), text).not.toMatch(/@/);
      }
    } finally {
      await gw.client.workflow
        .getHandle(workflowId)
        .terminate('hostile-input test over')
        .catch(() => undefined);
    }
  });
});
