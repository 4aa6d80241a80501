// A deploy command that fails is evidence, not noise: run by `foureyes up` against the GitHub stand-in as an
// outside service, a staging deploy that prints its leased token and an error and exits 3 must show its exit
// code and its (redacted) last output in the change's status, in the pull request's comment and in the audit
// export — and the token itself nowhere.
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

const work = mkdtempSync(join(tmpdir(), 'foureyes-failed-deploy-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const SECRET = `whsec-${Math.random().toString(36).slice(2)}-fail`;

async function statusOf(up: UpProcess, token: string): Promise<ChangeStatus | undefined> {
  const res = await fetch(`${up.gatewayUrl}/api/changes/acme/shop/1`, {
    headers: { authorization: `Bearer ${token}` },
  }).catch(() => undefined);
  return res?.ok ? ((await res.json()) as ChangeStatus) : undefined;
}

describe('a failed deploy command', () => {
  it('reaches status, the pull request comment and the audit export with its exit code and redacted output', async () => {
    const leaks = join(work, 'leaks');
    // The command runs as the sandbox's own unprivileged uid: the folder it may write must be writable by it.
    chmodSync(work, 0o755);
    mkdirSync(leaks);
    chmodSync(leaks, 0o777);
    const gh = await startStandinProcess(join(work, 'github'));
    const tokens: Record<string, string> = {};
    for (const login of ['sam-dev', 'alex-reviewer', 'foureyes-bot'])
      tokens[login] = (await gh.control<{ token: string }>('POST', '/users', { login })).token;
    const deploy = [
      '#!/bin/sh',
      'echo "migrating the database of $FOUREYES_ENVIRONMENT with token $VAULT_TOKEN"',
      `printf %s "$VAULT_TOKEN" > ${leaks}/token`,
      'echo "error: migration 0042_orders failed: column total already exists" >&2',
      'exit 3',
    ].join('\n');
    const repo = await gh.control<{ remote: string }>('POST', '/repos', {
      fullName: 'acme/shop',
      files: { 'README.md': '# shop\n', 'deploy.sh': `${deploy}\n` },
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
    deploy: { run: sh deploy.sh, timeout: 1m, writable: [${JSON.stringify(leaks)}] }
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token, VAULT_ADDR: addr } }
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
    try {
      await gh.control('POST', '/webhook', { url: `${up.gatewayUrl}/webhooks/github`, secret: SECRET });
      await gh.control('POST', '/repos/acme/shop/pulls', {
        author: 'sam-dev',
        title: 'Orders total',
        commits: [{ message: 'Orders total', files: { 'migrations/0042_orders.sql': 'alter table orders;\n' } }],
      });
      const reader = tokens['alex-reviewer'] as string;
      const until = async (what: string, done: (s: ChangeStatus) => boolean): Promise<ChangeStatus> => {
        let last: ChangeStatus | undefined;
        for (const deadline = Date.now() + 180_000; Date.now() < deadline;) {
          last = (await statusOf(up, reader)) ?? last;
          if (last && done(last)) return last;
          await new Promise((r) => setTimeout(r, 500));
        }
        throw new Error(`never ${what}: ${JSON.stringify(last)}\n${up.output().slice(-3000)}`);
      };
      await until('awaiting approval', (s) => s.stage === 'awaiting-approval');
      await gh.control('POST', '/repos/acme/shop/pulls/1/reviews', { reviewer: 'alex-reviewer', event: 'APPROVE' });
      const failed = await until('failed', (s) => s.stage === 'failed');
      const token = readFileSync(join(leaks, 'token'), 'utf8');
      expect(token.length).toBeGreaterThan(10);

      // Status: the state, the exit code, why, and the last output with the token redacted.
      const staging = failed.environments.find((e) => e.name === 'staging');
      expect(staging?.state).toBe('failed');
      expect(staging?.deploy).toMatchObject({ status: 'failed', exitCode: 3, failure: 'exited with code 3' });
      expect(staging?.deploy?.outputTail).toContain('migration 0042_orders failed');
      expect(staging?.deploy?.outputTail).toContain('with token [redacted]');
      expect(staging?.deploy?.leases.every((l) => l.revokedAt)).toBe(true);
      expect(failed.waitingFor).toContain('the command exited with code 3');
      expect(failed.waitingFor).toContain('migration 0042_orders failed');

      // `foureyes status` says the same in its text.
      const cli = promisify(execFile);
      const cliEnv = {
        PATH: process.env.PATH,
        HOME: work,
        GITHUB_TOKEN: reader,
        TEMPORAL_ADDRESS: `127.0.0.1:${up.ports.temporal}`,
        TEMPORAL_NAMESPACE: 'foureyes',
      };
      const shown = await cli(process.execPath, [join(projectRoot(), 'bin/foureyes.js'), 'status', 'acme/shop#1'], {
        env: cliEnv,
      });
      expect(shown.stdout).toMatch(/deploy of [0-9a-f]{7} to staging failed: the command exited with code 3 after/);

      // The pull request's comment (best effort, so wait for it).
      type State = { comments: Array<{ issue: number; body: string }> };
      let comment = '';
      for (const deadline = Date.now() + 30_000; Date.now() < deadline && !comment.includes('exited with code 3');) {
        const state = await gh.control<State>('GET', '/state');
        comment = state.comments.find((c) => c.issue === 1)?.body ?? '';
        if (!comment.includes('exited with code 3')) await new Promise((r) => setTimeout(r, 250));
      }
      expect(comment).toContain('**staging: deploy failed** — the command exited with code 3');
      // Untrusted text is entity-escaped in the comment (GitHub renders it back): read it as a person sees it.
      const rendered = comment.replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n)));
      expect(rendered).toContain(
        'Last output (secrets redacted): migrating the database of staging with token [redacted]',
      );
      expect(rendered).toContain('error: migration 0042_orders failed');

      // The audit export, as an auditor runs it.
      const audit = await cli(
        process.execPath,
        [join(projectRoot(), 'bin/foureyes.js'), 'audit', 'acme/shop#1', '--format', 'json'],
        { env: cliEnv, maxBuffer: 64 * 1024 * 1024 },
      );
      const doc = JSON.parse(audit.stdout) as {
        entries: Array<{ kind: string; summary: string; data: Record<string, unknown> }>;
      };
      const entry = doc.entries.find((e) => e.kind === 'deploy');
      expect(entry?.data).toMatchObject({ status: 'failed', exitCode: 3, failure: 'exited with code 3' });
      expect(String(entry?.data.outputTail)).toContain('migration 0042_orders failed');
      expect(entry?.summary).toContain('the command exited with code 3');

      for (const [where, text] of Object.entries({
        status: JSON.stringify(failed),
        comment,
        audit: audit.stdout,
        cli: shown.stdout,
        output: up.output(),
      }))
        expect(text.includes(token), `the leased token in ${where}`).toBe(false);
    } finally {
      expect(await up.stop()).toBe(0);
      await gh.stop();
    }
  }, 360_000);
});
