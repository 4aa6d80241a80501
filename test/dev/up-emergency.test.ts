// Break-glass as a team uses it at 3 a.m.: `foureyes up` against the GitHub stand-in as an outside service, a pull
// request waiting for approval, `foureyes emergency` from the CLI with each person's own GitHub token. The
// author may not declare it; the listed on-call person may, and the real deployer ships the head with an OpenBao
// lease and no approval. The pull request says so at once; the change then owes a review, which a reviewer's
// approving GitHub review of that commit gives.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/dev/paths.ts';
import type { ChangeStatus } from '../../src/shared/types.ts';
import { startUp, type UpProcess } from '../helpers/foureyes-up.ts';
import { startStandinProcess } from '../helpers/github-standin-process.ts';

const work = mkdtempSync(join(tmpdir(), 'foureyes-emergency-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const SECRET = `whsec-${Math.random().toString(36).slice(2)}-emergency`;
const run = promisify(execFile);

async function statusOf(up: UpProcess, n: number, token: string): Promise<ChangeStatus | undefined> {
  const res = await fetch(`${up.gatewayUrl}/api/changes/acme/shop/${n}`, {
    headers: { authorization: `Bearer ${token}` },
  }).catch(() => undefined);
  return res?.ok ? ((await res.json()) as ChangeStatus) : undefined;
}

describe('foureyes emergency', () => {
  it('refuses the author, deploys for the on-call person without approval, announces it on the PR and closes on a GitHub review', async () => {
    const deployed = join(work, 'deployed');
    chmodSync(work, 0o755);
    mkdirSync(deployed);
    chmodSync(deployed, 0o777);
    writeFileSync(join(deployed, 'log'), '');
    chmodSync(join(deployed, 'log'), 0o666);
    const gh = await startStandinProcess(join(work, 'github'));
    const tokens: Record<string, string> = {};
    for (const login of ['sam-dev', 'alex-reviewer', 'jo-platform', 'foureyes-bot'])
      tokens[login] = (await gh.control<{ token: string }>('POST', '/users', { login })).token;
    const deploy = `#!/bin/sh\necho "$FOUREYES_SHA $FOUREYES_CHANGE lease=\${VAULT_TOKEN:+yes}" >> ${deployed}/log\n`;
    const repo = await gh.control<{ remote: string }>('POST', '/repos', {
      fullName: 'acme/shop',
      files: { 'README.md': '# shop\n', 'deploy.sh': deploy },
    });
    const configFile = join(work, 'foureyes.yaml');
    writeFileSync(
      configFile,
      `
people:
  - { github: sam-dev, emails: [sam@example.com] }
  - { github: alex-reviewer, emails: [alex@example.com] }
  - { github: jo-platform, emails: [jo@example.com] }
environments:
  - name: staging
    deploy: { run: sh deploy.sh, timeout: 1m, writable: [${JSON.stringify(deployed)}] }
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token } }
    approval: { required: 1, expiry: 1h }
repositories:
  - name: acme/shop
    remote: ${JSON.stringify(repo.remote)}
    checks: [{ name: unit, run: "true", timeout: 1m }]
emergency:
  allowed: [jo-platform]
  window: 2h
  reviewWithin: 24h
`,
    );
    const up = await startUp({
      dataDir: join(work, 'data'),
      configFile,
      env: { GITHUB_TOKEN: tokens['foureyes-bot'] as string, GITHUB_API_URL: gh.apiUrl, GITHUB_WEBHOOK_SECRET: SECRET },
    });
    const reviewer = tokens['alex-reviewer'] as string;
    const cli = (args: string[], token: string, extra: Record<string, string> = {}) =>
      run(process.execPath, [join(projectRoot(), 'bin/foureyes.js'), ...args], {
        // A person's own machine: only their GitHub token, no local stack's operator token.
        env: {
          PATH: process.env.PATH,
          HOME: work,
          GITHUB_TOKEN: token,
          FOUREYES_GATEWAY_URL: up.gatewayUrl,
          FOUREYES_DATA: join(work, 'no-local-stack'),
          ...extra,
        },
      }).then(
        (r) => ({ code: 0, out: `${r.stdout}${r.stderr}` }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: `${e.stdout}${e.stderr}` }),
      );
    const until = async (what: string, done: (s: ChangeStatus) => boolean): Promise<ChangeStatus> => {
      let last: ChangeStatus | undefined;
      for (const deadline = Date.now() + 180_000; Date.now() < deadline;) {
        last = (await statusOf(up, 1, reviewer)) ?? last;
        if (last && done(last)) return last;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`#1 never ${what}: ${JSON.stringify(last)}\n${up.output().slice(-3000)}`);
    };
    const log = () => readFileSync(join(deployed, 'log'), 'utf8').trim();
    try {
      await gh.control('POST', '/webhook', { url: `${up.gatewayUrl}/webhooks/github`, secret: SECRET });
      await gh.control('POST', '/repos/acme/shop/pulls', {
        author: 'sam-dev',
        title: 'Fix checkout outage',
        commits: [{ message: 'Fix checkout outage', files: { 'fix.txt': 'fixed\n' } }],
      });
      const { headSha } = await until('awaiting approval', (s) => s.stage === 'awaiting-approval');

      // The author may not open the gate on their own change.
      const author = await cli(
        ['emergency', 'acme/shop#1', '--reason', 'checkout is down'],
        tokens['sam-dev'] as string,
      );
      expect(author.code, author.out).toBe(1);
      expect(author.out).toContain('REFUSED: sam-dev may not declare an emergency (emergency.allowed: jo-platform)');
      expect(log()).toBe('');

      const declared = await cli(
        ['emergency', 'acme/shop#1', '--reason', 'checkout is down'],
        tokens['jo-platform'] as string,
      );
      expect(declared.code, declared.out).toBe(0);
      expect(declared.out).toContain(
        `EMERGENCY declared for acme/shop#1 @ ${headSha.slice(0, 7)} (staging) by jo-platform`,
      );

      // Deployed by the pipeline with a lease, with no approval; the change owes its review.
      const shipped = await until(
        'deployed under the emergency',
        (s) => s.stage === 'delivered' && (s.emergencies ?? []).some((e) => e.state === 'review-due'),
      );
      expect(log()).toBe(`${headSha} acme/shop#1 lease=yes`);
      expect(shipped.approvals ?? []).toEqual([]);
      expect(shipped.emergencies?.[0]).toMatchObject({ declaredBy: 'jo-platform', reason: 'checkout is down' });

      // The pull request says so, by whom and why, and how to review it.
      type State = { comments: Array<{ issue: number; body: string }> };
      let announced = '';
      for (const deadline = Date.now() + 30_000; Date.now() < deadline && !announced;) {
        announced =
          (await gh.control<State>('GET', '/state')).comments.find(
            (c) => c.issue === 1 && c.body.includes('EMERGENCY change'),
          )?.body ?? '';
        if (!announced) await new Promise((r) => setTimeout(r, 250));
      }
      // As GitHub renders it: the untrusted text is escaped as character references, which GitHub displays as is.
      announced = announced.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)));
      expect(announced).toContain('EMERGENCY change acme/shop#1: being deployed without approval');
      expect(announced).toContain('**Declared by:** jo-platform');
      expect(announced).toContain('**Reason:** checkout is down');
      expect(announced).toContain(`foureyes approve acme/shop#1 --sha ${headSha}`);

      // The operator, on the machine that runs the stack.
      const status = await cli(['status', 'acme/shop#1'], reviewer, {
        TEMPORAL_ADDRESS: `127.0.0.1:${up.ports.temporal}`,
        TEMPORAL_NAMESPACE: 'foureyes',
      });
      expect(status.out).toMatch(/EMERGENCY .*review due/);

      // The retroactive review: an approving GitHub review of that commit by someone who took no part.
      await gh.control('POST', '/repos/acme/shop/pulls/1/reviews', { reviewer: 'alex-reviewer', event: 'APPROVE' });
      const reviewed = await until('reviewed', (s) => (s.emergencies ?? []).some((e) => e.state === 'reviewed'));
      expect(reviewed.emergencies?.[0]?.summary).toContain('alex-reviewer');
      expect(log()).toBe(`${headSha} acme/shop#1 lease=yes`);
    } finally {
      expect(await up.stop()).toBe(0);
      await gh.stop();
    }
  }, 480_000);
});
