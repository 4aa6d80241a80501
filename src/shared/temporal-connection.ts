// Connections to Temporal from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE and the @temporalio/envconfig
// profile variables (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE, TEMPORAL_API_KEY, TEMPORAL_TLS_*), so the same
// code reaches the dev server, a self-hosted cluster with mTLS or Temporal Cloud with an API key.
import { Client, Connection, type WorkflowClientInterceptor } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadClientConnectConfig } from '@temporalio/envconfig';

export function temporalSettings(env: NodeJS.ProcessEnv = process.env) {
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
