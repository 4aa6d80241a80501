// OpenBao dev server for the local stack and the tests, and the bootstrap a Vault administrator would do:
// one policy per environment that allows only that environment's paths, a token role per environment,
// an AppRole for the deployer worker, and the secrets engines the lease paths name. The root token is
// used here alone; workers log in with AppRole.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FoureyesConfig } from '../config/schema.ts';
import { deployerPolicyName, policyName, stateMount, statePath, tokenRoleName } from '../shared/openbao-layout.ts';
import { ensureTool } from './tools.ts';
import { freePort, startProcess, waitUntil, type ManagedProcess } from './process.ts';

export interface OpenBaoServer {
  address: string;
  rootToken: string;
  process: ManagedProcess;
}

export async function startOpenBao(
  options: { logFile?: string; echo?: boolean | 'problems'; port?: number; pidFile?: string } = {},
): Promise<OpenBaoServer> {
  const bin = ensureTool('bao');
  const port = options.port ?? (await freePort());
  const rootToken = `root-${randomBytes(12).toString('hex')}`;
  const proc = startProcess(
    bin,
    ['server', '-dev', `-dev-root-token-id=${rootToken}`, `-dev-listen-address=127.0.0.1:${port}`, '-log-level=warn'],
    {
      name: 'openbao',
      logFile: options.logFile,
      echo: options.echo,
      // The dev server prints its root token; keep it out of the environment of anything else.
      // Never log the root token or unseal key the dev server prints.
      redact: (line) => line.replace(/(Root Token|Unseal Key):.*/, '$1: [redacted]').replace(rootToken, '[redacted]'),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
      pidFile: options.pidFile,
    },
  );
  const address = `http://127.0.0.1:${port}`;
  // Ready means: this server knows the root token made here. Another OpenBao on the port (an orphan of an
  // earlier start) answers 403, and is never bootstrapped as if it were ours.
  await waitUntil(
    `OpenBao dev server on ${address}`,
    async () =>
      (await fetch(`${address}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': rootToken } })).status === 200,
    {
      timeoutMs: 30_000,
      process: proc,
    },
  );
  return { address, rootToken, process: proc };
}

/** Minimal Vault HTTP client for the administrator's bootstrap (root token). */
export class VaultAdmin {
  constructor(
    readonly address: string,
    private readonly token: string,
    private readonly namespace?: string,
  ) {}

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { 'X-Vault-Token': this.token, 'Content-Type': 'application/json' };
    if (this.namespace) headers['X-Vault-Namespace'] = this.namespace;
    const response = await fetch(`${this.address}/v1/${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`OpenBao ${method} ${path}: HTTP ${response.status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  async mounts(): Promise<Record<string, unknown>> {
    const data = await this.request<{ data?: Record<string, unknown> }>('GET', 'sys/mounts');
    return data.data ?? {};
  }
}

export interface DeployerCredentials {
  address: string;
  roleId: string;
  secretId: string;
  namespace?: string;
}

export { deployerPolicyName, policyName, stateMount, statePath, tokenRoleName };

export function environmentPolicy(config: FoureyesConfig, envName: string): string {
  const prefix = config.vault.prefix;
  const env = config.environments.find((e) => e.name === envName);
  if (!env) throw new Error(`unknown environment ${envName}`);
  const paths = new Set<string>([`secret/data/${prefix}/${env.name}/*`, ...env.lease.paths]);
  const rules = [...paths].map((p) => `path "${p}" {\n  capabilities = ["read"]\n}`);
  if (env.lease.kind === 'dynamic' && env.lease.path)
    rules.push(`path "${env.lease.path}" {\n  capabilities = ["read", "update"]\n}`);
  // STS credentials of the AWS secrets engine (bootstrapAwsEngine in openbao-aws.ts configures the engine).
  if (env.lease.kind === 'aws' && env.lease.role)
    rules.push(`path "${env.lease.mount}/sts/${env.lease.role}" {\n  capabilities = ["read", "update"]\n}`);
  return rules.join('\n\n');
}

export function deployerPolicy(config: FoureyesConfig): string {
  const prefix = config.vault.prefix;
  const rules = config.environments.map(
    (env) => `path "auth/token/create/${tokenRoleName(prefix, env.name)}" {\n  capabilities = ["update"]\n}`,
  );
  rules.push(
    `path "auth/token/revoke-accessor" {\n  capabilities = ["update"]\n}`,
    `path "auth/token/lookup-accessor" {\n  capabilities = ["update"]\n}`,
    `path "sys/leases/revoke" {\n  capabilities = ["update"]\n}`,
    `path "sys/leases/lookup" {\n  capabilities = ["update"]\n}`,
    // Bookkeeping without secret values: outstanding lease IDs and completed deploys, for crash recovery.
    `path "${stateMount}/data/${statePath(prefix)}/*" {\n  capabilities = ["create", "read", "update", "delete"]\n}`,
    `path "${stateMount}/metadata/${statePath(prefix)}/*" {\n  capabilities = ["list", "read", "delete"]\n}`,
  );
  return rules.join('\n\n');
}

export async function bootstrapOpenBao(
  admin: VaultAdmin,
  config: FoureyesConfig,
  options: { dataDir?: string } = {},
): Promise<DeployerCredentials> {
  const prefix = config.vault.prefix;
  const auths = await admin.request<{ data?: Record<string, unknown> }>('GET', 'sys/auth');
  if (!('approle/' in (auths.data ?? {}))) await admin.request('POST', 'sys/auth/approle', { type: 'approle' });

  const mounts = await admin.mounts();
  if (!(`${stateMount}/` in mounts))
    await admin.request('POST', `sys/mounts/${stateMount}`, { type: 'kv', options: { version: '2' } });
  // The secrets engines that dynamic lease paths name (database/, aws/, ...). Their connection settings
  // are the administrator's (see README); foureyes only needs the mount to exist.
  for (const env of config.environments) {
    if (env.lease.kind !== 'dynamic' || !env.lease.path) continue;
    const mount = env.lease.path.split('/')[0] as string;
    if (!(`${mount}/` in mounts)) {
      await admin.request('POST', `sys/mounts/${mount}`, { type: mount === 'database' ? 'database' : mount });
      mounts[`${mount}/`] = {};
    }
  }

  for (const env of config.environments) {
    await admin.request('PUT', `sys/policies/acl/${policyName(prefix, env.name)}`, {
      policy: environmentPolicy(config, env.name),
    });
    const maxTtl = Math.ceil((env.deploy.timeout + Math.max(env.verify?.timeout ?? 0, 0)) / 1000) + 120;
    await admin.request('POST', `auth/token/roles/${tokenRoleName(prefix, env.name)}`, {
      allowed_policies: [policyName(prefix, env.name)],
      disallowed_policies: ['root'],
      // Orphans: a lease must outlive a re-login of the deployer, and is bounded by its own TTL instead.
      orphan: true,
      renewable: false,
      token_explicit_max_ttl: maxTtl,
      token_type: 'service',
    });
  }
  await admin.request('PUT', `sys/policies/acl/${deployerPolicyName(prefix)}`, { policy: deployerPolicy(config) });
  const role = `${prefix}-deployer`;
  await admin.request('POST', `auth/approle/role/${role}`, {
    token_policies: [deployerPolicyName(prefix)],
    token_ttl: '20m',
    token_max_ttl: '1h',
    secret_id_ttl: '0',
    token_no_default_policy: false,
  });
  const roleId = (await admin.request<{ data: { role_id: string } }>('GET', `auth/approle/role/${role}/role-id`)).data
    .role_id;
  const secretId = (
    await admin.request<{ data: { secret_id: string } }>('POST', `auth/approle/role/${role}/secret-id`, {})
  ).data.secret_id;
  const creds: DeployerCredentials = { address: admin.address, roleId, secretId };
  if (options.dataDir)
    writeFileSync(join(options.dataDir, 'deployer-approle.json'), JSON.stringify(creds, null, 2), { mode: 0o600 });
  return creds;
}
