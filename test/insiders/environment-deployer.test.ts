// Code approved for staging that escapes its sandbox and takes whatever its deploy worker holds — the staging
// deployer's AppRole, as the bootstrap hands it to that worker — tries to mint a production lease token from
// OpenBao directly. Real OpenBao (the tests' `bao server -dev`), the real bootstrap.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import {
  bootstrapDeployers,
  policyName,
  statePath,
  stateMount,
  tokenRoleName,
  VaultAdmin,
  type DeployerBootstrap,
  type DeployerCredentials,
} from '../../src/dev/openbao.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'foureyes-env-deployer-'));
const prefix = `t19e${randomBytes(3).toString('hex')}`;
const address = inject('baoAddress');
const config = parseConfig(
  `
environments:
  - name: staging
    deploy: { run: "true", timeout: 60s }
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token } }
  - name: production
    deploy: { run: "true", timeout: 60s }
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token } }
repositories:
  - { name: acme/shop, remote: /nonexistent }
vault: { prefix: ${prefix} }
`,
  'environment-deployer-test.yaml',
);
let admin: VaultAdmin;
let upgrade: DeployerBootstrap;

async function bao(method: string, path: string, token: string | undefined, body?: unknown) {
  const response = await fetch(`${address}/v1/${path}`, {
    method,
    headers: token ? { 'X-Vault-Token': token } : {},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = (text ? JSON.parse(text) : {}) as { auth?: { client_token: string; policies: string[] } };
  return { status: response.status, json, auth: json.auth ?? { client_token: '', policies: [] } };
}

async function login(creds: { roleId: string; secretId: string }) {
  return bao('POST', 'auth/approle/login', undefined, { role_id: creds.roleId, secret_id: creds.secretId });
}

/** What a deploy worker's AppRole can do: mint a lease token for `environment` through its token role. */
async function mint(token: string, environment: string) {
  return bao('POST', `auth/token/create/${tokenRoleName(prefix, environment)}`, token, {
    policies: [policyName(prefix, environment)],
    ttl: '60s',
  });
}

/** The credentials file the bootstrap writes for one environment's deploy worker. */
const workerFile = (environment: string) =>
  JSON.parse(readFileSync(join(dataDir, `deployer-approle-${environment}.json`), 'utf8')) as DeployerCredentials;

beforeAll(async () => {
  admin = new VaultAdmin(address, inject('baoRootToken'));
  // As during an upgrade: the per-environment deployers and, for runs recorded before them, the shared one.
  upgrade = await bootstrapDeployers(admin, config, { dataDir, sharedDeployer: true });
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('one deployer identity per environment', () => {
  it('the staging deploy worker’s AppRole is refused a production lease token (403); production’s mints production’s', async () => {
    const staging = await login(workerFile('staging'));
    expect(staging.status).toBe(200);
    const stagingToken = staging.auth.client_token;
    expect(staging.auth.policies).toEqual(expect.arrayContaining([`${prefix}-deployer-staging`]));
    expect(staging.auth.policies).not.toContain(`${prefix}-deployer`);

    // The attack: production's lease, through production's token role, with staging's deployer identity.
    const attack = await mint(stagingToken, 'production');
    expect(attack.status).toBe(403);
    // …nor production's policy through staging's own role (the role allows staging's policy alone).
    const sideways = await bao('POST', `auth/token/create/${tokenRoleName(prefix, 'staging')}`, stagingToken, {
      policies: [policyName(prefix, 'production')],
    });
    expect(sideways.status).toBe(400);
    // …nor production's secrets, nor production's lease bookkeeping.
    expect((await bao('GET', `secret/data/${prefix}/production/db`, stagingToken)).status).toBe(403);
    const state = `${stateMount}/data/${statePath(prefix)}/leases/${'0'.repeat(40)}`;
    expect((await bao('POST', `${state}/production`, stagingToken, { data: { leases: [] } })).status).toBe(403);
    // Its own environment works: a staging lease, and staging's bookkeeping.
    expect((await mint(stagingToken, 'staging')).status).toBe(200);
    expect((await bao('POST', `${state}/staging`, stagingToken, { data: { leases: [] } })).status).toBe(200);

    const production = await login(workerFile('production'));
    expect(production.status).toBe(200);
    const productionToken = production.auth.client_token;
    const minted = await mint(productionToken, 'production');
    expect(minted.status).toBe(200);
    expect(minted.auth.policies).toContain(policyName(prefix, 'production'));
    expect((await mint(productionToken, 'staging')).status).toBe(403);
  });

  it('the secret IDs expire (secret_id_ttl) and the shared deployer, which can mint every environment’s, goes once nothing needs it', async () => {
    for (const environment of ['staging', 'production']) {
      const role = await admin.request<{ data: { secret_id_ttl: number } }>(
        'GET',
        `auth/approle/role/${prefix}-deployer-${environment}`,
      );
      expect(role.data.secret_id_ttl).toBeGreaterThan(0);
      expect(role.data.secret_id_ttl).toBeLessThanOrEqual(24 * 3600);
    }
    // The shared deployer of the old runs still mints production's: that is why it must not outlive them.
    const shared = await login(upgrade.shared as DeployerCredentials);
    expect(shared.status).toBe(200);
    expect((await mint(shared.auth.client_token, 'production')).status).toBe(200);

    // Old runs ended: bootstrap without it. Its AppRole and policy are gone, the environments' roles stay.
    const after = await bootstrapDeployers(admin, config, { dataDir, sharedDeployer: false });
    expect(after.shared).toBeUndefined();
    expect((await login(upgrade.shared as DeployerCredentials)).status).toBeGreaterThanOrEqual(400);
    const production = await login(after.environments.production as DeployerCredentials);
    expect((await mint(production.auth.client_token, 'production')).status).toBe(200);
  });
});
