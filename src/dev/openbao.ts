// OpenBao dev server for the local stack and the tests, and the bootstrap a Vault administrator would do:
// one policy per environment that allows only that environment's paths, a token role per environment,
// one AppRole per environment for that environment's deployer worker (it may mint only that environment's
// leases), the shared deployer AppRole while runs recorded before the per-environment deployers still need it,
// and the secrets engines the lease paths name. The root token is
// used here alone; workers log in with AppRole.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FoureyesConfig } from '../config/schema.ts';
import {
  deployerPolicyName,
  environmentDeployerName,
  policyName,
  stateMount,
  statePath,
  tokenRoleName,
} from '../shared/openbao-layout.ts';
import { ensureTool } from './tools.ts';
import { freePort, portInUse, startProcess, waitUntil, type ManagedProcess } from './process.ts';

export interface OpenBaoServer {
  address: string;
  rootToken: string;
  process: ManagedProcess;
}

export interface OpenBaoOptions {
  logFile?: string;
  echo?: boolean | 'problems';
  /** A fixed port (`foureyes up`): taken by something else, the start fails naming it. */
  port?: number;
  /** Where a port of its own comes from when none is fixed; a port taken meanwhile is replaced by another. */
  pickPort?: () => Promise<number>;
  pidFile?: string;
}

export async function startOpenBao(options: OpenBaoOptions = {}): Promise<OpenBaoServer> {
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await (options.pickPort ?? freePort)());
    try {
      return await startOpenBaoOn(port, options);
    } catch (error) {
      // Between the pick and the bind another process can take a picked port: that is ours to retry.
      if (!(error instanceof PortTakenError) || options.port !== undefined || attempt >= 3) throw error;
    }
  }
}

class PortTakenError extends Error {}

async function startOpenBaoOn(port: number, options: OpenBaoOptions): Promise<OpenBaoServer> {
  const bin = ensureTool('bao');
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
  // earlier start) answers 403; anything else on it (a Temporal UI answers 200 with a page on every path)
  // does not answer with the root token's policies. Neither is ever bootstrapped as if it were ours.
  try {
    await waitUntil(`OpenBao dev server on ${address}`, () => knowsRootToken(address, rootToken), {
      timeoutMs: 30_000,
      process: proc,
    });
  } catch (error) {
    await proc.stop();
    if (await portInUse(port))
      throw new PortTakenError(
        `port ${port} (OpenBao) is in use by another process; stop it, or set FOUREYES_BAO_PORT to a free port`,
      );
    throw error;
  }
  return { address, rootToken, process: proc };
}

