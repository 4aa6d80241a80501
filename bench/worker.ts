// One trust zone's worker as its own process, for the benchmarks: the real changeWorkflow from the shared
// bundle (orchestrator zone, with the real loadPolicy over the bench configuration) and activities that
// return at once. It also serves the bare baseline workflow on a queue of its own. It reports to the
// parent (IPC) when a change waits for approval and when a deploy starts, and how long its activities ran.
import { NativeConnection, Worker } from '@temporalio/worker';
import { readFileSync } from 'node:fs';
import { GitHubModel, orchestratorDoubles } from '../test/workflows/orchestrator-doubles.ts';
import { parseConfig } from '../src/config/load.ts';
import { readBundle } from '../src/workers/bundle.ts';
import { workflowCacheSize } from '../src/workers/cache.ts';
import { startTracing } from '../src/workers/tracing.ts';
import type { DeployInput, DeployReport, VerifyReport } from '../src/shared/types.ts';
import { nowMs } from './stats.ts';
import { deployQueue } from '../src/shared/task-queues.ts';

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'awaiting'; change: string; sha: string; t: number }
  | { type: 'deploy'; change: string; environment: string; t: number }
  | { type: 'bareAwaiting'; id: string; t: number }
  | { type: 'bareMarked'; id: string; t: number }
  | { type: 'stats'; activities: number; activityMs: number; rssBytes: number };

const zone = process.env.BENCH_ZONE as 'orchestrator' | 'checks' | 'deploy';
const send = (m: WorkerMessage) => process.send?.(m);
let activities = 0;
let activityMs = 0;

/** Counts an activity and the time its own code ran (the "activity time" of the overhead figures). */
function timed<A extends unknown[], R>(fn: (...args: A) => Promise<R> | R): (...args: A) => Promise<R> {
  return async (...args: A) => {
    const started = performance.now();
    try {
      return await fn(...args);
    } finally {
      activities++;
      activityMs += performance.now() - started;
    }
  };
}

function timedAll<T extends Record<string, (...args: never[]) => unknown>>(set: T): T {
  return Object.fromEntries(
    Object.entries(set).map(([k, f]) => [k, timed(f as (...a: unknown[]) => Promise<unknown>)]),
  ) as unknown as T;
}

const bare = timedAll({
  async bareStep(input: { id: string; mark?: boolean }) {
    if (input.mark) send({ type: 'bareMarked', id: input.id, t: nowMs() });
  },
  async bareAwaiting(input: { id: string }) {
    send({ type: 'bareAwaiting', id: input.id, t: nowMs() });
  },
});

function changeActivities(): object {
  if (zone === 'orchestrator') {
    const config = parseConfig(readFileSync(process.env.BENCH_CONFIG as string, 'utf8'), 'bench.yaml');
    const keys = (process.env.FOUREYES_APPROVAL_PUBLIC_KEYS ?? '').split(',').filter(Boolean);
    // Core v2's orchestrator: the real loadPolicy and beginChange, and what "GitHub" says about each pull
    // request from the files the bench writes as it opens changes (test/workflows/orchestrator-doubles.ts).
    const doubles = orchestratorDoubles(
      config,
      keys[0] as string,
      new GitHubModel(process.env.BENCH_GITHUB_DIR as string),
    );
    return timedAll({
      ...doubles,
      async notifySlack(input: { change: string; sha: string }) {
        send({ type: 'awaiting', change: input.change, sha: input.sha, t: nowMs() });
        return { posted: false, reason: 'bench' };
      },
      // merge: true in the bench configuration, so a delivered change ends its workflow.
      async mergePullRequest() {
        return { merged: true, reason: 'bench' };
      },
    });
  }
  if (zone === 'checks') {
    return timedAll({
      async runChecks(input: { change: string; sha: string }) {
        return {
          sha: input.sha,
          passed: true,
          durationMs: 0,
          results: [{ name: 'unit', passed: true, exitCode: 0, durationMs: 0, timedOut: false, outputTail: 'ok' }],
        };
      },
    });
  }
  return timedAll({
    async deploy(input: DeployInput): Promise<DeployReport> {
      send({ type: 'deploy', change: input.change, environment: input.environment, t: nowMs() });
      return {
        environment: input.environment,
        sha: input.sha,
        status: 'deployed',
        exitCode: 0,
        durationMs: 0,
        outputTail: '',
        leases: [],
      };
    },
    async verify(input: DeployInput): Promise<VerifyReport> {
      return {
        environment: input.environment,
        sha: input.sha,
        passed: true,
        exitCode: 0,
        durationMs: 0,
        outputTail: '',
        leases: [],
      };
    },
    async revokeOutstanding() {
      return [];
    },
  });
}

async function main(): Promise<void> {
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS as string });
  const namespace = process.env.TEMPORAL_NAMESPACE as string;
  const queue = (base: string) => (zone === 'orchestrator' ? base : `${base}-${zone}`);
  // Inert without OTEL_* variables, as in production; the bundled workflow interceptors need its sink.
  const tracing = startTracing(zone === 'deploy' ? 'deployer' : zone, process.env, () => {});
  // As in production (FOUREYES_WORKFLOW_CACHE, default 0) unless --max-cached says otherwise.
  const tuning = {
    maxCachedWorkflows: process.env.BENCH_MAX_CACHED
      ? Number(process.env.BENCH_MAX_CACHED)
      : workflowCacheSize(process.env),
  };
  // The same options as src/workers/run.ts (the production entry point), plus the bench's tuning knob.
  // The change workflow sends each environment's deploy steps to `<queue>-deploy-<env>`: in production one deploy
  // process per environment (each with its own AppRole); here, with instant activities and no credentials, one
  // process polls every environment's queue, so the bench's per-zone figures stay comparable.
  const base = process.env.BENCH_TASK_QUEUE as string;
  const changeQueues =
    zone === 'deploy'
      ? (process.env.BENCH_DEPLOY_ENVIRONMENTS ?? 'staging,production').split(',').map((e) => deployQueue(base, e))
      : [queue(base)];
  const changeWorkers = await Promise.all(
    changeQueues.map((taskQueue) =>
      Worker.create({
        connection,
        namespace,
        taskQueue,
        activities: changeActivities(),
        ...(zone === 'orchestrator'
          ? { workflowBundle: readBundle(process.env.FOUREYES_WORKFLOW_BUNDLE as string), sinks: tracing.workflowSinks }
          : {}),
        interceptors: tracing.workerInterceptors,
        identity: `${zone}@${process.pid}`,
        shutdownGraceTime: '5s',
        ...tuning,
      }),
    ),
  );
  const workers = [
    ...changeWorkers,
    await Worker.create({
      connection,
      namespace,
      taskQueue: queue(process.env.BENCH_BARE_QUEUE as string),
      activities: bare,
      ...(zone === 'orchestrator' ? { workflowBundle: readBundle(process.env.BENCH_BARE_BUNDLE as string) } : {}),
      identity: `${zone}-bare@${process.pid}`,
      shutdownGraceTime: '5s',
      ...tuning,
    }),
  ];
  process.on('message', (m: { type: string; reset?: boolean }) => {
    if (m.type !== 'stats') return;
    send({ type: 'stats', activities, activityMs, rssBytes: process.memoryUsage.rss() });
    if (m.reset) activities = activityMs = 0;
  });
  process.once('SIGTERM', () => workers.forEach((w) => w.shutdown()));
  const running = Promise.all(workers.map((w) => w.run()));
  send({ type: 'ready' });
  await running;
  await connection.close();
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(`bench worker ${zone}: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
