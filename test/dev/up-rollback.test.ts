// Rollback as a team uses it: `foureyes up` against the GitHub stand-in as an outside service, two pull requests
// reviewed on GitHub and delivered to staging by the real deployer (OpenBao lease, sandboxed command), then
// `foureyes rollback` by a reviewer: staging runs the first release again, deployed by the pipeline with a
// lease of its own, `foureyes environments` shows it as a rollback, and the rolled-back change's status says
// so. A target that was never delivered there is refused with the reason and deploys nothing.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChangeStatus } from '../../src/shared/types.ts';
import { sharedFolder, startTeamStack } from '../helpers/team-stack.ts';
import { scheduledActivities } from '../helpers/temporal.ts';

const work = mkdtempSync(join(tmpdir(), 'foureyes-rollback-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('foureyes rollback', () => {
  it('takes staging back to the previous release through the pipeline, and refuses a target never delivered there', async () => {
    // Each command runs as a sandbox uid of its own: the log they all append to is writable by any.
    const deployed = sharedFolder(work, 'deployed');
    // Each deploy appends what it deployed and whether it held a leased token.
    const deploy = `#!/bin/sh\necho "$FOUREYES_SHA $FOUREYES_CHANGE lease=\${VAULT_TOKEN:+yes}" >> ${deployed}/log\n`;
    const team = await startTeamStack({
      work,
      people: ['sam-dev', 'alex-reviewer'],
      files: { 'README.md': '# shop\n', 'deploy.sh': deploy },
      config: (remote) => `
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
    remote: ${JSON.stringify(remote)}
    checks: [{ name: unit, run: "true", timeout: 1m }]
`,
    });
    const { gh, tokens } = team;
    const reviewer = tokens['alex-reviewer'] as string;
    const cli = (args: string[]) => team.cli(args, reviewer);
    const statusOf = team.statusOf;
    const until = (n: number, what: string, done: (s: ChangeStatus) => boolean) => team.until(n, what, done, reviewer);
    try {
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
      // #2 followed #1's SHA: the lane's look-up asked GitHub's compare, so the lane scheduled no compare task.
      expect(await laneActivities(team.up.ports.temporal)).not.toContain('compareCommits');

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
      const comment = await team.commentContaining(2, 'foureyes environments');
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
      const rolledBack = (await statusOf(2, reviewer))?.environments.find((e) => e.name === 'staging');
      expect(rolledBack).toMatchObject({
        state: 'deployed',
        rolledBack: { sha: first, change: 'acme/shop#1', by: 'alex-reviewer' },
      });
      const id = rolledBack?.rolledBack?.rollback as string;
      expect(id).toMatch(/^rollback:acme\/shop@staging:/);
      expect((await statusOf(1, reviewer))?.environments.find((e) => e.name === 'staging')?.rolledBack).toBe(undefined);
      // `foureyes status` on the operator's machine (Temporal directly) shows the same.
      const status = await team.operatorCli(['status', 'acme/shop#2'], reviewer);
      expect(status.stdout).toContain(
        `deployed ${second.slice(0, 7)}, since rolled back to ${first.slice(0, 7)} (acme/shop#1) by alex-reviewer (${id})`,
      );
    } finally {
      expect(await team.stop()).toBe(0);
    }
  }, 480_000);
});

/** The activities every staging lane of this stack scheduled, by type. */
async function laneActivities(port: number): Promise<string[]> {
  const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
  try {
    const client = new Client({ connection, namespace: 'foureyes' });
    const names = await scheduledActivities(
      client,
      `WorkflowType = 'laneWorkflow' AND WorkflowId STARTS_WITH 'lane:acme/shop@staging'`,
    );
    expect(names, 'the staging lane ran its look-ups').toContain('lookUpLaneCaller');
    return names;
  } finally {
    await connection.close();
  }
}
