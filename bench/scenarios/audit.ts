// 7. Audit export of a period (issue 18 part 5): N changes of one repository, each driven through the real
// changeWorkflow (opened without commits as the gateway sends it, pull request looked up, checks, one
// approval, staging and production deployed and verified, merged), then `foureyes audit --repo … --since …
// --format csv --out <dir>` run as a child process against the bench's Temporal: wall time and peak RSS of the
// child. Baseline, same round: a child that lists the same workflows through the same visibility query and
// pagination and fetches each one's history, and does nothing else (bench/audit-baseline.ts). Both are run
// for the first N/5 changes (200 by default; --until the moment they had all started) and for all N, on the
// same server holding all N, interleaved over the rounds: a peak RSS that stays flat from N/5 to N means the
// export streams. --seconds bounds how long one run creates changes; with BENCH_AUDIT_DATA=<dir> the Temporal
// database is kept there and the next run continues the population, and the run that completes it measures.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { periodQuery } from '../../src/audit/export.ts';
import { generateSigningKey, type SigningKey } from '../../src/shared/approval-signature.ts';
import { pool, sha, startBenchEnv, within, type BenchEnv } from '../env.ts';
import { fmt, median, ratioSpread, table } from '../stats.ts';
import { say, type Scenario } from './types.ts';

const REPO = 'acme/shop';
const CONCURRENCY = 48;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface ChildRun {
  ms: number;
  rssMiB: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <args>` from the repository root with the peak-RSS hook preloaded; wall time and peak RSS. */
function measured(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', './bench/max-rss.mjs', ...args], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      const kib = Number(/bench-max-rss-kib (\d+)/.exec(stderr)?.[1] ?? Number.NaN);
      resolve({ ms, rssMiB: kib / 1024, code, stdout, stderr });
    });
  });
}

/**
 * Drives changes #from … #from+count-1 through the real workflow, `CONCURRENCY` at a time, to completion;
 * starts no new one after `deadline` (performance.now()). Returns how many were started (all of them finished).
 */
async function create(
  env: BenchEnv,
  from: number,
  count: number,
  deadline: number,
): Promise<{ seconds: number; started: number; failures: string[] }> {
  const t0 = performance.now();
  let done = 0;
  let started = 0;
  const failures: string[] = [];
  const ticker = setInterval(
    () => say(`  created ${done} of ${count}, ${fmt((performance.now() - t0) / 1000)} s`),
    30_000,
  );
  try {
    await pool(
      Array.from({ length: count }, (_, i) => from + i),
      CONCURRENCY,
      async (number) => {
        if (performance.now() > deadline) return;
        started++;
        const change = `${REPO}#${number}`;
        const head = sha();
        try {
          const waiting = env.awaiting(change);
          await env.openChange(change, head);
          await within(`${change} waiting for approval`, 5 * 60_000, waiting);
          for (let attempt = 1; ; attempt++) {
            try {
              await env.approve(change, head);
              break;
            } catch (error) {
              // As in the scale scenario: an approval that got no answer is tried once more.
              if (/not counted/.test((error as Error).message) || attempt >= 2) throw error;
              await sleep(1000);
            }
          }
          await within(`${change} delivered`, 5 * 60_000, env.client.workflow.getHandle(`change:${change}`).result());
          done++;
        } catch (error) {
          failures.push((error as Error).message);
        }
      },
    );
  } finally {
    clearInterval(ticker);
  }
  return { seconds: (performance.now() - t0) / 1000, started, failures };
}

/** What one change's history contains: event count, and activities by type, signals and updates. */
async function historyContents(env: BenchEnv, change: string): Promise<string> {
  const history = await env.client.workflow.getHandle(`change:${change}`).fetchHistory();
  const events = history.events ?? [];
  const activities = new Map<string, number>();
  let signals = 0;
  let updates = 0;
  let upserts = 0;
  let tasks = 0;
  for (const e of events) {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name) activities.set(name, (activities.get(name) ?? 0) + 1);
    if (e.workflowExecutionSignaledEventAttributes) signals++;
    if (e.workflowExecutionUpdateAcceptedEventAttributes) updates++;
    if (e.upsertWorkflowSearchAttributesEventAttributes) upserts++;
    if (e.workflowTaskCompletedEventAttributes) tasks++;
  }
  const list = [...activities].map(([k, v]) => (v > 1 ? `${k} ×${v}` : k)).join(', ');
  return `${events.length} events: ${signals} signal(s), ${updates} update(s) (approval), ${[...activities.values()].reduce((a, b) => a + b, 0)} activities (${list}), ${upserts} search-attribute upserts, ${tasks} workflow tasks`;
}

interface Round {
  exportMs: number;
  exportRss: number;
  baseMs: number;
  baseRss: number;
}

