// The audit record as an auditor receives it: rebuilt from history, sealed, verifiable, free of secrets.
// Changes run through the real workflow with the REAL deployer activities (token leases from OpenBao), so
// the secret scan looks for values that were really leased and really handed to a deploy command.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { createDeployActivities } from '../../src/activities/deploy.ts';
import { checkDocument, renderMarkdown, type AuditDocument } from '../../src/audit/document.ts';
import { changesInPeriod, exportChange, exportPeriod } from '../../src/audit/export.ts';
import { parseConfig } from '../../src/config/load.ts';
import { bootstrapOpenBao, VaultAdmin, type DeployerCredentials } from '../../src/dev/openbao.ts';
import { projectRoot } from '../../src/dev/paths.ts';
import { generateSigningKey, signClaim, signEvent } from '../../src/shared/approval-signature.ts';
import { deployQueue, zoneQueue } from '../../src/shared/task-queues.ts';
import type { ApprovalClaim, PullRequestEvent } from '../../src/shared/types.ts';
import {
  approvalSignal,
  approvalUpdate,
  pullRequestClosedSignal,
  pullRequestSignal,
} from '../../src/workflows/definitions.ts';
import { testClient, testWorker, uniqueQueue } from '../helpers/temporal.ts';
import { factsOf, signedEvent } from '../workflows/harness.ts';
import { GitHubModel, orchestratorDoubles } from '../workflows/orchestrator-doubles.ts';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'foureyes-audit-test-'));
// Deploy commands run sandboxed as a uid of their own: the folder they report into is writable for it.
chmodSync(work, 0o777);
const seen = join(work, 'leased-values');
// Each command has a uid of its own: the file they all append to is writable for every one.
writeFileSync(seen, '');
chmodSync(seen, 0o666);
const prefix = `aud${randomBytes(3).toString('hex')}`;
const repo = `acme-audit/shop${randomBytes(2).toString('hex')}`;
const approvalKey = generateSigningKey();
const auditKey = generateSigningKey();
const startedAt = new Date(Date.now() - 1000);
const github = new GitHubModel(join(work, 'github-model'));
let client: Client;
let queue: string;
let workers: Worker[] = [];
let running: Array<Promise<void>> = [];
let headSha = '';

function gitRepo(): { remote: string; sha: string } {
  const remote = join(work, 'remote');
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', remote, ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: work, GIT_CONFIG_NOSYSTEM: '1' },
    }).trim();
  execFileSync('git', ['init', '-q', remote]);
  writeFileSync(join(remote, 'app.txt'), 'v1\n');
  git('add', 'app.txt');
  git('-c', 'user.email=sam@example.com', '-c', 'user.name=Sam', 'commit', '-q', '-m', 'v1');
  return { remote, sha: git('rev-parse', 'HEAD') };
}

const configText = (remote: string) => `
people:
  - { github: sam-dev, emails: [sam@example.com] }
  - { github: alex-reviewer, emails: [alex@example.com] }
environments:
  - name: staging
    deploy:
      # The deploy command sees the leased token: it keeps a copy for the scan and even tries to print it.
      run: 'printf "%s\\n" "$VAULT_TOKEN" >> ${seen} && echo "deploying with token $VAULT_TOKEN"'
      timeout: 60s
      writable: [${JSON.stringify(work)}]
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token, VAULT_ADDR: addr } }
    approval: { required: 1, expiry: 1h }
  - name: production
    deploy:
      run: 'printf "%s\\n" "$VAULT_TOKEN" >> ${seen} && echo "production token $VAULT_TOKEN"'
      timeout: 60s
      writable: [${JSON.stringify(work)}]
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token } }
    approval: { required: 1, expiry: 1h }
repositories:
  - { name: ${repo}, remote: ${remote} }
vault: { prefix: ${prefix} }
`;

