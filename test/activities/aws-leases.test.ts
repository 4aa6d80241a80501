// AWS for the deploy step against moto in server mode (a real AWS emulator, installed pinned by
// `foureyes tools`), the shared OpenBao dev server and real Temporal:
// - kind aws-secret: the deployer reads a Secrets Manager secret with its own AWS identity and hands the
//   fields to the deploy command; nothing of it reaches history, logs or errors; an endpoint that refuses
//   makes the step wait and retry, saying it waits for AWS;
// - kind aws: OpenBao's AWS secrets engine (the plugin `foureyes tools` builds, registered by sha256 in a
//   dev server of this file's own) assumes a role in moto; the deploy command gets the STS credentials as
//   AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, moto knows them as that role during the
//   step, the lease is revoked after it, and no part of them reaches history or logs; a role the engine
//   does not have makes the step wait and retry, saying it waits for AWS; an OpenBao without the engine
//   makes the bootstrap name the missing plugin.
import type { WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDeployActivities } from '../../src/activities/deploy.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { FoureyesConfig } from '../../src/config/schema.ts';
import { bootstrapOpenBao, VaultAdmin } from '../../src/dev/openbao.ts';
import {
  AwsEngineMissingError,
  awsEnginePlugin,
  bootstrapAwsEngine,
  startOpenBaoWithAwsPlugin,
} from '../../src/dev/openbao-aws.ts';
import type { OpenBaoServer } from '../../src/dev/openbao.ts';
import { freePort, startProcess, waitUntil, type ManagedProcess } from '../../src/dev/process.ts';
import { ensureMoto, motoDir } from '../../src/dev/tools.ts';
import { zoneQueue } from '../../src/shared/task-queues.ts';
import type { DeployStepInput, DeployStepResult } from './fixtures/deploy-workflows.ts';
import { testClient, testWorker, testWorkerConnection, uniqueQueue } from '../helpers/temporal.ts';

const logs: string[] = [];
const prefix = `t4a${randomBytes(3).toString('hex')}`;
const work = mkdtempSync(join(tmpdir(), 'foureyes-aws-test-'));
chmodSync(work, 0o777);
const secretValue = `db-pass-${randomBytes(12).toString('hex')}`;
const handles: WorkflowHandle[] = [];
let moto: ManagedProcess;
let motoUrl: string;
let admin: VaultAdmin;
/** The shared dev server of the test run: OpenBao 2.x as installed, without the AWS engine. */
let sharedAdmin: VaultAdmin;
let bao: OpenBaoServer;
const roleArn = 'arn:aws:iam::123456789012:role/shop-deployer';
let config: FoureyesConfig;
let sha: string;
let queue: string;
let workers: Worker[] = [];
let running: Promise<unknown>;

function yaml(remote: string, closedPort: number): string {
  // The deploy commands run sandboxed, as a uid of their own with the system's toolchain (curl signs the STS
  // call with SigV4, node reads moto's answer); the folder they report into is writable for that uid.
  return `
environments:
  - name: secrets
    deploy:
      run: 'printf "%s\\n" "$DB_PASSWORD" > ${work}/seen; echo "deploying with $DB_PASSWORD"; env > ${work}/env'
      timeout: 60s
      writable: [${JSON.stringify(work)}]
    lease: { kind: aws-secret, secret: shop/db, region: us-east-1, endpoint: "${motoUrl}", env: { DB_PASSWORD: password, DB_USER: username } }
  - name: secrets-down
    deploy: { run: "true", timeout: 60s }
    lease: { kind: aws-secret, secret: shop/db, region: us-east-1, endpoint: "http://127.0.0.1:${closedPort}" }
  - name: cloud
    deploy:
      run: 'curl -sS --fail --aws-sigv4 "aws:amz:us-east-1:sts" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-security-token: $AWS_SESSION_TOKEN" --data "Action=GetCallerIdentity&Version=2011-06-15" ${motoUrl}/ > ${work}/aws-identity.xml && node ${work}/whoami.mjs ${work}/aws-identity.xml ${work}/aws-seen; env > ${work}/aws-env'
      timeout: 60s
      writable: [${JSON.stringify(work)}]
    lease: { kind: aws, role: ${prefix}-deployer, ttl: 15m, region: us-east-1 }
  - name: cloud-norole
    deploy: { run: "true", timeout: 60s }
    lease: { kind: aws, role: ${prefix}-nobody, ttl: 15m, region: us-east-1 }
repositories:
  - name: acme/shop
    remote: ${remote}
vault:
  prefix: ${prefix}
`;
}

