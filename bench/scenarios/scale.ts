// 4. Scale: N changes open and waiting for approval at once. Figures: time to start them all (until every
// workflow reported it waits), RSS of each worker process, size of the Temporal database file, time to
// approve all and drain to done, and the count lost (must be 0). Baseline: N bare workflows waiting for
// their signal on the same server, then signalled and drained.
import { setTimeout as sleep } from 'node:timers/promises';
import { pool, startBenchEnv, sha, type BenchEnv, type ZoneName } from '../env.ts';
import { fmt, ratio, table } from '../stats.ts';
import { say, type Scenario } from './types.ts';

const CONCURRENCY = 32;

interface Phase {
  started: number;
  waiting: number;
  startSeconds: number;
  rss: Record<ZoneName, { rssMiB: number; peakMiB: number }>;
  dbMiB: number;
  approved: number;
  completed: number;
  drainSeconds: number;
  dbAfterMiB: number;
  peakAfter: Record<ZoneName, { rssMiB: number; peakMiB: number }>;
}

async function completedCount(env: BenchEnv, type: string): Promise<number> {
  return (await env.client.workflow.count(`WorkflowType="${type}" AND ExecutionStatus="Completed"`)).count;
}

async function phase(
  env: BenchEnv,
  n: number,
  deadlineMs: number,
  kind: 'change' | 'bare',
  progress: (line: string) => void,
): Promise<Phase> {
  const heads = Array.from({ length: n }, () => sha());
  const ids = Array.from({ length: n }, (_, i) => (kind === 'change' ? `acme/shop#${10_000 + i}` : `bare-${i}`));
  let waiting = 0;
  const counter = (m: { type: string }) => {
    if ((kind === 'change' && m.type === 'awaiting') || (kind === 'bare' && m.type === 'bareAwaiting')) waiting++;
  };
  env.onMessage.push(counter);
  const deadline = performance.now() + deadlineMs;
  const t0 = performance.now();
  let started = 0;
  const ticker = setInterval(
    () => progress(`  ${kind}: started ${started}, waiting ${waiting}, ${fmt((performance.now() - t0) / 1000)} s`),
    15_000,
  );
  try {
    await pool(ids, CONCURRENCY, async (id, i) => {
      if (performance.now() > deadline) return;
      if (kind === 'change') await env.openChange(id, heads[i] as string);
      else
        await env.startBare(id, {
          before: ['orchestrator', 'checks'],
          after: ['deploy', 'deploy', 'deploy', 'deploy', 'deploy', 'orchestrator'],
        });
      started++;
    });
    while (waiting < started && performance.now() < deadline) await sleep(100);
    const startSeconds = (performance.now() - t0) / 1000;
    await sleep(2000); // let the last tasks settle before measuring memory
    const rss = env.rss();
    const dbMiB = env.dbBytes() / 2 ** 20;
    progress(
      `  ${kind}: ${waiting} of ${started} waiting after ${fmt(startSeconds)} s; RSS orchestrator ${fmt(rss.orchestrator.rssMiB)} MiB, checks ${fmt(rss.checks.rssMiB)} MiB, deploy ${fmt(rss.deploy.rssMiB)} MiB; Temporal DB ${fmt(dbMiB)} MiB; approving all`,
    );
    const t1 = performance.now();
    let approved = 0;
    const failures: string[] = [];
    await pool(ids.slice(0, started), CONCURRENCY, async (id, i) => {
      if (performance.now() > deadline) return;
      // A person whose approval got no answer (e.g. DEADLINE_EXCEEDED while the orchestrator is saturated) is
      // told to check and try again; so does the bench, once. A retry after an approval that did count
      // anyway is refused as a repeat, which is fine: the change goes on.
      for (let attempt = 1; attempt <= 2; attempt++) {
        try {
          if (kind === 'change') await env.approve(id, heads[i] as string);
          else await env.signalBare(id);
          approved++;
          return;
        } catch (error) {
          failures.push((error as Error).message);
          if (/not counted/.test((error as Error).message)) return void approved++;
          await sleep(1000);
        }
      }
    });
    const type = kind === 'change' ? 'changeWorkflow' : 'bareWorkflow';
    let completed = await completedCount(env, type);
    let told = performance.now();
    while (completed < started && performance.now() < deadline) {
      await sleep(1000);
      completed = await completedCount(env, type);
      if (performance.now() - told > 60_000) {
        told = performance.now();
        progress(
          `  ${kind}: approved ${approved}, completed ${completed} of ${started}, ${fmt((told - t1) / 1000)} s into the drain; orchestrator RSS ${fmt(env.rss().orchestrator.rssMiB)} MiB`,
        );
      }
    }
    if (failures.length > 0)
      progress(`  ${kind}: ${failures.length} approval calls failed (each retried once); first: ${failures[0]}`);
    return {
      started,
      waiting,
      startSeconds,
      rss,
      dbMiB,
      approved,
      completed,
      drainSeconds: (performance.now() - t1) / 1000,
      dbAfterMiB: env.dbBytes() / 2 ** 20,
      peakAfter: env.rss(),
    };
  } finally {
    clearInterval(ticker);
    env.onMessage.splice(env.onMessage.indexOf(counter), 1);
  }
}

