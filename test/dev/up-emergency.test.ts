// Break-glass as a team uses it at 3 a.m.: `foureyes up` against the GitHub stand-in as an outside service, a pull
// request waiting for approval, `foureyes emergency` from the CLI with each person's own GitHub token. The
// author may not declare it; the listed on-call person may, and the real deployer ships the head with an OpenBao
// lease and no approval. The pull request says so at once; the change then owes a review, which a reviewer's
// approving GitHub review of that commit gives.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChangeStatus } from '../../src/shared/types.ts';
import { sharedFolder, startTeamStack } from '../helpers/team-stack.ts';

const work = mkdtempSync(join(tmpdir(), 'foureyes-emergency-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('foureyes emergency', () => {
  it('refuses the author, deploys for the on-call person without approval, announces it on the PR and closes on a GitHub review', async () => {
    const deployed = sharedFolder(work, 'deployed');
    const deploy = `#!/bin/sh\necho "$FOUREYES_SHA $FOUREYES_CHANGE lease=\${VAULT_TOKEN:+yes}" >> ${deployed}/log\n`;
    const team = await startTeamStack({
      work,
      people: ['sam-dev', 'alex-reviewer', 'jo-platform'],
      files: { 'README.md': '# shop\n', 'deploy.sh': deploy },
      config: (remote) => `
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
    remote: ${JSON.stringify(remote)}
    checks: [{ name: unit, run: "true", timeout: 1m }]
emergency:
  allowed: [jo-platform]
  window: 2h
  reviewWithin: 24h
`,
    });
    const { gh, tokens, cli } = team;
    const reviewer = tokens['alex-reviewer'] as string;
    const until = (what: string, done: (s: ChangeStatus) => boolean) => team.until(1, what, done, reviewer);
    const log = () => readFileSync(join(deployed, 'log'), 'utf8').trim();
    try {
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
      const announced = await team.commentContaining(1, 'EMERGENCY change');
      expect(announced).toContain('EMERGENCY change acme/shop#1: being deployed without approval');
      expect(announced).toContain('**Declared by:** jo-platform');
      expect(announced).toContain('**Reason:** checkout is down');
      expect(announced).toContain(`foureyes approve acme/shop#1 --sha ${headSha}`);

      // The operator, on the machine that runs the stack.
      const status = await team.operatorCli(['status', 'acme/shop#1'], reviewer);
      expect(status.out).toMatch(/EMERGENCY .*review due/);

      // The retroactive review: an approving GitHub review of that commit by someone who took no part.
      await gh.control('POST', '/repos/acme/shop/pulls/1/reviews', { reviewer: 'alex-reviewer', event: 'APPROVE' });
      const reviewed = await until('reviewed', (s) => (s.emergencies ?? []).some((e) => e.state === 'reviewed'));
      expect(reviewed.emergencies?.[0]?.summary).toContain('alex-reviewer');
      expect(log()).toBe(`${headSha} acme/shop#1 lease=yes`);
    } finally {
      expect(await team.stop()).toBe(0);
    }
  }, 480_000);
});
