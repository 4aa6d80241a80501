// The deployer's activities against real OpenBao, real PostgreSQL and real Temporal: leases are created,
// used by the deploy command, and revoked on every path (success, failure, timeout, cancellation, a killed
// worker process); no leased value reaches history, logs or errors.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDeployActivities } from '../../src/activities/deploy.ts';
import { LeaseManager, leaseStatePath } from '../../src/activities/leases.ts';
import { DeployerVault } from '../../src/activities/vault-client.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { FoureyesConfig } from '../../src/config/schema.ts';
import type { LeaseRecord } from '../../src/shared/types.ts';
import { bootstrapOpenBao, VaultAdmin, type DeployerCredentials } from '../../src/dev/openbao.ts';
import { projectRoot } from '../../src/dev/paths.ts';
import { startProcess, type ManagedProcess } from '../../src/dev/process.ts';
import { zoneQueue } from '../../src/shared/task-queues.ts';
import { ZONES } from '../../src/workers/zones.ts';
import type { DeployStepInput, DeployStepResult } from './fixtures/deploy-workflows.ts';
import { startPostgres, type PostgresCluster } from '../helpers/postgres.ts';
import {
  testClient,
  testWorker,
  testWorkerConnection,
  uniquePullNumberBase,
  uniqueQueue,
} from '../helpers/temporal.ts';

// Everything the deployer logs in this process, captured for the secret scan.
const logs: string[] = [];
const errors: string[] = [];
/** Every leased value seen by a deploy command (it writes them to files the test reads). */
const leakedCandidates = new Set<string>();
const handles: WorkflowHandle[] = [];

const prefix = `t4d${randomBytes(3).toString('hex')}`;
const work = mkdtempSync(join(tmpdir(), 'foureyes-deploy-test-'));
const secretsDir = join(work, 'seen');
/** Makes the sleeps of this file's commands findable in /proc from outside their sandbox. */
const mark = `${process.pid % 10000}${Date.now() % 1000}`;
let pg: PostgresCluster;
let admin: VaultAdmin;
let creds: DeployerCredentials;
let config: FoureyesConfig;
let configFile: string;
let sha: string;
let queue: string;
let workers: Worker[] = [];
let running: Promise<unknown>;
let workflowBundle: { code: string };
const children: ManagedProcess[] = [];

function yaml(pgPort: number, psql: string, remote: string): string {
  const pgConn = `${psql} -X -q -h 127.0.0.1 -p ${pgPort} -d postgres -v ON_ERROR_STOP=1`;
  const tokenLease = `    lease: { kind: token, ttl: 10m, env: { VAULT_TOKEN: token, VAULT_ADDR: addr } }`;
  return `
environments:
  - name: staging
    deploy:
      run: >-
        test -f app.txt &&
        printf '%s\\n%s\\n' "$PGUSER" "$PGPASSWORD" >> ${secretsDir}/values &&
        echo "connecting as $PGUSER with password $PGPASSWORD" &&
        ${pgConn} -c "insert into deploys(who, key) values (current_user, '$FOUREYES_IDEMPOTENCY_KEY')"
      timeout: 60s
      writable: [${JSON.stringify(work)}]
    verify:
      run: >-
        printf '%s\\n' "$PGPASSWORD" >> ${secretsDir}/values &&
        test "$(${pgConn} -tA -c "select count(*) from deploys where key = '$FOUREYES_IDEMPOTENCY_KEY'")" = 1
      timeout: 30s
      writable: [${JSON.stringify(work)}]
    verifyWithLease: true
    lease:
      kind: dynamic
      path: database/creds/${prefix}-app
      ttl: 10m
      env: { PGUSER: username, PGPASSWORD: password }
  - name: production
    deploy: { run: "echo deploying", timeout: 60s }
${tokenLease}
  - name: broken
    deploy:
      run: 'printf "%s\\n" "$VAULT_TOKEN" >> ${secretsDir}/values; echo "token is $VAULT_TOKEN"; echo boom >&2; exit 3'
      timeout: 60s
      writable: [${JSON.stringify(work)}]
${tokenLease}
  - name: slow
    deploy:
      run: 'printf "%s\\n" "$VAULT_TOKEN" >> ${secretsDir}/values; touch ${work}/slow.started; sleep 60.${mark}1'
      timeout: 2s
      writable: [${JSON.stringify(work)}]
${tokenLease}
  - name: hang
    deploy:
      run: 'printf "%s\\n" "$VAULT_TOKEN" >> ${secretsDir}/values; touch ${work}/hang.started; sleep 300.${mark}2'
      timeout: 5m
      writable: [${JSON.stringify(work)}]
${tokenLease}
  - name: crash
    deploy:
      run: 'printf "%s\\n" "$VAULT_TOKEN" >> ${secretsDir}/values; echo started >> ${work}/crash.started; sleep 12.${mark}3; echo "$FOUREYES_IDEMPOTENCY_KEY" >> ${work}/crash.ledger'
      timeout: 60s
      writable: [${JSON.stringify(work)}]
${tokenLease}
repositories:
  - name: acme/shop
    remote: ${remote}
vault:
  prefix: ${prefix}
`;
}

