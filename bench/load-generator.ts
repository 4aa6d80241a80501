// The load generator of the webhook benchmark, a separate process (forked by scenarios/webhook.ts): sends
// prepared requests at a fixed rate, open loop (each at its scheduled time, whether or not earlier ones were
// answered, so a slow server cannot slow the sender down and hide its own latency), and reports each
// response time. Two modes: signed GitHub deliveries to the gateway over HTTP, or plain signalWithStart
// calls to Temporal (the baseline).
import { Client, Connection } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PullRequestEvent } from '../src/shared/types.ts';
import { pullRequestSignal } from '../src/workflows/definitions.ts';

export type LoadJob =
  | { mode: 'http'; rate: number; url: string; items: Array<{ body: string; headers: Record<string, string> }> }
  /** Each item: GET requests sent together; its latency is the slowest one's (the stand-in's own figure). */
  | { mode: 'get'; rate: number; items: Array<Array<{ url: string; headers: Record<string, string> }>> }
  | {
      mode: 'temporal';
      rate: number;
      address: string;
      namespace: string;
      taskQueue: string;
      items: Array<{ workflowId: string; change: string; event: PullRequestEvent }>;
    };

export interface LoadResult {
  latenciesMs: number[];
  statuses: Record<string, number>;
  /** How late the sender was against its schedule at worst (ms): large values mean the generator itself lagged. */
  maxLagMs: number;
  seconds: number;
}

async function run(job: LoadJob): Promise<LoadResult> {
  let send: (i: number) => Promise<string>;
  let close = async () => {};
  if (job.mode === 'http') {
    send = async (i) => {
      const item = job.items[i] as (typeof job.items)[number];
      const res = await fetch(job.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...item.headers },
        body: item.body,
      });
      await res.arrayBuffer();
      return String(res.status);
    };
  } else if (job.mode === 'get') {
    send = async (i) => {
      const statuses = await Promise.all(
        (job.items[i] ?? []).map(async (r) => {
          const res = await fetch(r.url, { headers: r.headers });
          await res.arrayBuffer();
          return res.status;
        }),
      );
      return statuses.join('+');
    };
  } else {
    const connection = await Connection.connect({ address: job.address });
    const client = new Client({ connection, namespace: job.namespace });
    close = () => connection.close();
    send = async (i) => {
      const item = job.items[i] as (typeof job.items)[number];
      await client.workflow.signalWithStart('changeWorkflow', {
        workflowId: item.workflowId,
        taskQueue: job.taskQueue,
        args: [{ change: item.change }],
        signal: pullRequestSignal,
        signalArgs: [item.event],
      });
      return 'ok';
    };
  }
  const latenciesMs: number[] = new Array<number>(job.items.length);
  const statuses: Record<string, number> = {};
  let maxLagMs = 0;
  const interval = 1000 / job.rate;
  const t0 = performance.now() + 50;
  const inflight: Array<Promise<void>> = [];
  for (let i = 0; i < job.items.length; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    maxLagMs = Math.max(maxLagMs, performance.now() - due);
    const started = performance.now();
    inflight.push(
      send(i).then(
        (status) => {
          latenciesMs[i] = performance.now() - started;
          statuses[status] = (statuses[status] ?? 0) + 1;
        },
        (error: unknown) => {
          latenciesMs[i] = performance.now() - started;
          const key = `error: ${(error as Error).message.split('\n')[0]?.slice(0, 80)}`;
          statuses[key] = (statuses[key] ?? 0) + 1;
        },
      ),
    );
  }
  await Promise.all(inflight);
  await close();
  return { latenciesMs, statuses, maxLagMs, seconds: (performance.now() - t0) / 1000 };
}

process.once('message', (job: LoadJob) => {
  run(job).then(
    (result) => process.send?.(result, () => process.exit(0)),
    (error: unknown) => {
      console.error(`load generator: ${(error as Error).stack ?? String(error)}`);
      process.exit(1);
    },
  );
});
