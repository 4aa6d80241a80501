// Credentials leased per environment per change, for minutes, and revoked when the step ends.
//
// kind "token":   a child token from the token role `<prefix>-<env>` carrying only the environment's policy.
// kind "dynamic": the same child token, then a read of `lease.path` (database/creds/ROLE, aws/creds/ROLE, ...)
//                 WITH that child token, so the environment's policy bounds what can be leased.
// kind "aws", "aws-secret": the same child token, then AWS STS credentials from OpenBao's AWS engine, or a
//                 Secrets Manager secret read with the deployer's own AWS identity (aws-leases.ts).
//
// Before a leased value is used, its lease ID / token accessor (never a value) is recorded in KV at
// `secret/data/<prefix>-state/leases/<hash(change)>/<env>`, so a retried attempt or `revokeOutstanding`
// can revoke what a crashed worker left behind. The TTL is the backstop.
import { createHash } from 'node:crypto';
import type { EnvironmentConfig, FoureyesConfig } from '../config/schema.ts';
import { policyName, stateMount, statePath, tokenRoleName } from '../shared/openbao-layout.ts';
import type { LeaseRecord } from '../shared/types.ts';
import { VaultRequestError, type DeployerVault, type VaultResponse } from './vault-client.ts';
import { AWS_CREDENTIAL_ENV, awsEnginePath, mintAwsCredentials, readAwsSecret } from './aws-leases.ts';

/** A lease never outlives the step it is for by more than this. */
export const LEASE_MARGIN_MS = 30_000;

/** TTL in seconds: the configured TTL, but never more than the step's timeout plus a small margin. */
export function leaseTtlSeconds(env: EnvironmentConfig, stepTimeoutMs: number): number {
  return Math.max(1, Math.ceil(Math.min(env.lease.ttl, stepTimeoutMs + LEASE_MARGIN_MS) / 1000));
}

/** Non-secret, path-safe identifier for bookkeeping keys. */
export function stateId(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 40);
}

export function leaseStatePath(config: FoureyesConfig, change: string, environment: string): string {
  return `${stateMount}/data/${statePath(config.vault.prefix)}/leases/${stateId(change)}/${environment}`;
}

export function deployedMarkerPath(config: FoureyesConfig, idempotencyKey: string): string {
  return `${stateMount}/data/${statePath(config.vault.prefix)}/deployed/${stateId(idempotencyKey)}`;
}

export interface IssuedLease {
  /** What identifies the leases (for history and bookkeeping). */
  records: LeaseRecord[];
  /** Environment variable name -> leased value, as `lease.env` names them. Never leaves the deployer. */
  env: Record<string, string>;
  /** Every leased value, for redaction. */
  secrets: string[];
}

interface LeaseState {
  change: string;
  environment: string;
  leases: LeaseRecord[];
}

/** Only what identifies and bounds a lease (a record may have come from heartbeat details). */
export function sanitizeRecord(record: LeaseRecord): LeaseRecord {
  return {
    leaseId: String(record.leaseId),
    kind: record.kind === 'dynamic' ? 'dynamic' : 'token',
    path: String(record.path),
    ttlSeconds: Number(record.ttlSeconds) || 0,
    ...(record.accessor ? { accessor: String(record.accessor) } : {}),
    issuedAt: String(record.issuedAt),
    ...(record.revokedAt ? { revokedAt: String(record.revokedAt) } : {}),
    ...(record.revokeError ? { revokeError: String(record.revokeError) } : {}),
  };
}

export class LeaseManager {
  constructor(
    private readonly vault: DeployerVault,
    private readonly config: FoureyesConfig,
  ) {}

  private environment(name: string): EnvironmentConfig {
    const env = this.config.environments.find((e) => e.name === name);
    if (!env) throw new Error(`environment ${name} is not configured`);
    return env;
  }

  /** Leases stil recorded as outstanding for a change and environment. */
  async outstanding(change: string, environment: string): Promise<LeaseRecord[]> {
    try {
      const response = await this.vault.read<{ data?: LeaseState }>(leaseStatePath(this.config, change, environment));
      return (response.data?.data?.leases ?? []).map(sanitizeRecord);
    } catch (error) {
      if (error instanceof VaultRequestError && error.status === 404) return [];
      throw error;
    }
  }

  private async saveOutstanding(change: string, environment: string, leases: LeaseRecord[]): Promise<void> {
    const state: LeaseState = { change, environment, leases: leases.map(sanitizeRecord) };
    await this.vault.write(leaseStatePath(this.config, change, environment), { data: state });
  }

  private async remember(change: string, environment: string, record: LeaseRecord): Promise<void> {
    const current = await this.outstanding(change, environment);
    await this.saveOutstanding(change, environment, [...current.filter((r) => r.leaseId !== record.leaseId), record]);
  }

  private async forget(change: string, environment: string, leaseIds: string[]): Promise<void> {
    if (leaseIds.length === 0) return;
    const current = await this.outstanding(change, environment);
    const rest = current.filter((r) => !leaseIds.includes(r.leaseId));
    if (rest.length !== current.length) await this.saveOutstanding(change, environment, rest);
  }