beforeAll(async () => {
  Runtime.install({
    logger: new DefaultLogger(
      'INFO',
      (entry) => void logs.push(`${entry.message} ${JSON.stringify(entry.meta ?? {})}`),
    ),
  });
  const port = await freePort();
  motoUrl = `http://127.0.0.1:${port}`;
  moto = startProcess(ensureMoto(), ['-H', '127.0.0.1', '-p', String(port)], {
    name: 'moto',
    logFile: join(work, 'moto.log'),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work },
  });
  await waitUntil('moto server', async () => (await fetch(`${motoUrl}/moto-api/`)).ok, {
    timeoutMs: 60_000,
    process: moto,
  });

  // The deployer's own AWS identity (an instance or task role in production); moto accepts any key.
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: 'AKIADEPLOYERTEST0001',
    AWS_SECRET_ACCESS_KEY: 'deployer-own-secret',
    AWS_REGION: 'us-east-1',
  });
  // The administrator's part: the secret in Secrets Manager.
  execFileSync(
    join(motoDir(), 'bin', 'python'),
    [
      '-c',
      `import boto3, json, sys; boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1').create_secret(Name='shop/db', SecretString=json.dumps({'username': 'shop', 'password': sys.argv[2]}))`,
      motoUrl,
      secretValue,
    ],
    { env: { ...process.env } },
  );

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
  sha = git('rev-parse', 'HEAD');
  config = parseConfig(yaml(remote, await freePort()), 'aws.yaml');

  // The deploy command: who AWS (moto) says these credentials are, and what it was handed.
  writeFileSync(
    join(work, 'whoami.mjs'),
    [
      "import { readFileSync, writeFileSync } from 'node:fs';",
      "const arn = /<Arn>([^<]+)<\\/Arn>/.exec(readFileSync(process.argv[2], 'utf8'))?.[1];",
      "const env = Object.fromEntries(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION'].map((k) => [k, process.env[k]]));",
      'writeFileSync(process.argv[3], JSON.stringify({ arn, ...env }));',
      "console.log('deploying as', arn, 'with', process.env.AWS_ACCESS_KEY_ID);",
      '',
    ].join('\n'),
  );
  // The administrator's part in AWS: the role the engine assumes.
  execFileSync(
    join(motoDir(), 'bin', 'python'),
    [
      '-c',
      `import boto3, json, sys; boto3.client('iam', endpoint_url=sys.argv[1], region_name='us-east-1').create_role(RoleName='shop-deployer', AssumeRolePolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': {'AWS': 'arn:aws:iam::123456789012:root'}, 'Action': 'sts:AssumeRole'}]}))`,
      motoUrl,
    ],
    { env: { ...process.env } },
  );

  sharedAdmin = new VaultAdmin(inject('baoAddress'), inject('baoRootToken'));
  bao = await startOpenBaoWithAwsPlugin({ logFile: join(work, 'openbao.log') });
  admin = new VaultAdmin(bao.address, bao.rootToken);
  const creds = await bootstrapOpenBao(admin, config);
  // ... and in OpenBao: the plugin (by sha256), the engine's root credential and its role.
  await bootstrapAwsEngine(admin, {
    plugin: awsEnginePlugin(),
    root: { accessKeyId: 'AKIAENGINEROOT000001', secretAccessKey: 'engine-root-secret', region: 'us-east-1' },
    stsEndpoint: motoUrl,
    iamEndpoint: motoUrl,
    roles: [{ name: `${prefix}-deployer`, credentialType: 'assumed_role', roleArns: [roleArn] }],
  });
  queue = uniqueQueue('aws-test');
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./fixtures/deploy-workflows.ts', import.meta.url)),
    logger: new DefaultLogger('WARN'),
  });
  workers = [
    await Worker.create({
      connection: await testWorkerConnection(),
      namespace: inject('temporalNamespace'),
      taskQueue: queue,
      workflowBundle,
    }),
    await testWorker({
      taskQueue: zoneQueue(queue, 'deploy'),
      activities: createDeployActivities(() => config, {
        VAULT_ADDR: creds.address,
        VAULT_ROLE_ID: creds.roleId,
        VAULT_SECRET_ID: creds.secretId,
      }),
    }),
  ];
  running = Promise.all(workers.map((w) => w.run()));
}, 600_000);