beforeAll(async () => {
  const git = gitRepo();
  headSha = git.sha;
  const config = parseConfig(configText(git.remote), 'audit-test.yaml');
  const creds = await bootstrapOpenBao(new VaultAdmin(inject('baoAddress'), inject('baoRootToken')), config);
  queue = uniqueQueue('audit');
  const quiet = { maxHeartbeatThrottleInterval: '200ms', defaultHeartbeatThrottleInterval: '200ms' } as const;
  workers = [
    await testWorker({
      taskQueue: queue,
      workflows: true,
      activities: {
        ...orchestratorDoubles(config, approvalKey.publicKey, github),
        async notifySlack() {
          return { posted: false };
        },
        // Teams is not configured here: the card tracker asks once per head and stops.
        async syncTeamsCard() {
          return { configured: false };
        },
        async mergePullRequest() {
          return { merged: false, reason: 'merge disabled' };
        },
      },
    }),
    await testWorker({
      taskQueue: zoneQueue(queue, 'checks'),
      activities: {
        async runChecks(input: { change: string; sha: string }) {
          return {
            sha: input.sha,
            passed: true,
            durationMs: 3,
            results: [{ name: 'unit', passed: true, exitCode: 0, durationMs: 3, timedOut: false, outputTail: 'ok' }],
          };
        },
      },
    }),
    // Each environment's deployer on its own queue with its own AppRole, as `foureyes up` runs them.
    ...(await Promise.all(
      config.environments.map((e) => {
        const own = creds.environments[e.name] as DeployerCredentials;
        return testWorker({
          taskQueue: deployQueue(queue, e.name),
          identity: 'deploy@audit-test',
          ...quiet,
          activities: createDeployActivities(() => config, {
            VAULT_ADDR: own.address,
            VAULT_ROLE_ID: own.roleId,
            VAULT_SECRET_ID: own.secretId,
          }),
        });
      }),
    )),
  ];
  running = workers.map((w) => w.run());
  client = await testClient();
});

afterAll(async () => {
  for (const w of workers) w.shutdown();
  await Promise.all(running);
  await client?.connection.close();
  rmSync(work, { recursive: true, force: true });
});

let n = 0;
const newChange = () => `${repo}#${(Date.now() % 100_000) * 10 + (n++ % 10)}`;

function opened(head: string): PullRequestEvent {
  return {
    kind: 'opened',
    deliveryId: randomUUID(),
    headSha: head,
    updatedAt: new Date().toISOString(),
    author: 'sam-dev',
    title: 'Faster checkout [click](http://evil) @everyone',
    baseRef: 'main',
    headRef: 'fast',
    commits: [
      {
        sha: head,
        author: { login: 'sam-dev', email: 'sam@example.com' },
        committer: { login: 'sam-dev', email: 'sam@example.com' },
        message: 'v1',
      },
    ],
  };
}

function claim(change: string, sha: string, person: string, extra: Partial<ApprovalClaim> = {}): ApprovalClaim {
  return {
    v: 1,
    change,
    sha,
    person,
    channel: 'cli',
    decision: 'approve',
    evidence: { githubLogin: person },
    at: new Date().toISOString(),
    nonce: randomUUID(),
    ...extra,
  };
}

async function open(change: string, extra: Record<string, unknown> = {}): Promise<WorkflowHandle> {
  const event = opened(headSha);
  github.set(change, factsOf(event));
  return client.workflow.signalWithStart('changeWorkflow', {
    workflowId: `change:${change}`,
    taskQueue: queue,
    args: [{ change, ...extra }],
    signal: pullRequestSignal,
    signalArgs: [signedEvent({ key: approvalKey }, change, event)],
  });
}

async function untilStage(handle: WorkflowHandle, stage: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const s = (await handle.query('status').catch(() => undefined)) as { stage?: string } | undefined;
    if (s?.stage === stage) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`change never reached stage ${stage}`);
}
const untilAwaiting = (handle: WorkflowHandle) => untilStage(handle, 'awaiting-approval');

const leasedValues = () =>
  existsSync(seen)
    ? readFileSync(seen, 'utf8')
        .split('\n')
        .filter((v) => v.length >= 8)
    : [];