function gitRepo(): { remote: string; sha: string } {
  const remote = join(work, 'remote');
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', remote, ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', GIT_CONFIG_NOSYSTEM: '1', HOME: work },
    }).trim();
  execFileSync('git', ['init', '-q', remote]);
  writeFileSync(join(remote, 'app.txt'), 'v1\n');
  git('add', 'app.txt');
  git('-c', 'user.email=sam@example.com', '-c', 'user.name=Sam', 'commit', '-q', '-m', 'v1');
  return { remote, sha: git('rev-parse', 'HEAD') };
}

function collectValues(): void {
  const file = join(secretsDir, 'values');
  if (!existsSync(file)) return;
  for (const line of readFileSync(file, 'utf8').split('\n'))
    if (line.trim().length >= 3) leakedCandidates.add(line.trim());
}

function input(environment: string, n: number, extra: Partial<DeployStepInput> = {}): DeployStepInput {
  const change = `acme/shop#${n}`;
  return {
    change,
    environment,
    sha,
    idempotencyKey: `${change}@${environment}@${sha}`,
    deployQueue: zoneQueue(queue, 'deploy'),
    ...extra,
  };
}

async function start(args: DeployStepInput, asChange?: { taskQueue: string }): Promise<WorkflowHandle> {
  const client = await testClient();
  const handle = asChange
    ? await client.workflow.start('changeWorkflow', {
        taskQueue: asChange.taskQueue,
        workflowId: `change:${args.change}`,
        args: [args],
      })
    : await client.workflow.start('deployStepWorkflow', {
        taskQueue: queue,
        workflowId: `deploy-test-${randomBytes(4).toString('hex')}`,
        args: [args],
      });
  handles.push(handle);
  return handle;
}

