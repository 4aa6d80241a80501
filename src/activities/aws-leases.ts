// AWS for the deploy step, two ways (lease kinds in foureyes.yaml):
//
// kind "aws":        STS credentials from OpenBao's AWS secrets engine (`<mount>/sts/<role>`, a role of
//                    credential_type assumed_role or federation_token), read WITH the environment's child
//                    token so its policy decides, for the step's TTL (AWS's minimum: 15 minutes). They are
//                    handed as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN and the lease is
//                    revoked after the step like every other. AWS cannot revoke STS credentials: after the
//                    revoke they still work until their TTL ends, so the role's policy must be narrow.
// kind "aws-secret": a Secrets Manager secret read at deploy time with the deployer's own AWS identity (its
//                    instance or task role, web identity, or whatever the AWS SDK's default chain finds in the
//                    deploy zone). Read, not leased: the value does not expire on its own.
//
// When AWS (or the engine in front of it) refuses or is unreachable, the step waits and retries as it does
// for an OpenBao outage; the failure says "waiting for AWS" so that status names what it waits for.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { LeaseConfig } from '../config/schema.ts';
import { VaultRequestError, VaultUnavailableError, type DeployerVault, type VaultResponse } from './vault-client.ts';

/** AWS will not issue STS credentials for less than 15 minutes. */
export const STS_MIN_TTL_SECONDS = 900;

/** What a deploy command receives from an `aws` lease unless `env` says otherwise. */
export const AWS_CREDENTIAL_ENV: Record<string, string> = {
  AWS_ACCESS_KEY_ID: 'access_key',
  AWS_SECRET_ACCESS_KEY: 'secret_key',
  AWS_SESSION_TOKEN: 'session_token',
};

/** AWS (or OpenBao's AWS engine) refused or was unreachable: retried, and shown as waiting for AWS. */
export class AwsUnavailableError extends Error {
  override name = 'AwsUnavailableError';
}

export function awsEnginePath(lease: LeaseConfig): string {
  return `${lease.mount}/sts/${lease.role ?? ''}`;
}

/** STS credentials for the step, minted by OpenBao's AWS engine with the environment's child token. */
export async function mintAwsCredentials(
  vault: DeployerVault,
  lease: LeaseConfig,
  childToken: string,
  ttlSeconds: number,
): Promise<VaultResponse> {
  const path = awsEnginePath(lease);
  try {
    const minted = await vault.write(
      path,
      { ttl: `${Math.max(STS_MIN_TTL_SECONDS, ttlSeconds)}s` },
      { token: childToken },
    );
    // The engine names the session token `security_token` (Vault and OpenBao alike); offer it as
    // `session_token` too, the name AWS uses, which AWS_SESSION_TOKEN maps to.
    const data = minted.data as Record<string, unknown> | undefined;
    if (data && data.session_token === undefined && typeof data.security_token === 'string')
      data.session_token = data.security_token;
    return minted;
  } catch (error) {
    // The environment's policy does not allow the path: a configuration problem, not an outage.
    if (error instanceof VaultRequestError && error.status === 403) throw error;
    const reason =
      error instanceof VaultRequestError
        ? error.errors.join('; ').slice(0, 300) || `HTTP ${error.status}`
        : error instanceof VaultUnavailableError
          ? error.message
          : (error as Error).name;
    throw new AwsUnavailableError(
      `waiting for AWS: OpenBao's AWS secrets engine could not mint credentials at ${path} (${reason}); check the engine's role, its root credential and that AWS STS is reachable`,
    );
  }
}

/** The fields of a Secrets Manager secret: its JSON object's string fields, and `value` (the whole string). */
export async function readAwsSecret(lease: LeaseConfig): Promise<Record<string, string>> {
  const client = new SecretsManagerClient({
    region: lease.region as string,
    ...(lease.endpoint ? { endpoint: lease.endpoint } : {}),
    maxAttempts: 2,
  });
  try {
    const answer = await client.send(new GetSecretValueCommand({ SecretId: lease.secret }));
    const text = answer.SecretString ?? (answer.SecretBinary ? Buffer.from(answer.SecretBinary).toString('utf8') : '');
    const fields: Record<string, string> = { value: text };
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        for (const [k, v] of Object.entries(parsed))
          if (v !== null && v !== undefined) fields[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
    } catch {
      // Not JSON: the whole string is `value`.
    }
    return fields;
  } catch (error) {
    // Only the error's name and AWS's code: a message could quote the request.
    const code = (error as { name?: string; $metadata?: { httpStatusCode?: number } }).name ?? 'Error';
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    throw new AwsUnavailableError(
      `waiting for AWS: Secrets Manager did not return ${JSON.stringify(lease.secret)} in ${lease.region} (${code}${status ? `, HTTP ${status}` : ''}); check the deployer's AWS identity and its permission secretsmanager:GetSecretValue`,
    );
  } finally {
    client.destroy();
  }
}
