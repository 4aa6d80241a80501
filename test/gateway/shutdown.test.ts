// The production gateway entry point (`foureyes gateway`) against the shared dev server: it logs JSON with
// FOUREYES_LOG_FORMAT=json, and on SIGTERM stops accepting connections, finishes the request in flight, and
// exits 0.
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/process.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import { startFoureyes, untilHealthy } from '../helpers/foureyes-process.ts';

const port = await freePort();
const gateway = startFoureyes(['gateway'], {
  FOUREYES_APPROVAL_SIGNING_KEY: generateSigningKey().privateKey,
  GITHUB_WEBHOOK_SECRET: 'shutdown-test-secret',
  FOUREYES_LOG_FORMAT: 'json',
  PORT: String(port),
});
const { child, exited } = gateway;

describe('foureyes gateway (production entry point)', () => {
  it('finishes the request in flight after SIGTERM, refuses new ones, and exits 0', async () => {
    const base = `http://127.0.0.1:${port}`;
    await untilHealthy(base, gateway);

    // A webhook delivery whose body is still arriving when SIGTERM comes.
    const body = JSON.stringify({ zen: 'Keep it logically awesome.' });
    const answer = new Promise<number>((resolve, reject) => {
      const req = request(
        `${base}/webhooks/github`,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'x-github-event': 'ping',
            'x-github-delivery': 'shutdown-1',
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 5));
      setTimeout(() => {
        child.kill('SIGTERM');
        setTimeout(async () => {
          // The listener is closed: a new connection is refused while the old request is still open.
          await expect(fetch(`${base}/healthz`)).rejects.toThrow();
          req.end(body.slice(5));
        }, 300);
      }, 200);
    });
    // Unsigned: the gateway answers it (401) rather than dropping the connection.
    expect(await answer).toBe(401);
    expect(await exited).toBe(0);
    const lines = gateway
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { component: string; msg: string });
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^listening on /), expect.stringMatching(/^stopping/)]),
    );
    expect(lines.every((l) => l.component === 'gateway')).toBe(true);
  });
});
