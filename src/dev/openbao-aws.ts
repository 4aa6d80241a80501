// The AWS secrets engine, configured as a Vault/OpenBao administrator would: the mount, the root credential
// the engine calls AWS with (`aws/config/root`, with STS and IAM endpoints for a private endpoint or an
// emulator such as moto), and one role per kind of deploy (`aws/roles/<name>`: an assumed role or a
// federation token, with its TTLs). The root credential goes to OpenBao only: foureyes never holds it.
// OpenBao 2.x ships this engine as an external plugin (openbao-plugin-secrets-aws); Vault has it built in.
import type { VaultAdmin } from './openbao.ts';

export interface AwsEngineRole {
  name: string;
  credentialType: 'assumed_role' | 'federation_token';
  /** assumed_role: the IAM roles the engine may assume. */
  roleArns?: string[];
  /** federation_token (or to scope an assumed role down): an IAM policy document (JSON). */
  policyDocument?: string;
  defaultStsTtlSeconds?: number;
  maxStsTtlSeconds?: number;
}

export interface AwsEngineOptions {
  mount?: string;
  root: { accessKeyId: string; secretAccessKey: string; region: string };
  iamEndpoint?: string;
  stsEndpoint?: string;
  roles: AwsEngineRole[];
}

export class AwsEngineMissingError extends Error {
  override name = 'AwsEngineMissingError';
}

export async function bootstrapAwsEngine(admin: VaultAdmin, options: AwsEngineOptions): Promise<void> {
  const mount = options.mount ?? 'aws';
  if (!(`${mount}/` in (await admin.mounts()))) {
    try {
      await admin.request('POST', `sys/mounts/${mount}`, { type: 'aws' });
    } catch (error) {
      if (!/plugin not found|unknown.*type|not found in the catalog/i.test((error as Error).message)) throw error;
      throw new AwsEngineMissingError(
        `OpenBao at ${admin.address} has no AWS secrets engine to mount at ${mount}/: OpenBao 2.x ships it as the external plugin openbao-plugin-secrets-aws (github.com/openbao/openbao-plugins); put the binary in the server's plugin_directory, register it (bao plugin register -sha256=<sum> secret aws) and bootstrap again`,
      );
    }
  }
  await admin.request('POST', `${mount}/config/root`, {
    access_key: options.root.accessKeyId,
    secret_key: options.root.secretAccessKey,
    region: options.root.region,
    ...(options.iamEndpoint ? { iam_endpoint: options.iamEndpoint } : {}),
    ...(options.stsEndpoint ? { sts_endpoint: options.stsEndpoint } : {}),
    max_retries: 1,
  });
  for (const role of options.roles) {
    await admin.request('POST', `${mount}/roles/${role.name}`, {
      credential_type: role.credentialType,
      ...(role.roleArns ? { role_arns: role.roleArns } : {}),
      ...(role.policyDocument ? { policy_document: role.policyDocument } : {}),
      default_sts_ttl: role.defaultStsTtlSeconds ?? 900,
      max_sts_ttl: role.maxStsTtlSeconds ?? 3600,
    });
  }
}
