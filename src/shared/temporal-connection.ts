// Connections to Temporal from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE and the @temporalio/envconfig
// profile variables (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE, TEMPORAL_API_KEY, TEMPORAL_TLS_*), so the same
// code reaches the dev server, a self-hosted cluster with mTLS or Temporal Cloud with an API key.
import { Client, Connection, type WorkflowClientInterceptor } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { accessSync, constants } from 'node:fs';

/** The mTLS files each component reads (docs/operations.md, "Temporal itself"). */
export const TEMPORAL_TLS_FILE_VARS = [
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
] as const;

export class TemporalSettingsError extends Error {
  override name = 'TemporalSettingsError';
}

/**
 * A component configured for mTLS must not quietly connect without it: a file that is missing or unreadable,
 * or a certificate without its key, is an error naming the variable (the SDK's own would name only a path).
 */
function checkTlsFiles(env: NodeJS.ProcessEnv): void {
  for (const name of TEMPORAL_TLS_FILE_VARS) {
    const path = env[name];
    if (!path) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch {
      throw new TemporalSettingsError(`${name}: cannot read ${path} (missing, or not readable by this process)`);
    }
  }
  const cert = Boolean(env.TEMPORAL_TLS_CLIENT_CERT_PATH || env.TEMPORAL_TLS_CLIENT_CERT_DATA);
  const key = Boolean(env.TEMPORAL_TLS_CLIENT_KEY_PATH || env.TEMPORAL_TLS_CLIENT_KEY_DATA);
  if (cert !== key)
    throw new TemporalSettingsError(
      `${cert ? 'TEMPORAL_TLS_CLIENT_KEY_PATH' : 'TEMPORAL_TLS_CLIENT_CERT_PATH'} is missing: a client certificate needs its key (and the key its certificate)`,
    );
}

export function temporalSettings(env: NodeJS.ProcessEnv = process.env) {
  checkTlsFiles(env);
  const { connectionOptions, namespace } = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
  return {
    connectionOptions: {
      ...connectionOptions,
      address: env.TEMPORAL_ADDRESS ?? connectionOptions.address ?? '127.0.0.1:7233',
    },
    namespace: env.TEMPORAL_NAMESPACE ?? namespace ?? 'foureyes',
  };
}

/** `interceptors`: the gateway's tracing interceptors (src/workers/tracing.ts), so its calls carry the trace context. */
export async function connectClient(
  env: NodeJS.ProcessEnv = process.env,
  interceptors: WorkflowClientInterceptor[] = [],
): Promise<Client> {
  const { connectionOptions, namespace } = temporalSettings(env);
  const connection = await Connection.connect(connectionOptions as Parameters<typeof Connection.connect>[0]);
  return new Client({
    connection,
    namespace,
    ...(interceptors.length ? { interceptors: { workflow: interceptors } } : {}),
  });
}

export async function connectWorkerConnection(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ connection: NativeConnection; namespace: string }> {
  const { connectionOptions, namespace } = temporalSettings(env);
  const connection = await NativeConnection.connect(connectionOptions);
  return { connection, namespace };
}