async function failureOf(handle: WorkflowHandle): Promise<Error> {
  const error = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  let cause = (error as WorkflowFailedError).cause as Error;
  // The workflow fails with the activity's failure: ActivityFailure wrapping the activity's own error.
  if (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  let text = `${(error as Error).message}\n${cause.message}\n${cause.stack ?? ''}`;
  if (cause instanceof ApplicationFailure) text += JSON.stringify(cause.details);
  errors.push(text);
  return cause;
}

/** The accessor no longer names a token, and a dynamic lease is unknown to OpenBao. */
async function expectRevoked(
  leases: Array<{ kind: string; leaseId: string; accessor?: string; revokedAt?: string }>,
): Promise<void> {
  expect(leases.length).toBeGreaterThan(0);
  for (const lease of leases) {
    expect(lease.revokedAt, lease.leaseId).toBeTruthy();
    if (lease.kind === 'dynamic')
      await expect(admin.request('PUT', 'sys/leases/lookup', { lease_id: lease.leaseId })).rejects.toThrow(/HTTP 400/);
    else
      await expect(admin.request('POST', 'auth/token/lookup-accessor', { accessor: lease.accessor })).rejects.toThrow(
        /HTTP 400|HTTP 403/,
      );
  }
}

async function tokenIsDead(token: string): Promise<void> {
  await expect(admin.request('POST', 'auth/token/lookup', { token })).rejects.toThrow(/HTTP 4\d\d/);
}

/** Running processes (zombies excluded) whose command line contains `needle`, from /proc. */
function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').includes(needle))
        out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function lastToken(): string {
  const lines = readFileSync(join(secretsDir, 'values'), 'utf8').trim().split('\n');
  return lines[lines.length - 1] as string;
}

beforeAll(async () => {
  // Capture the deployer's logs (activity logger and Core) before anything creates the runtime.
  Runtime.install({
    logger: new DefaultLogger('INFO', (entry) => {
      logs.push(`${entry.message} ${JSON.stringify(entry.meta ?? {})}`);
    }),
  });
  execFileSync('mkdir', ['-p', secretsDir]);
  // The folder the test's deploy commands report into is writable for their sandboxes' fresh uids
  // (the configured `writable` folder of a deploy step must be, like any shared drop folder).
  for (const dir of [work, secretsDir]) chmodSync(dir, 0o777);
  for (const file of [join(secretsDir, 'values'), join(work, 'crash.started'), join(work, 'crash.ledger')]) {
    writeFileSync(file, '');
    chmodSync(file, 0o666);
  }
  pg = await startPostgres();
  await pg.query('create table deploys (id serial primary key, who text not null, key text not null)');
  const repo = gitRepo();
  sha = repo.sha;
  configFile = join(work, 'foureyes.yaml');
  writeFileSync(configFile, yaml(pg.port, pg.psql, repo.remote));
  config = parseConfig(readFileSync(configFile, 'utf8'), configFile);

  admin = new VaultAdmin(inject('baoAddress'), inject('baoRootToken'));
  creds = await bootstrapOpenBao(admin, config);
  // The administrator's part: the database secrets engine for the staging role.
  await admin.request('POST', `database/config/${prefix}-pg`, {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${pg.port}/postgres?sslmode=disable`,
    username: pg.superuser,
    password: pg.password,
    allowed_roles: [`${prefix}-app`],
  });
  await admin.request('POST', `database/roles/${prefix}-app`, {
    db_name: `${prefix}-pg`,
    creation_statements: [
      `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
      `GRANT SELECT, INSERT ON deploys TO "{{name}}";`,
      `GRANT USAGE ON SEQUENCE deploys_id_seq TO "{{name}}";`,
    ],
    default_ttl: '1h',
    max_ttl: '2h',
  });
  for (const env of ['staging', 'production'])
    await admin.request('POST', `secret/data/${prefix}/${env}/app`, { data: { marker: `${env}-only` } });

  queue = uniqueQueue('deploy-test');
  workflowBundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./fixtures/deploy-workflows.ts', import.meta.url)),
    logger: new DefaultLogger('WARN'),
  });
  const env = { VAULT_ADDR: creds.address, VAULT_ROLE_ID: creds.roleId, VAULT_SECRET_ID: creds.secretId };
  workers = [
    await Worker.create({
      connection: await testWorkerConnection(),
      namespace: inject('temporalNamespace'),
      taskQueue: queue,
      workflowBundle,
    }),
    await testWorker({ taskQueue: zoneQueue(queue, 'deploy'), activities: createDeployActivities(() => config, env) }),
  ];
  running = Promise.all(workers.map((w) => w.run()));
});