export const audit: Scenario = {
  name: 'audit',
  title: '8. Audit export of a period (`foureyes audit --repo … --since … --format csv`), time and peak RSS',
  async run(options) {
    const n = options.n ?? (options.quick ? 50 : 1000);
    // BENCH_AUDIT_DATA=<dir> keeps Temporal's database (and the period and key) there, so that the population
    // can be built over several runs of at most --seconds of creating each; the run that completes it measures.
    const dataDir = process.env.BENCH_AUDIT_DATA;
    const metaFile = dataDir ? join(dataDir, 'audit-meta.json') : undefined;
    const meta: { since: string; until?: string; small?: number; key: SigningKey } =
      metaFile && existsSync(metaFile)
        ? (JSON.parse(readFileSync(metaFile, 'utf8')) as typeof meta)
        : { since: new Date(Date.now() - 1000).toISOString(), key: generateSigningKey() };
    const save = () => {
      if (metaFile) writeFileSync(metaFile, JSON.stringify(meta));
    };
    // The small population is the one the period's --until was taken for, once there is one.
    const small = Math.min(n, meta.small ?? Math.max(1, Math.round(n / 5)));
    if (dataDir) mkdirSync(dataDir, { recursive: true });
    save();
    const deadline = performance.now() + (options.seconds ?? Number.POSITIVE_INFINITY) * 1000;
    // Creating the population is not what is measured: the orchestrator keeps every run cached so that the
    // changes go through without replays (--max-cached overrides it).
    const env = await startBenchEnv('audit', {
      maxCachedWorkflows: options.maxCached ?? n + 100,
      key: meta.key,
      ...(dataDir ? { dataDir } : {}),
    });
    try {
      const childEnv: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: env.temporal.address,
        TEMPORAL_NAMESPACE: env.temporal.namespace,
        FOUREYES_DATA: join(env.dir, 'data'),
        // The export is signed, as an auditor's would be.
        FOUREYES_AUDIT_SIGNING_KEY: env.key.privateKey,
      };
      const period = (until?: string) => ['--since', meta.since, ...(until ? ['--until', until] : [])];
      const exportArgs = (out: string, until?: string) => [
        'bin/foureyes.js',
        'audit',
        '--repo',
        REPO,
        ...period(until),
        '--format',
        'csv',
        '--out',
        out,
      ];
      const baseArgs = (until?: string) => [
        '--import',
        'tsx',
        'bench/audit-baseline.ts',
        REPO,
        meta.since,
        ...(until ? [until] : []),
      ];
      let existing = (await env.client.workflow.count(`FoureyesRepo = '${REPO}' AND WorkflowType = 'changeWorkflow'`))
        .count;
      if (existing > 0) say(`${existing} changes of ${REPO} already there (BENCH_AUDIT_DATA=${dataDir})`);
      for (const size of [...new Set([small, n])]) {
        if (existing < size && performance.now() < deadline) {
          const made = await create(env, 1 + existing, size - existing, deadline);
          say(
            `created changes ${REPO}#${1 + existing}…#${existing + made.started} in ${fmt(made.seconds)} s (${fmt(made.started / made.seconds, 2)}/s, ${CONCURRENCY} at a time through the real changeWorkflow)${made.failures.length ? `; ${made.failures.length} FAILED, first: ${made.failures[0]}` : ''}`,
          );
          if (made.failures.length) throw new Error(`${made.failures.length} changes were not delivered`);
          existing += made.started;
        }
        // Every one of the first `small` changes started before this moment, and every later one after it.
        if (size === small && existing === small && !meta.until) {
          meta.until = new Date().toISOString();
          meta.small = small;
          save();
        }
      }
      if (existing < n) {
        say(
          `population: ${existing} of ${n} changes after the --seconds budget; run again with the same BENCH_AUDIT_DATA to continue (nothing measured)`,
        );
        return;
      }
      say(`one change's history (${REPO}#1): ${await historyContents(env, `${REPO}#1`)}`);
      const sizes = [...new Set([small, n])].map((size) => ({ size, until: size === n ? undefined : meta.until }));
      for (const { size, until } of sizes) {
        // Visibility may lag the last completions by a moment.
        const query = periodQuery(REPO, new Date(meta.since), until ? new Date(until) : undefined);
        for (let i = 0; i < 60 && (await env.client.workflow.count(query)).count < size; i++) await sleep(500);
      }
      say(
        `export:   node --import ./bench/max-rss.mjs ${exportArgs('<tmp>/out').join(' ')}   (N=${small}: also --until ${meta.until})\nbaseline: node --import ./bench/max-rss.mjs ${baseArgs().join(' ')}   (N=${small}: also ${meta.until})\n(peak RSS: the child's getrusage maxRSS at exit; the export signed with FOUREYES_AUDIT_SIGNING_KEY)`,
      );
      const results = new Map<number, { rounds: Round[]; eventsPerChange: number }>();
      for (let round = 0; round < options.rounds; round++) {
        for (const { size, until } of sizes) {
          const out = join(env.dir, `out-${size}-${round}`);
          mkdirSync(out, { recursive: true });
          const runExport = async () => {
            const r = await measured(exportArgs(out, until), childEnv, 8 * 60_000);
            const exported = Number(/exported (\d+) change/.exec(r.stderr)?.[1] ?? Number.NaN);
            if (r.code !== 0 || exported !== size)
              throw new Error(
                `export at N=${size} exited ${r.code}, exported ${exported}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`,
              );
            return r;
          };
          let events = Number.NaN;
          const runBase = async () => {
            const r = await measured(baseArgs(until), childEnv, 8 * 60_000);
            const line = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as {
              changes?: number;
              events?: number;
            };
            if (r.code !== 0 || line.changes !== size)
              throw new Error(`baseline at N=${size} exited ${r.code}, ${line.changes} changes: ${r.stderr.trim()}`);
            events = (line.events ?? Number.NaN) / size;
            return r;
          };
          // Interleaved, and the order alternates so that neither always runs first.
          let e: ChildRun, b: ChildRun;
          if (round % 2 === 0) {
            e = await runExport();
            b = await runBase();
          } else {
            b = await runBase();
            e = await runExport();
          }
          rmSync(out, { recursive: true, force: true });
          const r = { exportMs: e.ms, exportRss: e.rssMiB, baseMs: b.ms, baseRss: b.rssMiB };
          const entry = results.get(size) ?? { rounds: [], eventsPerChange: events };
          entry.rounds.push(r);
          results.set(size, entry);
          say(
            `round ${round + 1}, N=${size}: export ${fmt(r.exportMs / 1000, 2)} s, peak RSS ${fmt(r.exportRss)} MiB; baseline ${fmt(r.baseMs / 1000, 2)} s, ${fmt(r.baseRss)} MiB (time ${fmt(r.exportMs / r.baseMs, 2)}×)`,
          );
        }
      }
      const rows: string[][] = [];
      for (const [size, { rounds, eventsPerChange }] of results) {
        const med = (f: (r: Round) => number) => median(rounds.map(f));
        rows.push(
          [
            `N=${size}: total (s)`,
            fmt(med((r) => r.exportMs) / 1000, 2),
            fmt(med((r) => r.baseMs) / 1000, 2),
            ratioSpread(rounds.map((r) => r.exportMs / r.baseMs)),
          ],
          [
            `N=${size}: per change (ms, total / N)`,
            fmt(med((r) => r.exportMs) / size),
            fmt(med((r) => r.baseMs) / size),
            '',
          ],
          [
            `N=${size}: peak RSS (MiB; lowest–highest)`,
            `${fmt(med((r) => r.exportRss))} (${fmt(Math.min(...rounds.map((r) => r.exportRss)))}–${fmt(Math.max(...rounds.map((r) => r.exportRss)))})`,
            `${fmt(med((r) => r.baseRss))} (${fmt(Math.min(...rounds.map((r) => r.baseRss)))}–${fmt(Math.max(...rounds.map((r) => r.baseRss)))})`,
            ratioSpread(rounds.map((r) => r.exportRss / r.baseRss)),
          ],
          [`N=${size}: history events per change`, '', fmt(eventsPerChange), ''],
        );
      }
      say(
        `${options.rounds} rounds at each N, export and baseline alternating first; figures are medians of the rounds, ratios the median (lowest–highest) of the per-round ratios`,
      );
      say(table(['figure', 'foureyes audit (csv)', 'baseline: list + fetch histories', 'ratio'], rows));
      const a = results.get(small);
      const b = results.get(n);
      if (a && b && small !== n) {
        const med = (x: Round[], f: (r: Round) => number) => median(x.map(f));
        const marginal = (f: (r: Round) => number) => (med(b.rounds, f) - med(a.rounds, f)) / (n - small);
        say(
          `from N=${small} to N=${n}: export peak RSS ${fmt(med(a.rounds, (r) => r.exportRss))} → ${fmt(med(b.rounds, (r) => r.exportRss))} MiB (${fmt(med(b.rounds, (r) => r.exportRss) - med(a.rounds, (r) => r.exportRss))} MiB), baseline ${fmt(med(a.rounds, (r) => r.baseRss))} → ${fmt(med(b.rounds, (r) => r.baseRss))} MiB (${fmt(med(b.rounds, (r) => r.baseRss) - med(a.rounds, (r) => r.baseRss))} MiB); marginal time per added change: export ${fmt(marginal((r) => r.exportMs))} ms, baseline ${fmt(marginal((r) => r.baseMs))} ms (${fmt(marginal((r) => r.exportMs) / marginal((r) => r.baseMs), 2)}×)`,
        );
      }
    } finally {
      await env.stop();
    }
  },
};
