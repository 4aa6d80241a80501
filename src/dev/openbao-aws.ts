// The AWS secrets engine, configured as a Vault/OpenBao administrator would: the mount, the root credential
// the engine calls AWS with (`aws/config/root`, with STS and IAM endpoints for a private endpoint or an
// emulator such as moto), and one role per kind of deploy (`aws/roles/<name>`: an assumed role or a
// federation token, with its TTLs). The root credential goes to OpenBao only: foureyes never holds it.
// OpenBao 2.x ships this engine as an external plugin (openbao-plugin-secrets-aws); Vault has it built in.
// For the dev stack and the tests, `foureyes tools` builds Vault v1.14.0's engine as a plugin
// (tools/openbao-aws-plugin); it is registered in the catalog by its sha256 like any other plugin.
import { randomBytes } from 'node:crypto';
import type { OpenBaoServer, VaultAdmin } from './openbao.ts';
import { freePort, startProcess, waitUntil } from './process.ts';
import { AWS_PLUGIN, ensureAwsPlugin, ensureTool, fileSha256, pluginsDir } from './tools.ts';

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

/** A plugin binary in the server's plugin directory, registered as the engine type `aws`. */
export interface AwsEnginePlugin {
  command: string;
  sha256: string;
}

export interface AwsEngineOptions {
  mount?: string;
  /** Register this plugin as `aws` first (OpenBao without the engine in its catalog). */
  plugin?: AwsEnginePlugin;
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
  // The catalog runs only the binary with this sha256: a swapped file in the plugin directory is refused.
  if (options.plugin)
    await admin.request('POST', 'sys/plugins/catalog/secret/aws', {
      command: options.plugin.command,
      sha256: options.plugin.sha256,
    });
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

/** The AWS engine plugin `foureyes tools` builds, as the catalog needs it. */
export function awsEnginePlugin(): AwsEnginePlugin {
  return { command: AWS_PLUGIN.name, sha256: fileSha256(ensureAwsPlugin()) };
}

/**
 * An OpenBao dev server whose plugin directory holds the AWS engine plugin (the shared dev server has
 * none). Register it with bootstrapAwsEngine({ plugin: awsEnginePlugin(), ... }).
 */
export async function startOpenBaoWithAwsPlugin(options: { logFile?: string } = {}): Promise<OpenBaoServer> {
  ensureAwsPlugin();
  const port = await freePort();
  const rootToken = `root-${randomBytes(12).toString('hex')}`;
  const proc = startProcess(
    ensureTool('bao'),
    [
      'server',
      '-dev',
      `-dev-root-token-id=${rootToken}`,
      `-dev-listen-address=127.0.0.1:${port}`,
      `-dev-plugin-dir=${pluginsDir()}`,
      '-log-level=warn',
    ],
    {
      name: 'openbao-aws',
      logFile: options.logFile,
      // Never log the root token or unseal key the dev server prints.
      redact: (line) => line.replace(/(Root Token|Unseal Key):.*/, '$1: [redacted]').replace(rootToken, '[redacted]'),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
    },
  );
  const address = `http://127.0.0.1:${port}`;
  await waitUntil(
    `OpenBao dev server with the AWS plugin on ${address}`,
    async () => (await fetch(`${address}/v1/sys/health`)).status === 200,
    { timeoutMs: 30_000, process: proc },
  );
  return { address, rootToken, process: proc };
}
