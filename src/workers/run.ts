// Runs one trust zone's worker until SIGINT/SIGTERM, then shuts down gracefully (in-flight tasks finish or
// are handed back to the server).
import { Worker } from '@temporalio/worker';
import { loadConfig } from '../config/load.ts';
import { connectWorkerConnection } from '../shared/temporal-connection.ts';
import { ensureWorkflowBundle, readBundle } from './bundle.ts';
import { workerDeploymentFromEnv } from './deployment.ts';
import { installRuntime } from './telemetry.ts';
import { ZONES, zoneTaskQueue, type Zone } from './zones.ts';

export async function createZoneWorker(zone: Zone, env: NodeJS.ProcessEnv = process.env): Promise<Worker> {
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
    ...(definition.runsWorkflows ? { workflowBundle: readBundle(await ensureWorkflowBundle(env)) } : {}),
    identity: `${zone}@${process.pid}`,
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
  const worker = await createZoneWorker(zone);
  console.log(`${zone}: worker polling task queue ${zoneTaskQueue(zone)}`);
  await worker.run();
  // Close our connection too: the Runtime (and its log forwarding) shuts down once none is left, so the
  // process exits by itself after SIGTERM.
  await worker.connection?.close();
  console.log(`${zone}: worker stopped`);
}
