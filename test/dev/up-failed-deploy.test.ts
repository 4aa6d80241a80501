// A deploy command that fails is evidence, not noise: run by `foureyes up` against the GitHub stand-in as an
// outside service, a staging deploy that prints its leased token and an error and exits 3 must show its exit
// code and its (redacted) last output in the change's status, in the pull request's comment and in the audit
// export — and the token itself nowhere.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChangeStatus } from '../../src/shared/types.ts';
import { startTeamStack } from '../helpers/team-stack.ts';

const work = mkdtempSync(join(tmpdir(), 'foureyes-failed-deploy-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('a failed deploy command', () => {
  it('reaches status, the pull request comment and the audit export with its exit code and redacted output', async () => {
    const leaks = join(work, 'leaks');
    // The command runs as the sandbox's own unprivileged uid: the folder it may write must be writable by it.
    chmodSync(work, 0o755);
    mkdirSync(leaks);
    chmodSync(leaks, 0o777);
    const deploy = [
      '#!/bin/sh',
      'echo "migrating the database of $FOUREYES_ENVIRONMENT with token $VAULT_TOKEN"',
      `printf %s "$VAULT_TOKEN" > ${leaks}/token`,
      'echo "error: migration 0042_orders failed: column total already exists" >&2',
      'exit 3',
    ].join('\n');
    const team = await startTeamStack({
      work,
      people: ['sam-dev', 'alex-reviewer'],
      files: { 'README.md': '# shop\n', 'deploy.sh': `${deploy}\n` },
      config: (remote) => `
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
    remote: ${JSON.stringify(remote)}
    checks: [{ name: unit, run: "true", timeout: 1m }]
`,
    });
    const { gh, up, tokens } = team;
    try {
      await gh.control('POST', '/repos/acme/shop/pulls', {
        author: 'sam-dev',
        title: 'Orders total',
        commits: [{ message: 'Orders total', files: { 'migrations/0042_orders.sql': 'alter table orders;\n' } }],
      });
      const reader = tokens['alex-reviewer'] as string;
      const until = (what: string, done: (s: ChangeStatus) => boolean) => team.until(1, what, done, reader);
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
      const shown = await team.operatorCli(['status', 'acme/shop#1'], reader);
      expect(shown.stdout).toMatch(/deploy of [0-9a-f]{7} to staging failed: the command exited with code 3 after/);

      // The pull request's comment (best effort, so wait for it).
      const comment = await team.commentContaining(1, 'exited with code 3');
      expect(comment).toContain('**staging: deploy failed** — the command exited with code 3');
      // Read as a person sees it (GitHub renders the escaped untrusted text back).
      const rendered = comment;
      expect(rendered).toContain(
        'Last output (secrets redacted): migrating the database of staging with token [redacted]',
      );
      expect(rendered).toContain('error: migration 0042_orders failed');

      // The audit export, as an auditor runs it.
      const audit = await team.operatorCli(['audit', 'acme/shop#1', '--format', 'json'], reader);
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
      expect(await team.stop()).toBe(0);
    }
  }, 360_000);
});