afterAll(async () => {
  await Promise.all(handles.map((h) => h.terminate('test over').catch(() => undefined)));
  for (const w of workers) w.shutdown();
  await running;
  await bao?.process.stop();
  await moto?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function start(environment: string, maxAttempts = 2): Promise<WorkflowHandle> {
  const change = `acme/shop#${Math.floor(Math.random() * 1e6)}`;
  const args: DeployStepInput = {
    change,
    environment,
    sha,
    idempotencyKey: `${change}@${environment}@${sha}`,
    deployQueue: zoneQueue(queue, 'deploy'),
    maxAttempts,
  };
  const handle = await (
    await testClient()
  ).workflow.start('deployStepWorkflow', {
    taskQueue: queue,
    workflowId: `aws-test-${randomBytes(4).toString('hex')}`,
    args: [args],
  });
  handles.push(handle);
  return handle;
}

/** The deploy activity's last failure once Temporal has retried it at least once (what status shows as retrying). */
async function retryingFailure(handle: WorkflowHandle): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pending = (await handle.describe()).raw.pendingActivities?.find((a) => a.activityType?.name === 'deploy');
    if (pending && (pending.attempt ?? 0) > 1 && pending.lastFailure?.message) return pending.lastFailure.message;
    if (Date.now() > deadline) throw new Error('the deploy step never retried');
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('AWS Secrets Manager (kind aws-secret)', () => {
  it("reads the secret with the deployer's own AWS identity and hands its fields to the deploy command, and to nothing else", async () => {
    const handle = await start('secrets');
    const result = (await handle.result()) as DeployStepResult;
    expect(result.deploy.status).toBe('deployed');
    expect(readFileSync(join(work, 'seen'), 'utf8').trim()).toBe(secretValue);
    const commandEnv = readFileSync(join(work, 'env'), 'utf8');
    expect(commandEnv).toContain('DB_USER=shop');
    // The deployer's own AWS credential stays in the deployer.
    expect(commandEnv).not.toMatch(/AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|deployer-own-secret/);
    expect(result.deploy.outputTail).toContain('deploying with [redacted]');
    const history = JSON.stringify((await handle.fetchHistory()).events);
    const corpus = [history, ...logs].join('\n');
    expect(corpus).not.toContain(secretValue);
    expect(corpus).not.toContain(Buffer.from(secretValue).toString('base64').slice(0, 20));
  });

  it('an endpoint that refuses: the step waits and retries, and says it waits for AWS', async () => {
    const handle = await start('secrets-down', 50);
    const failure = await retryingFailure(handle);
    expect(failure).toMatch(/waiting for AWS: Secrets Manager did not return "shop\/db" in us-east-1/);
    expect(failure).not.toContain(secretValue);
    await handle.terminate('seen retrying');
  });
});

describe("AWS STS credentials from OpenBao's AWS secrets engine (kind aws)", () => {
  it('mints STS credentials of the role for the deploy step only, which moto knows as that role; the lease is revoked after the step; none of it reaches history or logs', async () => {
    const handle = await start('cloud');
    const result = (await handle.result()) as DeployStepResult;
    expect(result.deploy.status).toBe('deployed');
    const seen = JSON.parse(readFileSync(join(work, 'aws-seen'), 'utf8')) as {
      arn: string;
      AWS_ACCESS_KEY_ID: string;
      AWS_SECRET_ACCESS_KEY: string;
      AWS_SESSION_TOKEN: string;
      AWS_REGION: string;
    };
    // moto answered get-caller-identity for these credentials with the assumed role's session.
    expect(seen.arn).toMatch(/^arn:aws:sts::123456789012:assumed-role\/shop-deployer\/\S+$/);
    expect(seen.AWS_ACCESS_KEY_ID).toMatch(/^ASIA/);
    expect(seen.AWS_SECRET_ACCESS_KEY.length).toBeGreaterThan(20);
    expect(seen.AWS_SESSION_TOKEN.length).toBeGreaterThan(20);
    expect(seen.AWS_REGION).toBe('us-east-1');
    // Not the deployer's own AWS identity, nor the engine's root credential.
    const commandEnv = readFileSync(join(work, 'aws-env'), 'utf8');
    expect(commandEnv).not.toMatch(/AKIADEPLOYERTEST0001|deployer-own-secret|AKIAENGINEROOT000001|engine-root-secret/);
    expect(result.deploy.outputTail).toContain('with [redacted]');

    // The engine's lease for the credentials was revoked after the step (OpenBao no longer knows it).
    const awsLeases = result.deploy.leases.filter((l) => l.path === `aws/sts/${prefix}-deployer`);
    expect(awsLeases).toHaveLength(1);
    for (const lease of result.deploy.leases) expect(lease.revokedAt, lease.leaseId).toBeTruthy();
    await expect(admin.request('PUT', 'sys/leases/lookup', { lease_id: awsLeases[0]?.leaseId })).rejects.toThrow(
      /HTTP 400/,
    );

    const history = JSON.stringify((await handle.fetchHistory()).events);
    const corpus = [history, ...logs].join('\n');
    for (const value of [seen.AWS_ACCESS_KEY_ID, seen.AWS_SECRET_ACCESS_KEY, seen.AWS_SESSION_TOKEN]) {
      expect(corpus).not.toContain(value);
      expect(corpus).not.toContain(value.slice(0, 16));
    }
  });

  it('a role the engine does not have: the step waits and retries, and status names AWS', async () => {
    const handle = await start('cloud-norole', 50);
    const failure = await retryingFailure(handle);
    expect(failure).toMatch(
      /waiting for AWS: OpenBao's AWS secrets engine could not mint credentials at aws\/sts\/t4a\w+-nobody/,
    );
    await handle.terminate('seen retrying');
  });

  it('the bootstrap names the missing plugin when OpenBao has no AWS engine', async () => {
    await expect(
      bootstrapAwsEngine(sharedAdmin, {
        mount: `${prefix}-aws`,
        root: { accessKeyId: 'AKIAROOT', secretAccessKey: 'root-secret', region: 'us-east-1' },
        stsEndpoint: motoUrl,
        iamEndpoint: motoUrl,
        roles: [],
      }),
    ).rejects.toThrow(AwsEngineMissingError);
    await expect(
      bootstrapAwsEngine(sharedAdmin, {
        mount: `${prefix}-aws`,
        root: { accessKeyId: 'AKIAROOT', secretAccessKey: 'root-secret', region: 'us-east-1' },
        roles: [],
      }),
    ).rejects.toThrow(/openbao-plugin-secrets-aws/);
  });
});
