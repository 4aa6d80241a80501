// Rollback as a team uses it: `foureyes up` against the GitHub stand-in as an outside service, two pull requests
// reviewed on GitHub and delivered to staging by the real deployer (OpenBao lease, sandboxed command), then
// `foureyes rollback` by a reviewer: staging runs the first release again, deployed by the pipeline with a
// lease of its own, `foureyes environments` shows it as a rollback, and the rolled-back change's status says
// so. A target that was never delivered there is refused with the reason and deploys nothing.
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

const work = mkdtempSync(join(tmpdir(), 'foureyes-rollback-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const SECRET = `whsec-${Math.random().toString(36).slice(2)}-rollback`;
const run = promisify(execFile);

async function statusOf(up: UpProcess, n: number, token: string): Promise<ChangeStatus | undefined> {
  const res = await fetch(`${up.gatewayUrl}/api/changes/acme/shop/${n}`, {
    headers: { authorization: `Bearer ${token}` },
  }).catch(() => undefined);
  return res?.ok ? ((await res.json()) as ChangeStatus) : undefined;
}

describe('foureyes rollback', () => {
  it('takes staging back to the previous release through the pipeline, and refuses a target never delivered there', async () => {
    const deployed = join(work, 'deployed');
    chmodSync(work, 0o755);
    mkdirSync(deployed);
    chmodSync(deployed, 0o777);
    // Each command runs as a sandbox uid of its own: the log they all append to is writable by any.
    writeFileSync(join(deployed, 'log'), '');
    chmodSync(join(deployed, 'log'), 0o666);
    const gh = await startStandinProcess(join(work, 'github'));
    const tokens: Record<string, string> = {};
    for (const login of ['sam-dev', 'alex-reviewer', 'foureyes-bot'])
      tokens[login] = (await gh.control<{ token: string }>('POST', '/users', { login })).token;
    // Each deploy appends what it deployed and whether it held a leased token.
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
environments:
  - name: staging
    deploy: { run: sh deploy.sh, timeout: 1m, writable: [${JSON.stringify(deployed)}] }
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token } }
    approval: { required: 1, expiry: 1h }
repositories:
  - name: acme/shop
    remote: ${JSON.stringify(repo.remote)}
    checks: [{ name: unit, run: "true", timeout: 1m }]
`,
    );
    const up = await startUp({
      dataDir: join(work, 'data'),
      configFile,
      env: { GITHUB_TOKEN: tokens['foureyes-bot'] as string, GITHUB_API_URL: gh.apiUrl, GITHUB_WEBHOOK_SECRET: SECRET },
    });
    const reviewer = tokens['alex-reviewer'] as string;
    const cli = (args: string[], token = reviewer) =>
      run(process.execPath, [join(projectRoot(), 'bin/foureyes.js'), ...args], {
        // A person's own machine: no local stack's operator token (the CLI would prefer it), only their GitHub token.
        env: {
          PATH: process.env.PATH,
          HOME: work,
          GITHUB_TOKEN: token,
          FOUREYES_GATEWAY_URL: up.gatewayUrl,
          FOUREYES_DATA: join(work, 'no-local-stack'),
        },
      }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    const until = async (n: number, what: string, done: (s: ChangeStatus) => boolean): Promise<ChangeStatus> => {
      let last: ChangeStatus | undefined;
      for (const deadline = Date.now() + 180_000; Date.now() < deadline;) {
        last = (await statusOf(up, n, reviewer)) ?? last;
        if (last && done(last)) return last;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`#${n} never ${what}: ${JSON.stringify(last)}\n${up.output().slice(-3000)}`);
    };
    try {
      await gh.control('POST', '/webhook', { url: `${up.gatewayUrl}/webhooks/github`, secret: SECRET });
      const heads: string[] = [];
      for (const n of [1, 2]) {
        await gh.control('POST', '/repos/acme/shop/pulls', {
          author: 'sam-dev',
          title: `Release ${n}`,
          commits: [{ message: `Release ${n}`, files: { [`release-${n}.txt`]: `${n}\n` } }],
        });
        await until(n, 'awaiting approval', (s) => s.stage === 'awaiting-approval');
        await gh.control('POST', `/repos/acme/shop/pulls/${n}/reviews`, {
          reviewer: 'alex-reviewer',
          event: 'APPROVE',
        });
        heads.push((await until(n, 'delivered', (s) => s.stage === 'delivered')).headSha);
      }
      const [first, second] = heads as [string, string];
      const log = () => readFileSync(join(deployed, 'log'), 'utf8').trim().split('\n');
      expect(log()).toEqual([`${first} acme/shop#1 lease=yes`, `${second} acme/shop#2 lease=yes`]);

      // A SHA that never ran in staging: refused, with the reason, and nothing deploys.
      const refused = await cli(['rollback', 'acme/shop', 'staging', '--to', 'abcdef0123', '--reason', 'test']);
      expect(refused.code).toBe(1);
      expect(`${refused.stdout}${refused.stderr}`).toMatch(/abcdef0123 was never approved and delivered to staging/);
      expect(log()).toHaveLength(2);

      // The previous release, by default: staging runs #1's head again, deployed by the pipeline with a lease.
      const back = await cli(['rollback', 'acme/shop', 'staging', '--reason', 'checkout errors since release 2']);
      expect(back.code, `${back.stdout}\n${back.stderr}`).toBe(0);
      expect(back.stdout).toContain(`staging runs ${first.slice(0, 7)} of acme/shop#1 again`);
      expect(log()).toEqual([
        `${first} acme/shop#1 lease=yes`,
        `${second} acme/shop#2 lease=yes`,
        `${first} acme/shop#1 lease=yes`,
      ]);

      // The pull request's comment says where to look and how to go back.
      type State = { comments: Array<{ issue: number; body: string }> };
      let comment = '';
      for (const deadline = Date.now() + 30_000; Date.now() < deadline && !comment.includes('foureyes environments');) {
        comment = (await gh.control<State>('GET', '/state')).comments.find((c) => c.issue === 2)?.body ?? '';
        if (!comment.includes('foureyes environments')) await new Promise((r) => setTimeout(r, 250));
      }
      expect(comment).toContain(
        'What runs in each environment, what waits for it, and its releases: `foureyes environments acme/shop`',
      );
      expect(comment).toContain('back to an earlier release: `foureyes rollback acme/shop <environment>`');

      // As a person reads it: the running release and the newest in the history are marked as the rollback.
      const text = await cli(['environments', 'acme/shop']);
      expect(text.stdout, JSON.stringify(text)).toContain(
        `running      ${first.slice(0, 12)}  acme/shop#1 (rollback)  approved by alex-reviewer`,
      );
      expect(text.stdout).toMatch(
        new RegExp(
          `releases \\(newest first\\):\\n +\\S+  ${first.slice(0, 12)}  acme/shop#1 \\(rollback\\)  deployed`,
        ),
      );
      expect(back.stdout).toContain(
        `foureyes: done: acme/shop @ staging runs ${first.slice(0, 12)} (acme/shop#1) again, approved by alex-reviewer`,
      );

      const environments = await cli(['environments', 'acme/shop', '--json']);
      expect(environments.code, environments.stderr).toBe(0);
      const views = JSON.parse(environments.stdout) as Array<{
        environment: string;
        running?: { sha: string; kind: string; approvers: string[] };
      }>;
      expect(views.find((v) => v.environment === 'staging')?.running).toMatchObject({
        sha: first,
        kind: 'rollback',
        approvers: ['alex-reviewer'],
      });

      // #2 no longer runs in staging: its status says so, from the lane (the change itself was never told).
      const rolledBack = (await statusOf(up, 2, reviewer))?.environments.find((e) => e.name === 'staging');
      expect(rolledBack).toMatchObject({
        state: 'deployed',
        rolledBack: { sha: first, change: 'acme/shop#1', by: 'alex-reviewer' },
      });
      const id = rolledBack?.rolledBack?.rollback as string;
      expect(id).toMatch(/^rollback:acme\/shop@staging:/);
      expect((await statusOf(up, 1, reviewer))?.environments.find((e) => e.name === 'staging')?.rolledBack).toBe(
        undefined,
      );
      // `foureyes status` on the operator's machine (Temporal directly) shows the same.
      const status = await run(process.execPath, [join(projectRoot(), 'bin/foureyes.js'), 'status', 'acme/shop#2'], {
        env: { PATH: process.env.PATH, HOME: work, TEMPORAL_ADDRESS: `127.0.0.1:${up.ports.temporal}` },
      });
      expect(status.stdout).toContain(
        `deployed ${second.slice(0, 7)}, since rolled back to ${first.slice(0, 7)} (acme/shop#1) by alex-reviewer (${id})`,
      );
    } finally {
      expect(await up.stop()).toBe(0);
      await gh.stop();
    }
  }, 480_000);
});
