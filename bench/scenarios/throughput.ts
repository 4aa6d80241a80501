// 5. Throughput: N changes started together and approved as soon as each waits (the pipeline saturated);
// changes completed end to end per second. Baseline: N bare workflows (same activity count, one signal)
// driven the same way on the same server.
import { bareInputLike, deliverOne, pool, startBenchEnv, sha, within, type BenchEnv } from '../env.ts';
import { fmt, ratio, table } from '../stats.ts';
import { say, type Scenario } from './types.ts';

const CONCURRENCY = 32;

async function saturate(env: BenchEnv, n: number, open: (i: number) => Promise<{ wait: Promise<number>; go: () => Promise<void>; result: () => Promise<unknown> }>): Promise<{ seconds: number; done: number }> {
  const started = performance.now();
  let done = 0;
  const failures: string[] = [];
  const finished: Array<Promise<void>> = [];
  await pool(
    Array.from({ length: n }, (_, i) => i),
    CONCURRENCY,
    async (i) => {
      const run = await open(i);
      finished.push(
        (async () => {
          try {
            await run.wait;
            await run.go();
            await run.result();
            done++;
          } catch (error) {
            failures.push((error as Error).message);
          }
        })(),
      );
    },
  );
  await within(`${n} runs drained`, 20 * 60_000, Promise.all(finished));
  void env;
  if (failures.length > 0) say(`  ${failures.length} of ${n} failed; first: ${failures[0]}`);
  return { seconds: (performance.now() - started) / 1000, done };
}

export const throughput: Scenario = {
  name: 'throughput',
  title: '5. Throughput with the pipeline saturated (changes completed per second)',
  async run(options) {
    const n = options.n ?? (options.quick ? 20 : 300);
    const env = await startBenchEnv('throughput', { ...(options.maxCached !== undefined ? { maxCachedWorkflows: options.maxCached } : {}) });
    try {
      // Warm-up, and the activity count of one change.
      const counts = await deliverOne(env, 'acme/shop#1');

      const change = await saturate(env, n, async (i) => {
        const c = `acme/shop#${1000 + i}`;
        const head = sha();
        const wait = env.awaiting(c);
        await env.openChange(c, head);
        return { wait, go: () => env.approve(c, head), result: () => env.client.workflow.getHandle(`change:${c}`).result() };
      });
      const input = bareInputLike(counts);
      const bare = await saturate(env, n, async (i) => {
        const id = `bare-${i}`;
        const wait = env.bareAwaiting(id);
        await env.startBare(id, input);
        return { wait, go: () => env.signalBare(id), result: () => env.client.workflow.getHandle(id).result() };
      });
      const cRate = change.done / change.seconds;
      const bRate = bare.done / bare.seconds;
      say(`${n} changes, started ${CONCURRENCY} at a time, each approved as soon as it waits; activities per change: orchestrator ${counts.orchestrator}, checks ${counts.checks}, deploy ${counts.deploy}`);
      say(
        table(
          ['figure', 'changeWorkflow', 'bare baseline', 'ratio'],
          [
            ['completed', `${change.done}/${n}`, `${bare.done}/${n}`, ''],
            ['time to drain (s)', fmt(change.seconds), fmt(bare.seconds), ratio(change.seconds, bare.seconds)],
            ['completed per second', fmt(cRate, 2), fmt(bRate, 2), ratio(cRate, bRate)],
            ['activities per second', fmt((cRate * (counts.orchestrator + counts.checks + counts.deploy)) as number, 1), fmt(bRate * (counts.orchestrator + counts.checks + counts.deploy), 1), ''],
          ],
        ),
      );
    } finally {
      await env.stop();
    }
  },
};
