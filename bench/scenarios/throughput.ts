// 5. Throughput: N changes started together and approved as soon as each waits (the pipeline saturated);
// changes completed end to end per second. Baseline: N bare workflows (same activity count, one signal)
// driven the same way on the same server.
import { bareInputLike, deliverOne, pool, startBenchEnv, sha, within, type BenchEnv } from '../env.ts';
import { fmt, median, ratio, ratioSpread, table } from '../stats.ts';
import { recordGoal, say, type Scenario } from './types.ts';

const CONCURRENCY = 32;

async function saturate(
  env: BenchEnv,
  n: number,
  open: (i: number) => Promise<{ wait: Promise<number>; go: () => Promise<void>; result: () => Promise<unknown> }>,
): Promise<{ seconds: number; done: number }> {
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
    const env = await startBenchEnv('throughput', {
      ...(options.maxCached !== undefined ? { maxCachedWorkflows: options.maxCached } : {}),
    });
    try {
      // Warm-up, and the activity count of one change.
      const counts = await deliverOne(env, 'acme/shop#1');

      const input = bareInputLike(counts);
      const perRound: Array<{ c: number; b: number; cs: number; bs: number; done: number; bareDone: number }> = [];
      for (let round = 0; round < options.rounds; round++) {
        const change = await saturate(env, n, async (i) => {
          const c = `acme/shop#${1000 + round * n + i}`;
          const head = sha();
          const wait = env.awaiting(c);
          await env.openChange(c, head);
          return {
            wait,
            go: () => env.approve(c, head),
            result: () => env.client.workflow.getHandle(`change:${c}`).result(),
          };
        });
        const bare = await saturate(env, n, async (i) => {
          const id = `bare-${round}-${i}`;
          const wait = env.bareAwaiting(id);
          await env.startBare(id, input);
          return { wait, go: () => env.signalBare(id), result: () => env.client.workflow.getHandle(id).result() };
        });
        const r = {
          c: change.done / change.seconds,
          b: bare.done / bare.seconds,
          cs: change.seconds,
          bs: bare.seconds,
          done: change.done,
          bareDone: bare.done,
        };
        perRound.push(r);
        say(
          `round ${round + 1}: ${fmt(r.c, 2)} vs ${fmt(r.b, 2)} completed per second bare (${ratio(r.c, r.b)}), ${r.done}/${n} and ${r.bareDone}/${n} completed`,
        );
      }
      const med = (f: (r: (typeof perRound)[number]) => number) => median(perRound.map(f));
      const rates = perRound.map((r) => r.c / r.b);
      say(
        `${n} changes a round, ${options.rounds} rounds, started ${CONCURRENCY} at a time, each approved as soon as it waits; activities per change: orchestrator ${counts.orchestrator}, checks ${counts.checks}, deploy ${counts.deploy}`,
      );
      say(
        table(
          ['figure (median of the rounds)', 'changeWorkflow', 'bare baseline', 'ratio'],
          [
            [
              'time to drain (s)',
              fmt(med((r) => r.cs)),
              fmt(med((r) => r.bs)),
              ratioSpread(perRound.map((r) => r.cs / r.bs)),
            ],
            [
              'completed per second',
              fmt(
                med((r) => r.c),
                2,
              ),
              fmt(
                med((r) => r.b),
                2,
              ),
              ratioSpread(rates),
            ],
          ],
        ),
      );
      const allDone = perRound.every((r) => r.done === n);
      recordGoal(
        'throughput ≥ 0.95× bare',
        `${fmt(
          med((r) => r.c),
          2,
        )} / ${fmt(
          med((r) => r.b),
          2,
        )} changes/s bare, ${n} a round${allDone ? '' : ', NOT all completed'}`,
        rates,
        (x) => x >= 0.95,
        allDone,
      );
    } finally {
      await env.stop();
    }
  },
};
