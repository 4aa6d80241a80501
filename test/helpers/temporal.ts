// Connections to the Temporal dev server that test/global-setup.ts started, and workers on unique task
// queues so that test files never steal each other's tasks.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { deployQueue, zoneQueue } from '../../src/shared/task-queues.ts';

export async function testClient(): Promise<Client> {
  const connection = await Connection.connect({ address: inject('temporalAddress') });
  return new Client({ connection, namespace: inject('temporalNamespace') });
}

export async function testWorkerConnection(): Promise<NativeConnection> {
  return NativeConnection.connect({ address: inject('temporalAddress') });
}

let bundleCode: string | undefined;
/** The workflow bundle built once by the global setup. */
export function workflowBundle(): { code: string } {
  bundleCode ??= readFileSync(inject('workflowBundle'), 'utf8');
  return { code: bundleCode };
}

export function uniqueQueue(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A worker for the test's own task queue; pass `workflows: true` to run the bundled workflows. */
export async function testWorker(
  options: Omit<WorkerOptions, 'connection' | 'namespace' | 'workflowBundle' | 'workflowsPath'> & {
    workflows?: boolean;
  },
): Promise<Worker> {
  const { workflows, ...rest } = options;
  return Worker.create({
    connection: await testWorkerConnection(),
    namespace: inject('temporalNamespace'),
    ...(workflows ? { workflowBundle: workflowBundle() } : {}),
    ...rest,
  });
}

/**
 * A pull request number range of its own for a test file: every file shares one namespace, and
 * `change:acme/shop#1` from two files would be one workflow.
 */
export function uniquePullNumberBase(): number {
  return 1000 + Math.floor(Math.random() * 900_000) * 10;
}

/**
 * The deploy zone's queues for a workflow queue: each environment's own (`<queue>-deploy-<env>`, where changes
 * recorded with the per-environment deployers send their steps) and the shared `<queue>-deploy` of older runs.
 */
export function deployZoneQueues(
  taskQueue: string,
  environments: Array<{ name: string }>,
): Array<{ taskQueue: string; environment?: string }> {
  return [
    { taskQueue: zoneQueue(taskQueue, 'deploy') },
    ...environments.map((e) => ({ taskQueue: deployQueue(taskQueue, e.name), environment: e.name })),
  ];
}

/** The activity types every run matching `query` scheduled, in history order (a lane's look-ups and compares). */
export async function scheduledActivities(client: Client, query: string): Promise<string[]> {
  const names: string[] = [];
  for await (const run of client.workflow.list({ query })) {
    const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    for (const e of history.events ?? [])
      if (e.activityTaskScheduledEventAttributes)
        names.push(e.activityTaskScheduledEventAttributes.activityType?.name ?? '');
  }
  return names;
}
