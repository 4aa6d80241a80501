// The production worker entry point (`foureyes worker <zone>`, the image's CMD) started as its own process
// against the shared dev server: with FOUREYES_METRICS_ADDRESS it serves the SDK's `temporal_*` metrics,
// with FOUREYES_LOG_FORMAT=json its log lines are JSON, with FOUREYES_DEPLOYMENT_NAME + FOUREYES_BUILD_ID the
// orchestrator polls as that Worker Deployment Version, and SIGTERM ends it with exit code 0 well within
// the 30 s grace time.
import { describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/dev/process.ts';
import { startFoureyes } from '../helpers/foureyes-process.ts';
import { uniqueQueue, testClient } from '../helpers/temporal.ts';

function startWorker(zone: string, extraEnv: Record<string, string>) {
  return startFoureyes(['worker', zone], extraEnv);
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  output: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('foureyes worker <zone> (production entry point)', () => {
  it('serves temporal_ metrics, logs JSON, joins its deployment version, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const queue = uniqueQueue('prod-entry');
    const worker = startWorker('orchestrator', {
      FOUREYES_TASK_QUEUE: queue,
      FOUREYES_WORKFLOW_BUNDLE: inject('workflowBundle'),
      FOUREYES_METRICS_ADDRESS: `127.0.0.1:${port}`,
      FOUREYES_LOG_FORMAT: 'json',
      FOUREYES_DEPLOYMENT_NAME: 'foureyes-test',
      FOUREYES_BUILD_ID: queue,
    });

    const metrics = await until(
      'temporal_ metrics',
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return /^temporal_\w+/m.test(text) && /temporal_num_pollers/.test(text) ? text : undefined;
      },
      60_000,
      worker.output,
    );
    expect(metrics).toMatch(/service="worker:orchestrator"/);
    expect(metrics).toMatch(new RegExp(`task_queue="${queue}"`));

    // The poller announces its Worker Deployment Version.
    const client = await testClient();
    try {
      const deployment = await until(
        'the orchestrator poller with its deployment version',
        async () => {
          const res = await client.workflowService.describeTaskQueue({
            namespace: inject('temporalNamespace'),
            taskQueue: { name: queue },
            taskQueueType: 1,
          });
          const poller = res.pollers?.find((p) => p.deploymentOptions?.buildId === queue);
          return poller?.deploymentOptions ?? undefined;
        },
        30_000,
        worker.output,
      );
      expect(deployment.deploymentName).toBe('foureyes-test');
      expect(deployment.workerVersioningMode).toBe(2); // WORKER_VERSIONING_MODE_VERSIONED
    } finally {
      await client.connection.close();
    }

    const started = Date.now();
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(30_000);
    console.log(`orchestrator worker: SIGTERM to exit ${elapsed} ms`);

    // Without FOUREYES_WORKFLOW_CACHE the orchestrator keeps no workflow cache, and says so.
    expect(worker.output()).toContain('workflow cache 0 (each task replays the history; FOUREYES_WORKFLOW_CACHE)');

    // Every structured line is one JSON object with time, level, component and msg.
    const jsonLines = worker
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(jsonLines.length).toBeGreaterThan(0);
    for (const line of jsonLines)
      expect(JSON.parse(line)).toMatchObject({
        level: expect.any(String),
        component: 'worker:orchestrator',
        msg: expect.any(String),
      });
  });
});