  /**
   * Lease the environment's credentials. `onRecorded` runs after each lease is recorded in KV and before
   * its value is used (the caller heartbeats the records). On a failure half-way, what was issued is revoked.
   */
  async issue(
    input: { change: string; environment: string; stepTimeoutMs: number },
    onRecorded: (records: LeaseRecord[]) => void = () => {},
  ): Promise<IssuedLease> {
    const env = this.environment(input.environment);
    const prefix = this.config.vault.prefix;
    const ttl = leaseTtlSeconds(env, input.stepTimeoutMs);
    const records: LeaseRecord[] = [];
    try {
      const role = tokenRoleName(prefix, env.name);
      const created = await this.vault.write(`auth/token/create/${role}`, {
        policies: [policyName(prefix, env.name)],
        ttl: `${ttl}s`,
        explicit_max_ttl: `${ttl}s`,
        renewable: false,
        display_name: `${prefix}-${env.name}`,
        meta: { change: input.change, environment: env.name },
      });
      const auth = created.auth;
      if (!auth?.client_token || !auth.accessor) throw new Error(`OpenBao created no token for role ${role}`);
      const tokenRecord: LeaseRecord = {
        leaseId: `accessor:${auth.accessor}`,
        kind: 'token',
        path: `auth/token/create/${role}`,
        ttlSeconds: auth.lease_duration || ttl,
        accessor: auth.accessor,
        issuedAt: new Date().toISOString(),
      };
      records.push(tokenRecord);
      await this.remember(input.change, env.name, tokenRecord);
      onRecorded([...records]);

      const fields: Record<string, string> = { token: auth.client_token, addr: this.vault.address };
      const secrets = [auth.client_token];
      const aws = env.lease.kind === 'aws';
      if ((env.lease.kind === 'dynamic' && env.lease.path) || aws) {
        // Read with the child token: the environment's policy, not the deployer's, decides.
        const secret: VaultResponse = aws
          ? await mintAwsCredentials(this.vault, env.lease, auth.client_token, ttl)
          : await this.vault.read(env.lease.path as string, { token: auth.client_token });
        if (secret.lease_id) {
          const dynamicRecord: LeaseRecord = {
            leaseId: secret.lease_id,
            kind: 'dynamic',
            path: aws ? awsEnginePath(env.lease) : (env.lease.path as string),
            ttlSeconds: aws ? (secret.lease_duration ?? ttl) : Math.min(secret.lease_duration ?? ttl, ttl),
            issuedAt: new Date().toISOString(),
          };
          records.push(dynamicRecord);
          await this.remember(input.change, env.name, dynamicRecord);
          onRecorded([...records]);
        }
        for (const [field, value] of Object.entries(secret.data ?? {})) {
          if (value === null || value === undefined) continue;
          const text = typeof value === 'string' ? value : JSON.stringify(value);
          fields[field] = text;
          secrets.push(text);
        }
      }
      if (env.lease.kind === 'aws-secret') {
        for (const [field, value] of Object.entries(await readAwsSecret(env.lease))) {
          fields[field] = value;
          secrets.push(value);
        }
      }
      const out: Record<string, string> =
        aws && env.lease.region ? { AWS_REGION: env.lease.region, AWS_DEFAULT_REGION: env.lease.region } : {};
      const wanted = aws && Object.keys(env.lease.env).length === 0 ? AWS_CREDENTIAL_ENV : env.lease.env;
      for (const [name, field] of Object.entries(wanted)) {
        const value = fields[field];
        if (value === undefined) {
          throw new LeaseFieldError(
            `lease for environment ${env.name} has no field "${field}" for ${name} (fields: ${Object.keys(fields).sort().join(', ')})`,
          );
        }
        out[name] = value;
      }
      return { records, env: out, secrets: secrets.filter((s) => s.length >= 3) };
    } catch (error) {
      await this.revokeAll(input.change, env.name, records);
      throw error;
    }
  }

  /** Revoke one lease synchronously; an already expired or revoked lease counts as revoked. */
  async revoke(record: LeaseRecord): Promise<LeaseRecord> {
    if (record.revokedAt) return record;
    try {
      if (record.kind === 'dynamic') {
        // Raw write: node-vault's generated revoke command would drop `sync`.
        await this.vault.write('sys/leases/revoke', { lease_id: record.leaseId, sync: true });
      } else if (record.accessor) {
        await this.vault.write('auth/token/revoke-accessor', { accessor: record.accessor });
      }
      return { ...record, revokedAt: new Date().toISOString() };
    } catch (error) {
      // Unknown lease or accessor: it expired or was revoked already.
      if (
        error instanceof VaultRequestError &&
        error.status === 400 &&
        /invalid (lease|accessor)|not found|lease not found/i.test(error.errors.join(' '))
      ) {
        return { ...record, revokedAt: new Date().toISOString() };
      }
      return { ...record, revokeError: (error as Error).message.slice(0, 300) };
    }
  }

  /** Revoke dynamic leases first, then the tokens that hold them; forget what was revoked. */
  async revokeAll(change: string, environment: string, records: LeaseRecord[]): Promise<LeaseRecord[]> {
    const ordered = [...records.filter((r) => r.kind === 'dynamic'), ...records.filter((r) => r.kind !== 'dynamic')];
    const out: LeaseRecord[] = [];
    for (const record of ordered) out.push(await this.revoke(record));
    try {
      await this.forget(
        change,
        environment,
        out.filter((r) => r.revokedAt).map((r) => r.leaseId),
      );
    } catch {
      // The record stays; a later revokeOutstanding finds the leases already gone.
    }
    return out;
  }

  /** Everything recorded for the change and environment (plus `extra`, e.g. from heartbeat details), revoked. */
  async revokeOutstanding(change: string, environment: string, extra: LeaseRecord[] = []): Promise<LeaseRecord[]> {
    const recorded = await this.outstanding(change, environment);
    const byId = new Map<string, LeaseRecord>();
    for (const r of [...extra.map(sanitizeRecord), ...recorded]) if (!r.revokedAt) byId.set(r.leaseId, r);
    return this.revokeAll(change, environment, [...byId.values()]);
  }
}

export class LeaseFieldError extends Error {
  override name = 'LeaseFieldError';
}
