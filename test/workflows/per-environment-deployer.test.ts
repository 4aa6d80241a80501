// One deployer identity per environment, end to end: the real change workflow, on the real Temporal dev server,
// delivers a change to staging and production through the REAL deploy zone (ZONES.deploy, its caller check, its
// sandboxed deploy command, token leases from the real OpenBao), one worker per environment on its own queue
// `<queue>-deploy-<env>`, each holding only its environment's AppRole — and nothing polls the shared
// `<queue>-deploy`. History shows where each step was scheduled; the run is saved for replay.test.ts.
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { parseConfig } from '../../src/config/load.ts';
import { bootstrapDeployers, VaultAdmin, type DeployerCredentials } from '../../src/dev/openbao.ts';
import { generateSigningKey, signClaim } from '../../src/shared/approval-signature.ts';
import { patchOf, PER_ENVIRONMENT_DEPLOYER_PATCH } from '../../src/shared/patches.ts';
import { deployQueue, zoneQueue } from '../../src/shared/task-queues.ts';
import { DEPLOY_ENVIRONMENT_ENV, ZONES } from '../../src/workers/zones.ts';
import { approvalSignal } from '../../src/workflows/definitions.ts';
import { testClient, testWorker, testWorkerConnection, uniqueQueue } from '../helpers/temporal.ts';
import type { DeployStepInput } from '../activities/fixtures/deploy-workflows.ts';
import { claim, encodeHistory, newChange, openChange, opened, waitForStatus } from './harness.ts';
import { GitHubModel, orchestratorDoubles } from './orchestrator-doubles.ts';

const work = mkdtempSync(join(tmpdir(), 'foureyes-env-deployer-test-'));
// Deploy commands run sandboxed as a uid of their own: the ledger they append to is writable for each.
chmodSync(work, 0o777);
const ledger = join(work, 'ledger');
writeFileSync(ledger, '');
chmodSync(ledger, 0o666);
const prefix = `ped${randomBytes(3).toString('hex')}`;
const key = generateSigningKey();
const github = new GitHubModel(join(work, 'github-model'));
let client: Client;
let queue: string;
let head = '';
let workers: Worker[] = [];
let running: Array<Promise<void>> = [];

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
      run: 'echo "$FOUREYES_ENVIRONMENT $FOUREYES_SHA" >> ${ledger}'
      timeout: 60s
      writable: [${JSON.stringify(work)}]
    verify: { run: "true", timeout: 30s }
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token, VAULT_ADDR: addr } }
    approval: { required: 1, expiry: 1h }
  - name: production
    deploy:
      run: 'echo "$FOUREYES_ENVIRONMENT $FOUREYES_SHA" >> ${ledger}'
      timeout: 60s
      writable: [${JSON.stringify(work)}]
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token } }
    approval: { required: 1, expiry: 1h }
repositories:
  - { name: acme/shop, remote: ${remote}, environments: [staging, production] }
