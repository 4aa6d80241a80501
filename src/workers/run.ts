// Runs one trust zone's worker until SIGINT/SIGTERM, then shuts down gracefully (in-flight tasks finish or
// are handed back to the server).
import { Worker } from '@temporalio/worker';
import { loadConfig } from '../config/load.ts';
import { connectWorkerConnection } from '../shared/temporal-connection.ts';
import { ensureWorkflowBundle, readBundle } from './bundle.ts';
import { workflowCacheSize } from './cache.ts';
import { workerDeploymentFromEnv } from './deployment.ts';
import { installRuntime } from './telemetry.ts';
import { startTracing, type TracedComponent, type Tracing } from './tracing.ts';
import { DEPLOY_HEARTBEAT_THROTTLE, deployEnvironment, ZONES, zoneTaskQueue, type Zone } from './zones.ts';

const TRACED_AS: Record<Zone, TracedComponent> = { orchestrator: 'orchestrator', checks: 'checks', deploy: 'deployer' };

/** Tracing of a zone's worker (OTEL_EXPORTER_OTLP_ENDPOINT; inert without it). */
export function zoneTracing(zone: Zone, env: NodeJS.ProcessEnv = process.env): Tracing {
  return startTracing(TRACED_AS[zone], env);
}

export async function createZoneWorker(
  zone: Zone,
  env: NodeJS.ProcessEnv = process.env,
  tracing: Tracing = zoneTracing(zone, env),
): Promise<Worker> {
  const definition = ZONES[zone];
  // Metrics endpoint and JSON logs (FOUREYES_METRICS_ADDRESS, FOUREYES_LOG_FORMAT): before any connection.
  installRuntime(`worker:${zone}`, env);
  const workerDeploymentOptions = definition.runsWorkflows ? workerDeploymentFromEnv(env) : undefined;
  let config = loadConfig();
  const getConfig = () => config;
  const activities = await definition.createActivities(getConfig, env);
  const { connection, namespace } = await connectWorkerConnection(env);
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue: zoneTaskQueue(zone, env),
    activities,
    ...(definition.runsWorkflows
      ? {
          workflowBundle: readBundle(await ensureWorkflowBundle(env)),
          sinks: tracing.workflowSinks,
          maxCachedWorkflows: workflowCacheSize(env),
        }
      : {}),
    interceptors: tracing.workerInterceptors,
    ...(zone === 'deploy' ? DEPLOY_HEARTBEAT_THROTTLE : {}),
    // An environment's deployer names its environment (`deploy-staging@1234`): history shows who ran each step.
    identity: `${zone === 'deploy' && deployEnvironment(env) ? `deploy-${deployEnvironment(env)}` : zone}@${process.pid}`,
    ...(workerDeploymentOptions ? { workerDeploymentOptions } : {}),
    shutdownGraceTime: '30s',
  });
  // Reload trusted configuration on SIGHUP without a restart.
  process.on('SIGHUP', () => {
    try {
      config = loadConfig();
      console.log(`${zone}: configuration reloaded`);
    } catch (error) {
      console.error(`${zone}: configuration not reloaded: ${(error as Error).message}`);
    }
  });
  return worker;
}

export async function runZone(zone: Zone): Promise<void> {
  const tracing = zoneTracing(zone);
  const worker = await createZoneWorker(zone, process.env, tracing);
  const cache = ZONES[zone].runsWorkflows
    ? `; workflow cache ${workflowCacheSize()}${workflowCacheSize() === 0 ? ' (each task replays the history; FOUREYES_WORKFLOW_CACHE)' : ''}`
    : '';
  console.log(`${zone}: worker polling task queue ${zoneTaskQueue(zone)}${cache}`);
  if (zone === 'deploy' && !deployEnvironment(process.env))
    console.log(
      'deploy: no FOUREYES_DEPLOY_ENVIRONMENT: this is the shared deployer, for runs recorded before the per-environment deployers; stop it once they have ended (docs/operations.md)',
    );
  await worker.run();
  // Close our connection too: the Runtime (and its log forwarding) shuts down once none is left, so the
  // process exits by itself after SIGTERM.
  await worker.connection?.close();
  // worker.run() returns after SIGTERM/SIGINT: export the spans still batched before the process exits.
  await tracing.shutdown();
  console.log(`${zone}: worker stopped`);
}