export const scale: Scenario = {
  name: 'scale',
  title: '4. Scale: N changes waiting for approval at once',
  async run(options) {
    const sizes = options.n !== undefined ? [options.n] : options.quick ? [50] : [1000, 10_000];
    for (const n of sizes) {
      const deadlineMs = (options.seconds ?? 20 * 60) * 1000;
      const env = await startBenchEnv(`scale-${n}`, {
        ...(options.maxCached !== undefined ? { maxCachedWorkflows: options.maxCached } : {}),
      });
      try {
        const idle = env.rss();
        const c = await phase(env, n, deadlineMs, 'change', say);
        const dbAfterChanges = env.dbBytes() / 2 ** 20;
        const b = options.skipBaseline ? undefined : await phase(env, n, deadlineMs, 'bare', say);
        // Lost = started (acknowledged by Temporal) but not completed by the deadline.
        const lost = c.started - c.completed;
        say(
          `N = ${n} (started ${CONCURRENCY} at a time, approved ${CONCURRENCY} at a time; phase deadline ${deadlineMs / 1000} s); idle worker RSS: ${(['orchestrator', 'checks', 'deploy'] as const).map((z) => `${z} ${fmt(idle[z].rssMiB)} MiB`).join(', ')}`,
        );
        const row = (label: string, cv: number, bv: number | undefined, digits = 1) => [
          label,
          fmt(cv, digits),
          bv === undefined ? '—' : fmt(bv, digits),
          bv === undefined ? '—' : ratio(cv, bv),
        ];
        say(
          table(
            ['figure', 'changeWorkflow', 'bare baseline', 'ratio'],
            [
              [`started / waiting`, `${c.started} / ${c.waiting}`, b ? `${b.started} / ${b.waiting}` : '—', ''],
              row('time to start all, waiting (s)', c.startSeconds, b?.startSeconds),
              row('started per second', c.started / c.startSeconds, b ? b.started / b.startSeconds : undefined),
              row('orchestrator RSS while all wait (MiB)', c.rss.orchestrator.rssMiB, b?.rss.orchestrator.rssMiB),
              row('checks RSS (MiB)', c.rss.checks.rssMiB, b?.rss.checks.rssMiB),
              row('deploy RSS (MiB)', c.rss.deploy.rssMiB, b?.rss.deploy.rssMiB),
              row(
                'orchestrator peak RSS to the end (MiB)',
                c.peakAfter.orchestrator.peakMiB,
                b?.peakAfter.orchestrator.peakMiB,
              ),
              row('Temporal DB while all wait (MiB)', c.dbMiB, b ? b.dbMiB - dbAfterChanges : undefined),
              row('Temporal DB after drain (MiB)', dbAfterChanges, b ? b.dbAfterMiB - dbAfterChanges : undefined),
              row('time to approve all and drain (s)', c.drainSeconds, b?.drainSeconds),
              row(
                'completed per second in the drain',
                c.completed / c.drainSeconds,
                b ? b.completed / b.drainSeconds : undefined,
                2,
              ),
              [
                `started / approved / completed / lost`,
                `${c.started} / ${c.approved} / ${c.completed} / ${lost}`,
                b ? `${b.started} / ${b.approved} / ${b.completed} / ${b.started - b.completed}` : '—',
                '',
              ],
            ],
          ),
        );
        say(
          "(bare DB figures: growth over the changes' DB; the bare workflows share the server with the finished changes)",
        );
        say(
          `goals: ${n} waiting on one orchestrator under 1 GiB RSS: ${c.rss.orchestrator.rssMiB < 1024 ? 'met' : 'NOT met'}; nothing lost: ${lost === 0 && c.started === n ? 'met' : `NOT met (${c.started}/${n} started, ${lost} of them not completed by the deadline)`}`,
        );
      } finally {
        await env.stop();
      }
    }
  },
};