vault: { prefix: ${prefix} }
`;

beforeAll(async () => {
  const git = gitRepo();
  head = git.sha;
  const config = parseConfig(configText(git.remote), 'per-environment-deployer-test.yaml');
  // No shared deployer: nothing here was recorded before the per-environment deployers.
  const deployers = await bootstrapDeployers(new VaultAdmin(inject('baoAddress'), inject('baoRootToken')), config, {
    sharedDeployer: false,
  });
  queue = uniqueQueue('envdeploy');
  const quiet = { maxHeartbeatThrottleInterval: '200ms', defaultHeartbeatThrottleInterval: '200ms' } as const;
  workers = [
    await testWorker({
      taskQueue: queue,
      workflows: true,
      activities: {
        ...orchestratorDoubles(config, key.publicKey, github),
        async notifySlack() {
          return { posted: false };
        },
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
        async runChecks(input: { sha: string }) {
          return {
            sha: input.sha,
            passed: true,
            durationMs: 1,
            results: [{ name: 'unit', passed: true, exitCode: 0, durationMs: 1, timedOut: false, outputTail: 'ok' }],
          };
        },
      },
    }),
    // The deploy zone as `foureyes up` runs it: one worker per environment, with that environment's AppRole alone.
    ...(await Promise.all(
      config.environments.map(async (e) => {
        const own = deployers.environments[e.name] as DeployerCredentials;
        return testWorker({
          taskQueue: deployQueue(queue, e.name),
          identity: `deploy-${e.name}@per-environment-test`,
          ...quiet,
          activities: await ZONES.deploy.createActivities(() => config, {
            VAULT_ADDR: own.address,
            VAULT_ROLE_ID: own.roleId,
            VAULT_SECRET_ID: own.secretId,
            [DEPLOY_ENVIRONMENT_ENV]: e.name,
          }),
        });
      }),
    )),
  ];
  running = workers.map((w) => w.run());
  client = await testClient();
}, 60_000);

afterAll(async () => {
  for (const w of workers) w.shutdown();
  await Promise.all(running);
  await client?.connection.close();
  rmSync(work, { recursive: true, force: true });
});

it('delivers to staging and production, each environment’s steps on its own deploy queue with its own AppRole', async () => {
  const started = Date.now();
  const change = newChange('acme/shop');
  const handle = await openChange({ client, taskQueue: queue, key, github }, change, opened(head));
  await waitForStatus(handle, (s) => s.stage === 'awaiting-approval', 30_000);
  await handle.signal(approvalSignal, signClaim(claim(change, head, 'alex-reviewer'), key));
  const done = await waitForStatus(handle, (s) => s.environments.every((e) => e.state === 'deployed'), 90_000);
  expect(done.environments.map((e) => `${e.name}:${e.state}`)).toEqual(['staging:deployed', 'production:deployed']);
  // Each deploy really ran, once, with its environment's lease.
  expect(readFileSync(ledger, 'utf8').trim().split('\n').sort()).toEqual([`production ${head}`, `staging ${head}`]);
  for (const e of done.environments) expect(e.deploy?.leases.length).toBeGreaterThan(0);

  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  expect(events.some((e) => patchOf(e) === PER_ENVIRONMENT_DEPLOYER_PATCH)).toBe(true);
  const scheduled = events.flatMap((e) => {
    const a = e.activityTaskScheduledEventAttributes;
    if (!a || !['deploy', 'verify', 'revokeOutstanding'].includes(a.activityType?.name ?? '')) return [];
    const input = defaultPayloadConverter.fromPayload(a.input?.payloads?.[0] ?? {}) as { environment: string };
    return [`${a.activityType?.name}:${input.environment}@${a.taskQueue?.name}`];
  });
  expect(scheduled.sort()).toEqual(
    [
      `deploy:staging@${deployQueue(queue, 'staging')}`,
      `verify:staging@${deployQueue(queue, 'staging')}`,
      `revokeOutstanding:staging@${deployQueue(queue, 'staging')}`,
      `deploy:production@${deployQueue(queue, 'production')}`,
      `revokeOutstanding:production@${deployQueue(queue, 'production')}`,
    ].sort(),
  );
  // Each step ran on its environment's own deployer (the worker identity the server recorded).
  const startedBy = events.flatMap((e) => (e.activityTaskStartedEventAttributes?.identity ? [e] : []));
  const identities = new Set(startedBy.map((e) => e.activityTaskStartedEventAttributes?.identity));
  expect(identities).toContain('deploy-staging@per-environment-test');
  expect(identities).toContain('deploy-production@per-environment-test');

  if (process.env.FOUREYES_WRITE_HISTORIES === '1') {
    const { runId } = await handle.describe();
    writeFileSync(
      join(import.meta.dirname, 'histories', 'v2-per-environment-deployer.json'),
      encodeHistory(handle.workflowId, runId, history),
    );
  }
  console.log(`per-environment delivery took ${Date.now() - started} ms`);
}, 120_000);

it('a deployer serves its own environment alone: production’s step sent to the staging queue is refused and never runs', async () => {
  // A workflow of someone else's (the deploy fixture, on a queue of its own) sends a production deploy to staging's
  // deployer: it refuses it before anything else, whoever the caller is.
  const otherQueue = uniqueQueue('envdeploy-other');
  const other = await Worker.create({
    connection: await testWorkerConnection(),
    namespace: inject('temporalNamespace'),
    taskQueue: otherQueue,
    workflowsPath: join(import.meta.dirname, '..', 'activities', 'fixtures', 'deploy-workflows.ts'),
  });
  const otherRun = other.run();
  try {
    const before = readFileSync(ledger, 'utf8');
    const change = newChange('acme/shop');
    const input: DeployStepInput = {
      deployQueue: deployQueue(queue, 'staging'),
      change,
      environment: 'production',
      sha: head,
      idempotencyKey: `${change}@production@${head}`,
      maxAttempts: 1,
    };
    const failure = await client.workflow
      .execute('deployStepWorkflow', {
        workflowId: `change:${change}`,
        taskQueue: otherQueue,
        args: [input],
        workflowExecutionTimeout: '1 minute',
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const activity = (failure as WorkflowFailedError).cause;
    expect(activity).toBeInstanceOf(ActivityFailure);
    const cause = (activity as ActivityFailure).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.type).toBe('UntrustedCaller');
    expect(cause.message).toMatch(/this deployer serves staging alone; it was asked for production/);
    expect(readFileSync(ledger, 'utf8')).toBe(before);
  } finally {
    other.shutdown();
    await otherRun;
  }
}, 120_000);
