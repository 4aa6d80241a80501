// The deployer's Vault client against the real OpenBao dev server: AppRole login, renewal before expiry,
// clean retryable errors when OpenBao is unreachable, and no credential in any error.
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDeployActivities } from '../../src/activities/deploy.ts';
import { appRoleFromEnv, DeployerVault, VaultUnavailableError } from '../../src/activities/vault-client.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { FoureyesConfig } from '../../src/config/schema.ts';
import { bootstrapOpenBao, VaultAdmin, type DeployerCredentials } from '../../src/dev/openbao.ts';
import { freePort } from '../../src/dev/process.ts';

const prefix = `t4v${randomBytes(3).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'foureyes-vault-test-'));
let creds: DeployerCredentials;
let config: FoureyesConfig;

beforeAll(async () => {
  config = parseConfig(
    `environments:\n  - name: staging\n    deploy: { run: "true" }\nrepositories:\n  - name: acme/shop\n    remote: ${dir}\nvault:\n  prefix: ${prefix}\n`,
  );
  creds = await bootstrapOpenBao(new VaultAdmin(inject('baoAddress'), inject('baoRootToken')), config);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('deployer Vault client', () => {
  it('reads its AppRole from the environment or a file, and says what is missing', () => {
    expect(appRoleFromEnv({ VAULT_ADDR: 'http://x', VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's' })).toEqual({
      address: 'http://x',
      roleId: 'r',
      secretId: 's',
    });
    const file = join(dir, 'approle.json');
    writeFileSync(file, JSON.stringify({ address: 'http://y', roleId: 'r2', secretId: 's2' }));
    expect(appRoleFromEnv({ FOUREYES_VAULT_APPROLE_FILE: file, VAULT_NAMESPACE: 'team' })).toEqual({
      address: 'http://y',
      roleId: 'r2',
      secretId: 's2',
      namespace: 'team',
    });
    expect(() => appRoleFromEnv({})).toThrow(/VAULT_ROLE_ID and VAULT_SECRET_ID, or FOUREYES_VAULT_APPROLE_FILE/);
  });

  it('logs in with AppRole and renews its token before it expires', async () => {
    let now = Date.now();
    const vault = new DeployerVault(creds, () => now);
    const self = await vault.read<{ policies: string[]; ttl: number }>('auth/token/lookup-self');
    expect(self.data?.policies).toContain(`${prefix}-deployer`);
    const firstExpiry = vault.tokenExpiresAt;
    expect(firstExpiry - now).toBeGreaterThan(10 * 60_000);
    // 18 minutes later (token TTL 20m): the next call renews first, and the call succeeds.
    now += 18 * 60_000;
    await vault.read('auth/token/lookup-self');
    expect(vault.tokenExpiresAt).toBeGreaterThan(firstExpiry);
    // Past the expiry we believed in: it logs in again rather than fail.
    now = vault.tokenExpiresAt + 1000;
    await expect(vault.read('auth/token/lookup-self')).resolves.toBeTruthy();
    expect(vault.tokenExpiresAt).toBeGreaterThan(now);
  });

  it('OpenBao unreachable: a retryable failure that says what it waits for, with no credential in it', async () => {
    const port = await freePort();
    const dead = { address: `http://127.0.0.1:${port}`, roleId: creds.roleId, secretId: creds.secretId };
    const error = await new DeployerVault(dead).read('auth/token/lookup-self').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VaultUnavailableError);
    expect((error as Error).message).toMatch(/waiting for OpenBao at http:\/\/127\.0\.0\.1:\d+ to be reachable/);

    const activities = createDeployActivities(() => config, {
      VAULT_ADDR: dead.address,
      VAULT_ROLE_ID: creds.roleId,
      VAULT_SECRET_ID: creds.secretId,
    });
    const env = new MockActivityEnvironment({ attempt: 1 });
    const failure = await env
      .run(activities.deploy, {
        change: 'acme/shop#1',
        environment: 'staging',
        sha: 'a'.repeat(40),
        idempotencyKey: `acme/shop#1@staging@${'a'.repeat(40)}`,
      })
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).nonRetryable).toBe(false);
    expect((failure as ApplicationFailure).type).toBe('VaultUnavailable');
    const text = `${(failure as Error).message}\n${(failure as Error).stack ?? ''}`;
    for (const secret of [creds.secretId, creds.roleId]) expect(text.includes(secret)).toBe(false);
  });

  it('a configuration the trusted config does not know is refused without retries', async () => {
    const activities = createDeployActivities(() => config, {
      VAULT_ADDR: creds.address,
      VAULT_ROLE_ID: creds.roleId,
      VAULT_SECRET_ID: creds.secretId,
    });
    const env = new MockActivityEnvironment();
    const failure = (await env
      .run(activities.deploy, {
        change: 'acme/shop#1',
        environment: 'production',
        sha: 'a'.repeat(40),
        idempotencyKey: 'k',
      })
      .catch((e: unknown) => e)) as ApplicationFailure;
    expect(failure.type).toBe('UnknownEnvironment');
    expect(failure.nonRetryable).toBe(true);
  });
});