afterAll(async () => {
  for (const w of workers) w.shutdown();
  await running;
  await Promise.all(children.map((c) => c.stop('SIGKILL', 1000)));
  await pg?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('deployer activities', () => {
  it('leases PostgreSQL credentials that the deploy command writes with, then drops the role and revokes the lease', async () => {
    const handle = await start(input('staging', 1, { verify: true }));
    const result = (await handle.result()) as DeployStepResult;
    collectValues();
    expect(result.deploy.status).toBe('deployed');
    expect(result.verify?.passed).toBe(true);

    const [username, password] = readFileSync(join(secretsDir, 'values'), 'utf8').split('\n') as [string, string];
    expect(username).toMatch(/^v-/);
    expect(password.length).toBeGreaterThan(8);
    // The row was written by the leased role...
    const rows = await pg.query<{ who: string }>('select who from deploys where key = $1', [
      input('staging', 1).idempotencyKey,
    ]);
    expect(rows.map((r) => r.who)).toEqual([username]);
    // ...which is gone now, as are the verify step's role and every lease.
    const roles = await pg.query<{ rolname: string }>("select rolname from pg_roles where rolname like 'v-%'");
    expect(roles).toEqual([]);
    const dynamic = [...result.deploy.leases, ...(result.verify?.leases ?? [])];
    expect(dynamic.filter((l) => l.kind === 'dynamic')).toHaveLength(2);
    expect(dynamic.filter((l) => l.kind === 'token')).toHaveLength(2);
    for (const l of dynamic) expect(l.ttlSeconds).toBeLessThanOrEqual(90 + 30);
    await expectRevoked(dynamic);
    // Output went to the record redacted.
    expect(result.deploy.outputTail).toContain('connecting as [redacted] with password [redacted]');
    // Nothing stays outstanding.
    const state = await admin.request<{ data: { data: { leases: unknown[] } } }>(
      'GET',
      leaseStatePath(config, 'acme/shop#1', 'staging'),
    );
    expect(state.data.data.leases).toEqual([]);
  });

  it('a failing deploy command is a result: its exit code, redacted output and revoked leases come back', async () => {
    const handle = await start(input('broken', 2));
    const result = (await handle.result()) as DeployStepResult;
    collectValues();
    // An outcome of the change, not a fault of the pipeline: returned, not thrown, so nothing retries it.
    expect(result.deploy.status).toBe('failed');
    expect(result.deploy.exitCode).toBe(3);
    expect(result.deploy.failure).toBe('exited with code 3');
    expect(result.deploy.outputTail).toContain('boom');
    expect(result.deploy.outputTail).toContain('token is [redacted]');
    expect(result.deploy.durationMs).toBeGreaterThan(0);
    expect(result.deploy.leases.length).toBeGreaterThan(0);
    await expectRevoked(result.deploy.leases);
    await tokenIsDead(lastToken());
  });

  it('a deploy that outlives its timeout is killed, reported as timed out, and still revokes', async () => {
    const handle = await start(input('slow', 3));
    const result = (await handle.result()) as DeployStepResult;
    collectValues();
    expect(result.deploy.status).toBe('failed');
    expect(result.deploy.timedOut).toBe(true);
    expect(result.deploy.failure).toMatch(/timed out after 2s/);
    expect(existsSync(join(work, 'slow.started'))).toBe(true);
    expect(processesWith(`sleep 60.${mark}1`)).toEqual([]);
    await tokenIsDead(lastToken());
    await expectRevoked(result.deploy.leases);
  });

  it('cancelling the workflow mid-deploy kills the command and revokes', async () => {
    const handle = await start(input('hang', 4, { heartbeatTimeoutMs: 3000 }));
    const hang = `sleep 300.${mark}2`;
    await waitFor(
      'the deploy command to start',
      () => existsSync(join(work, 'hang.started')) && processesWith(hang).length > 0,
    );
    const token = lastToken();
    collectValues();
    await handle.cancel();
    const cause = await failureOf(handle);
    expect(cause).toBeInstanceOf(CancelledFailure);
    // `sleep 300` ran in the command's sandbox: nothing of it is left.
    expect(processesWith(hang)).toEqual([]);
    await tokenIsDead(token);
    const vault = new DeployerVault(creds);
    expect(await new LeaseManager(vault, config).outstanding('acme/shop#4', 'hang')).toEqual([]);
  });

  it('the staging lease cannot read production paths', async () => {
    const leases = new LeaseManager(new DeployerVault(creds), config);
    const lease = await leases.issue({ change: 'acme/shop#5', environment: 'production', stepTimeoutMs: 10_000 });
    const staging = await leases.issue({ change: 'acme/shop#5', environment: 'staging', stepTimeoutMs: 10_000 });
    const revoked: LeaseRecord[] = [];
    try {
      const read = async (token: string, env: string) => {
        const response = await fetch(`${creds.address}/v1/secret/data/${prefix}/${env}/app`, {
          headers: { 'X-Vault-Token': token },
        });
        return response.status;
      };
      const stagingToken = staging.secrets[0] as string;
      expect(await read(stagingToken, 'staging')).toBe(200);
      expect(await read(stagingToken, 'production')).toBe(403);
      expect(await read(lease.env.VAULT_TOKEN as string, 'production')).toBe(200);
      expect(await read(lease.env.VAULT_TOKEN as string, 'staging')).toBe(403);
      // TTL: at most the step's timeout plus the margin.
      for (const r of [...lease.records, ...staging.records]) expect(r.ttlSeconds).toBeLessThanOrEqual(40);
      // The deployer's own AppRole token cannot read either environment's secrets.
      const deployerRead = await new DeployerVault(creds).read(`secret/data/${prefix}/production/app`).then(
        () => 'read',
        (e: Error) => e.message,
      );
      expect(deployerRead).toMatch(/HTTP 403/);
    } finally {
      revoked.push(
        ...(await leases.revokeAll('acme/shop#5', 'production', lease.records)),
        ...(await leases.revokeAll('acme/shop#5', 'staging', staging.records)),
      );
    }
    for (const s of [...lease.secrets, ...staging.secrets]) leakedCandidates.add(s);
    await expectRevoked(revoked);
    await tokenIsDead(lease.env.VAULT_TOKEN as string);
  });

  it('a deployer worker process killed mid-deploy: the next worker revokes the orphaned lease first and deploys once', async () => {
    const crashQueue = uniqueQueue('deploy-crash');
    const workerEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: work,
      FOUREYES_CONFIG: configFile,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: inject('temporalNamespace'),
      FOUREYES_TASK_QUEUE: crashQueue,
      VAULT_ADDR: creds.address,
      VAULT_ROLE_ID: creds.roleId,
      VAULT_SECRET_ID: creds.secretId,
    };
    const spawnWorker = (n: number) => {
      const proc = startProcess(process.execPath, ['--import', 'tsx', 'src/workers/deployer.ts'], {
        name: `deployer-${n}`,
        cwd: projectRoot(),
        env: workerEnv,
        logFile: join(work, `deployer-${n}.log`),
      });
      children.push(proc);
      return proc;
    };
    const first = spawnWorker(1);
    // The spawned deployer is the real zone, caller check included: the workflow is the change's own, on
    // the orchestrator queue of that deployer.
    const orchestrator = await Worker.create({
      connection: await testWorkerConnection(),
      namespace: inject('temporalNamespace'),
      taskQueue: crashQueue,
      workflowBundle,
    });
    workers.push(orchestrator);
    const orchestratorRun = orchestrator.run();
    running = running.then(() => orchestratorRun);
    const args = input('crash', uniquePullNumberBase() + 6, {
      deployQueue: zoneQueue(crashQueue, 'deploy'),
      // Long enough that a starved worker's late heartbeat does not start a second attempt before the kill.
      heartbeatTimeoutMs: 8000,
      maxAttempts: 5,
    });
    const handle = await start(args, { taskQueue: crashQueue });
    const started = join(work, 'crash.started');
    await waitFor(
      'the first attempt to start its command',
      // `started` exists from the start (empty, writable for the sandbox's uid), and the shell's own command line
      // names the sleep before it has written its token: wait for the line it writes after the token.
      () =>
        (readFileSync(started, 'utf8').includes('started') && processesWith(`sleep 12.${mark}3`).length > 0) ||
        undefined,
      60_000,
    );
    // The command sleeps 12 s: long enough that it is still running when the kill comes on a loaded machine (at
    // 4 s it sometimes had finished, and revoked its own lease, by then).
    const firstToken = lastToken();

    // A real crash: SIGKILL to the worker process alone (not its group).
    process.kill(first.child.pid as number, 'SIGKILL');
    await first.exited;
    // The command's sandbox dies with its worker, so it cannot race the retry.
    await waitFor(
      'the orphaned command to die',
      () => processesWith(`sleep 12.${mark}3`).length === 0 || undefined,
      // A loaded machine can take seconds to schedule the kill; a survivor racing the retry would show as a
      // second deploy below.
      15_000,
    );
    // Its lease is still alive until the next worker revokes it.
    expect(await admin.request('POST', 'auth/token/lookup', { token: firstToken }).then(() => 'alive')).toBe('alive');

    spawnWorker(2);
    const result = (await handle.result()) as DeployStepResult;
    collectValues();
    expect(result.deploy.status).toBe('deployed');
    expect(readFileSync(join(work, 'crash.ledger'), 'utf8').trim().split('\n')).toEqual([args.idempotencyKey]);
    expect(readFileSync(started, 'utf8').trim().split('\n')).toHaveLength(2);
    await tokenIsDead(firstToken);
    // The report names the orphaned lease (revoked first) and its own (revoked after).
    expect(result.deploy.leases).toHaveLength(2);
    await expectRevoked(result.deploy.leases);
    expect(Date.parse(result.deploy.leases[0]?.revokedAt as string)).toBeLessThan(
      Date.parse(result.deploy.leases[1]?.issuedAt as string),
    );

    // Once deployed, the same idempotency key never runs the command again.
    const again = await start({ ...args }, { taskQueue: crashQueue });
    const second = (await again.result()) as DeployStepResult;
    expect(second.deploy.status).toBe('already-deployed');
    expect(readFileSync(join(work, 'crash.ledger'), 'utf8').trim().split('\n')).toHaveLength(1);
    expect(readFileSync(started, 'utf8').trim().split('\n')).toHaveLength(2);
    for (const n of [1, 2]) logs.push(readFileSync(join(work, `deployer-${n}.log`), 'utf8'));
  });

  it('the checks worker holds no Vault credential', async () => {
    expect(ZONES.checks.allowedEnv.filter((k) => k.startsWith('VAULT') || k.includes('APPROLE'))).toEqual([]);
    const checksQueue = uniqueQueue('deploy-checks');
    // Started the way `foureyes up` starts it: its zone's variables only, from an environment that has the deployer's.
    const full: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      FOUREYES_CONFIG: configFile,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: inject('temporalNamespace'),
      FOUREYES_TASK_QUEUE: checksQueue,
      VAULT_ADDR: creds.address,
      VAULT_ROLE_ID: creds.roleId,
      VAULT_SECRET_ID: creds.secretId,
    };
    const base = ['PATH', 'FOUREYES_CONFIG', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'FOUREYES_TASK_QUEUE'];
    const allowed = new Set([...base, ...ZONES.checks.allowedEnv]);
    const env = Object.fromEntries(Object.entries(full).filter(([k]) => allowed.has(k)));
    const proc = startProcess(process.execPath, ['--import', 'tsx', 'src/workers/checks.ts'], {
      name: 'checks',
      cwd: projectRoot(),
      env,
      logFile: join(work, 'checks.log'),
    });
    children.push(proc);
    const client = await testClient();
    const info = (await client.workflow.execute('zoneInfoWorkflow', {
      taskQueue: queue,
      workflowId: `zone-info-${randomBytes(4).toString('hex')}`,
      args: [{ queue: zoneQueue(checksQueue, 'checks'), zone: 'checks' }],
    })) as { zone: string; env: string[]; hasVaultCredential: boolean };
    await proc.stop();
    expect(info.zone).toBe('checks');
    expect(info.hasVaultCredential).toBe(false);
    expect(info.env.filter((k) => k.startsWith('VAULT'))).toEqual([]);
    const checksActivities = await ZONES.checks.createActivities(() => config, env);
    expect(Object.keys(checksActivities)).not.toContain('deploy');
  });

  it('no leased value appears in any history, log or error of these runs', async () => {
    collectValues();
    // Every deploy above leased something: the scan has values to look for.
    expect(leakedCandidates.size).toBeGreaterThanOrEqual(8);
    const histories: string[] = [];
    for (const handle of handles) {
      histories.push(historyJson(await handle.fetchHistory()));
    }
    const corpus = [...histories, ...logs, ...errors].join('\n');
    expect(corpus).toContain('[redacted]');
    // Sanity: payloads were decoded (the change reference lives only inside payloads) and the scan would
    // see a value there: the accessor of a lease is recorded in the reports.
    expect(corpus).toContain('"change":"acme/shop#1"');
    expect(corpus).toMatch(/"accessor":"[A-Za-z0-9]{8,}"/);
    for (const value of leakedCandidates)
      expect(corpus.includes(value), `a leased value leaked (${value.slice(0, 4)}…)`).toBe(false);
  });
});

/**
 * The complete history as exported (JSON, payload bytes as base64), followed by every base64 string of it
 * decoded, so that a value inside a payload (input, result, heartbeat details, failure details) is seen too.
 */
function historyJson(history: unknown): string {
  const json = JSON.stringify(history);
  const decoded: string[] = [];
  const walk = (value: unknown) => {
    if (typeof value === 'string') {
      if (value.length >= 8 && /^[A-Za-z0-9+/]+=*$/.test(value))
        decoded.push(Buffer.from(value, 'base64').toString('utf8'));
    } else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(JSON.parse(json));
  return `${json}\n${decoded.join('\n')}`;
}