async function knowsRootToken(address: string, rootToken: string): Promise<boolean> {
  const response = await fetch(`${address}/v1/auth/token/lookup-self`, { headers: { 'X-Vault-Token': rootToken } });
  if (response.status !== 200) return false;
  const body = (await response.json()) as { data?: { policies?: unknown } };
  return Array.isArray(body.data?.policies) && body.data.policies.includes('root');
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

export { deployerPolicyName, environmentDeployerName, policyName, stateMount, statePath, tokenRoleName };

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

/** What every deployer may do besides minting: revoke and look up what it leased (accessors, lease IDs). */
const LEASE_BOOKKEEPING_RULES = [
  `path "auth/token/revoke-accessor" {\n  capabilities = ["update"]\n}`,
  `path "auth/token/lookup-accessor" {\n  capabilities = ["update"]\n}`,
  `path "sys/leases/revoke" {\n  capabilities = ["update"]\n}`,
  `path "sys/leases/lookup" {\n  capabilities = ["update"]\n}`,
];

/** The shared deployer (queue `<queue>-deploy`) of runs recorded before the per-environment deployers: every environment. */
export function deployerPolicy(config: FoureyesConfig): string {
  const prefix = config.vault.prefix;
  const rules = config.environments.map(
    (env) => `path "auth/token/create/${tokenRoleName(prefix, env.name)}" {\n  capabilities = ["update"]\n}`,
  );
  rules.push(
    ...LEASE_BOOKKEEPING_RULES,
    // Bookkeeping without secret values: outstanding lease IDs and completed deploys, for crash recovery.
    `path "${stateMount}/data/${statePath(prefix)}/*" {\n  capabilities = ["create", "read", "update", "delete"]\n}`,
    `path "${stateMount}/metadata/${statePath(prefix)}/*" {\n  capabilities = ["list", "read", "delete"]\n}`,
  );
  return rules.join('\n\n');
}

/**
 * One environment's deployer (queue `<queue>-deploy-<env>`): it may create tokens through that environment's token
 * role alone, so neither it nor a deploy command that got hold of its AppRole can mint another environment's lease.
 * Its lease bookkeeping is its environment's (`leases/<change>/<env>`); the completed-deploy markers are shared.
 */
export function environmentDeployerPolicy(config: FoureyesConfig, envName: string): string {
  const prefix = config.vault.prefix;
  const env = config.environments.find((e) => e.name === envName);
  if (!env) throw new Error(`unknown environment ${envName}`);
  const state = `${stateMount}/data/${statePath(prefix)}`;
  return [
    `path "auth/token/create/${tokenRoleName(prefix, env.name)}" {\n  capabilities = ["update"]\n}`,
    ...LEASE_BOOKKEEPING_RULES,
    `path "${state}/leases/+/${env.name}" {\n  capabilities = ["create", "read", "update", "delete"]\n}`,
    `path "${state}/deployed/*" {\n  capabilities = ["create", "read", "update"]\n}`,
  ].join('\n\n');
}

export interface BootstrapOptions {
  /** Where to write the AppRole credentials (`deployer-approle-<env>.json`, and `deployer-approle.json` for the shared one). */
  dataDir?: string;
  /**
   * Keep the shared deployer AppRole (default true): only runs recorded before the per-environment deployers use
   * its queue. false removes it (once those runs have ended; docs/operations.md, upgrade order).
   */
  sharedDeployer?: boolean;
  /** How long an environment deployer's secret ID may be used to log in (default 24h; the worker logs in with it). */
  secretIdTtl?: string;
  /** Where an environment deployer may log in from and use its token (CIDRs; none: anywhere). */
  boundCidrs?: string[];
}

export interface DeployerBootstrap {
  /** The shared deployer's AppRole, while it is kept. */
  shared?: DeployerCredentials;
  /** Each environment's deployer AppRole, by environment name. */
  environments: Record<string, DeployerCredentials>;
}

async function appRoleCredentials(admin: VaultAdmin, role: string): Promise<DeployerCredentials> {
  const roleId = (await admin.request<{ data: { role_id: string } }>('GET', `auth/approle/role/${role}/role-id`)).data
    .role_id;
  const secretId = (
    await admin.request<{ data: { secret_id: string } }>('POST', `auth/approle/role/${role}/secret-id`, {})
  ).data.secret_id;
  return { address: admin.address, roleId, secretId };
}

function writeCredentials(dataDir: string | undefined, file: string, creds: DeployerCredentials): void {
  if (dataDir) writeFileSync(join(dataDir, file), JSON.stringify(creds, null, 2), { mode: 0o600 });
}

/** The bootstrap with the shared deployer kept: its credentials, and each environment's under `environments`. */
export async function bootstrapOpenBao(
  admin: VaultAdmin,
  config: FoureyesConfig,
  options: Omit<BootstrapOptions, 'sharedDeployer'> = {},
): Promise<DeployerCredentials & { environments: Record<string, DeployerCredentials> }> {
  const result = await bootstrapDeployers(admin, config, { ...options, sharedDeployer: true });
  return { ...(result.shared as DeployerCredentials), environments: result.environments };
}

export async function bootstrapDeployers(
  admin: VaultAdmin,
  config: FoureyesConfig,
  options: BootstrapOptions = {},
): Promise<DeployerBootstrap> {
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
  const environments: Record<string, DeployerCredentials> = {};
  for (const env of config.environments) {
    const name = environmentDeployerName(prefix, env.name);
    await admin.request('PUT', `sys/policies/acl/${name}`, { policy: environmentDeployerPolicy(config, env.name) });
    await admin.request('POST', `auth/approle/role/${name}`, {
      token_policies: [name],
      token_ttl: '20m',
      token_max_ttl: '1h',
      secret_id_ttl: options.secretIdTtl ?? '24h',
      token_no_default_policy: false,
      ...(options.boundCidrs?.length
        ? { secret_id_bound_cidrs: options.boundCidrs, token_bound_cidrs: options.boundCidrs }
        : {}),
    });
    environments[env.name] = await appRoleCredentials(admin, name);
    writeCredentials(
      options.dataDir,
      `deployer-approle-${env.name}.json`,
      environments[env.name] as DeployerCredentials,
    );
  }

  const role = `${prefix}-deployer`;
  if (options.sharedDeployer === false) {
    // Nothing uses the shared queue any more: its AppRole and policy go, and so does any secret ID it had.
    await admin.request('DELETE', `auth/approle/role/${role}`);
    await admin.request('DELETE', `sys/policies/acl/${deployerPolicyName(prefix)}`);
    return { environments };
  }
  await admin.request('PUT', `sys/policies/acl/${deployerPolicyName(prefix)}`, { policy: deployerPolicy(config) });
  await admin.request('POST', `auth/approle/role/${role}`, {
    token_policies: [deployerPolicyName(prefix)],
    token_ttl: '20m',
    token_max_ttl: '1h',
    secret_id_ttl: '0',
    token_no_default_policy: false,
  });
  const shared = await appRoleCredentials(admin, role);
  writeCredentials(options.dataDir, 'deployer-approle.json', shared);
  return { shared, environments };
}