describe('audit export', () => {
  let delivered: AuditDocument;
  let deliveredChange: string;

  it('lists exactly the events of a delivered change, with refusals, leases and the SoD summary', async () => {
    deliveredChange = newChange();
    const handle = await open(deliveredChange);
    await untilAwaiting(handle);
    const self = await handle.executeUpdate(approvalUpdate, {
      args: [signClaim(claim(deliveredChange, headSha, 'sam-dev'), approvalKey)],
    });
    expect(self.counted).toBe(false);
    // Someone with access to Temporal sends an approval straight to the workflow, with a forged signature.
    await handle.signal(approvalSignal, {
      claim: claim(deliveredChange, headSha, 'alex-reviewer'),
      signature: 'ab'.repeat(64),
    });
    const ok = await handle.executeUpdate(approvalUpdate, {
      args: [signClaim(claim(deliveredChange, headSha, 'alex-reviewer', { comment: 'LGTM *ship it*' }), approvalKey)],
    });
    expect(ok.counted).toBe(true);
    // Without merge configured, a delivered change stays open until its pull request closes.
    await untilStage(handle, 'delivered');
    // Exported while the pull request is still open, the record already says what the change achieved.
    const whileOpen = await exportChange(client, deliveredChange, {});
    expect(whileOpen.summary.outcome).toBe('delivered (pull request still open)');
    expect(renderMarkdown(whileOpen)).toMatch(/^# Change .*: delivered \(pull request still open\)$/m);
    expect(
      whileOpen.entries
        .filter((e) => e.kind === 'approval-attempt')
        .map((e) => e.summary)
        .join('\n'),
    ).not.toMatch(/(refused|counted): (refused|counted):/);
    await handle.signal(
      pullRequestClosedSignal,
      signEvent(
        {
          deliveryId: randomUUID(),
          merged: true,
          closedBy: 'alex-reviewer',
          at: new Date().toISOString(),
          change: handle.workflowId.replace(/^change:/, ''),
        },
        approvalKey,
      ),
    );
    expect(await handle.result()).toMatchObject({ outcome: 'delivered' });

    delivered = await exportChange(client, deliveredChange, { signingKey: auditKey.privateKey });
    // What the workflow decided on is in the record: the policy read at the start and again before each deploy,
    // the pull request as the orchestrator read it from GitHub, and each environment's lane taken and given back.
    expect(delivered.entries.map((e) => e.kind)).toEqual([
      'run-started',
      'pull-request',
      'policy',
      'pull-request-read',
      'checks',
      'approval-attempt',
      'approval-attempt',
      'approval-attempt',
      'policy',
      'lane-acquired',
      'deploy',
      'revoke',
      'lane-released',
      'policy',
      'lane-acquired',
      'deploy',
      'revoke',
      'lane-released',
      'closed',
      'completed',
    ]);
    const attempts = delivered.entries
      .filter((e) => e.kind === 'approval-attempt')
      .map((e) => e.data as Record<string, unknown>);
    expect(attempts.map((a) => [a.person, a.deliveredAs, a.counted])).toEqual([
      ['sam-dev', 'update', false],
      ['alex-reviewer', 'signal', false],
      ['alex-reviewer', 'update', true],
    ]);
    expect(attempts[0]?.reason).toMatch(/^sam-dev is an initiator \(author of the pull request/);
    expect(attempts[1]?.reason).toMatch(/signature is not from a trusted gateway key/);
    const deploys = delivered.entries
      .filter((e) => e.kind === 'deploy')
      .map(
        (e) =>
          e.data as {
            environment: string;
            leases: Array<{ leaseId: string; ttlSeconds: number; revokedAt?: string; accessor?: string }>;
            executor: string;
          },
      );
    expect(deploys.map((d) => d.environment)).toEqual(['staging', 'production']);
    for (const d of deploys) {
      expect(d.executor).toBe('deploy@audit-test');
      expect(d.leases.length).toBeGreaterThan(0);
      for (const lease of d.leases) {
        expect(lease.ttlSeconds).toBeGreaterThan(0);
        expect(lease.ttlSeconds).toBeLessThanOrEqual(300);
        expect(Date.parse(lease.revokedAt ?? '')).toBeGreaterThan(0);
      }
    }
    expect(delivered.summary).toMatchObject({
      change: deliveredChange,
      outcome: 'delivered',
      headSha,
      approvers: ['alex-reviewer'],
      refusedAttempts: 2,
      environmentsDeployed: ['staging', 'production'],
      dutiesSegregated: true,
      segregationFindings: [],
    });
    expect(Object.keys(delivered.summary.initiators)).toEqual(['sam-dev']);
    expect(checkDocument(delivered, [auditKey.publicKey]).ok).toBe(true);

    const md = renderMarkdown(delivered);
    expect(md).toContain(`# Change ${deliveredChange}: delivered`);
    expect(md).toContain('**The three duties were held by different parties**');
    expect(md).toContain('| approve (reviewed the exact commit) | alex-reviewer |');
    // Untrusted text cannot become a link or a mention in the Markdown.
    expect(md).not.toContain('[click](http://evil)');
    expect(md).not.toContain('@everyone');
  });

  it('contains no leased secret value in any format', async () => {
    const values = leasedValues();
    expect(values.length).toBeGreaterThanOrEqual(2);
    const json = JSON.stringify(delivered);
    const md = renderMarkdown(delivered);
    const history = JSON.stringify(await client.workflow.getHandle(`change:${deliveredChange}`).fetchHistory());
    for (const value of values) {
      expect(json).not.toContain(value);
      expect(md).not.toContain(value);
      expect(history).not.toContain(value);
    }
  });

  it('verify-audit accepts the file and names the entry when one byte changes', async () => {
    const file = join(work, 'delivered.json');
    writeFileSync(file, JSON.stringify(delivered, null, 2));
    const cli = join(projectRoot(), 'bin/foureyes.js');
    const good = await run(process.execPath, [cli, 'verify-audit', file, '--public-key', auditKey.publicKey]);
    expect(good.stdout).toContain(`${file}: OK — ${delivered.entries.length} entries, chain intact`);

    const target = delivered.entries.findIndex((e) => e.kind === 'deploy');
    const text = readFileSync(file, 'utf8');
    const summary = delivered.entries[target]?.summary as string;
    const altered = summary.replace('staging', 'stagind');
    expect(altered).not.toBe(summary);
    writeFileSync(file, text.replace(JSON.stringify(summary), JSON.stringify(altered)));
    const bad = await run(process.execPath, [cli, 'verify-audit', file]).then(
      () => undefined,
      (error: { code: number; stdout: string }) => error,
    );
    expect(bad?.code).toBe(1);
    expect(bad?.stdout).toContain(`hash chain broken at entry ${target} (deploy)`);
    expect(bad?.stdout).toContain('was altered');

    writeFileSync(file, '{"format": "something else"}');
    const foreign = await run(process.execPath, [cli, 'verify-audit', file]).catch(
      (error: { stdout: string }) => error,
    );
    expect(foreign.stdout).toContain('not a foureyes audit export');
  });

  it('exports a change that continued-as-new as one record', async () => {
    const change = newChange();
    const handle = await open(change, { historyEventLimit: 30 });
    await untilAwaiting(handle);
    // Refused attempts make history grow until the workflow continues as new, more than once.
    for (let i = 0; i < 12; i++)
      await handle.executeUpdate(approvalUpdate, { args: [signClaim(claim(change, headSha, 'sam-dev'), approvalKey)] });
    await handle.signal(
      pullRequestClosedSignal,
      signEvent(
        {
          deliveryId: randomUUID(),
          merged: false,
          closedBy: 'sam-dev',
          at: new Date().toISOString(),
          change: handle.workflowId.replace(/^change:/, ''),
        },
        approvalKey,
      ),
    );
    await client.workflow.getHandle(`change:${change}`).result();
    const doc = await exportChange(client, change, { signingKey: auditKey.privateKey });
    expect(doc.summary.runIds.length).toBeGreaterThan(1);
    expect(doc.entries.filter((e) => e.kind === 'continued-as-new')).toHaveLength(doc.summary.runIds.length - 1);
    const attempts = doc.entries.filter((e) => e.kind === 'approval-attempt');
    expect(attempts).toHaveLength(12);
    expect(attempts.every((e) => (e.data as { reason: string }).reason.startsWith('sam-dev is an initiator'))).toBe(
      true,
    );
    expect(doc.entries.filter((e) => e.kind === 'pull-request')).toHaveLength(1);
    expect(doc.summary.outcome).toBe('abandoned');
    // Asking for any run of the chain gives the same record.
    const fromFirst = await exportChange(client, change, { runId: doc.summary.runIds[0] });
    expect(fromFirst.entries.map((e) => e.hash)).toEqual(doc.entries.map((e) => e.hash));
  });

  it('bulk export of a period returns exactly the changes in it', async () => {
    const expected = [`change:${deliveredChange}`];
    // Changes of this repository started in the window; visibility is eventually consistent, so wait for it.
    let ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      ids = await changesInPeriod(client, repo, startedAt);
      if (ids.length >= 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(ids).toHaveLength(2);
    expect(ids).toContain(expected[0]);
    // A window that ends before the tests started holds none of them.
    expect(await changesInPeriod(client, repo, new Date(startedAt.getTime() - 3_600_000), startedAt)).toEqual([]);
    const progress: Array<[number, number]> = [];
    const docs: AuditDocument[] = [];
    for await (const doc of exportPeriod(client, repo, startedAt, undefined, {
      signingKey: auditKey.privateKey,
      onProgress: (d, t) => progress.push([d, t]),
    }))
      docs.push(doc);
    expect(docs.map((d) => d.workflowId).sort()).toEqual(ids);
    expect(progress).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
    ]);
    for (const doc of docs) expect(checkDocument(doc, [auditKey.publicKey]).ok).toBe(true);
  });
});
