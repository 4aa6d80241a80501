// What every scenario stands on: its own Temporal dev server (SQLite file in a temp dir, free ports), the
// real workflow bundle, three worker processes (orchestrator / checks / deploy) with instant activities,
// a client, the approval signing key, and helpers to open, approve and wait for changes and for the bare
// baseline workflow. `stop()` ends every process it started and removes the temp dir.
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTemporalServer, type TemporalServer } from '../src/dev/temporal-server.ts';
import { dataDir } from '../src/dev/paths.ts';
import { ensureWorkflowBundle } from '../src/workers/bundle.ts';
import { generateSigningKey, signClaim, signEvent, type SigningKey } from '../src/shared/approval-signature.ts';
import { GitHubModel } from '../test/workflows/orchestrator-doubles.ts';
import type { ApprovalClaim, PullRequestEvent } from '../src/shared/types.ts';
import { approvalUpdate, pullRequestSignal } from '../src/workflows/definitions.ts';
import type { changeWorkflow } from '../src/workflows/change.ts';
import { goSignal, type bareWorkflow, type BareInput } from './bare-workflow.ts';
import type { WorkerMessage } from './worker.ts';

export const ZONE_NAMES = ['orchestrator', 'checks', 'deploy'] as const;
export type ZoneName = (typeof ZONE_NAMES)[number];

export const BENCH_CONFIG = `
people:
  - { github: sam-dev, emails: [sam@example.com] }
  - { github: alex-reviewer, emails: [alex@example.com] }
environments:
  - name: staging
    deploy: { run: "true", timeout: 60s }
    verify: { run: "true", timeout: 60s }
    approval: { required: 1, expiry: 72h }
  - name: production
    deploy: { run: "true", timeout: 60s }
    approval: { required: 1, expiry: 72h }
repositories:
  - { name: acme/shop, remote: /nonexistent, merge: true, checks: [{ name: unit, run: "true" }] }
  - { name: acme/base, remote: /nonexistent, merge: true, checks: [{ name: unit, run: "true" }] }
`;

const benchDir = dirname(fileURLToPath(import.meta.url));

/** The bare baseline's bundle, cached beside the real one while bare-workflow.ts is unchanged. */
async function bareBundle(): Promise<string> {
  const source = join(benchDir, 'bare-workflow.ts');
  const path = join(dataDir(process.env), 'bench-bare-bundle.js');
  if (existsSync(path) && statSync(path).mtimeMs >= statSync(source).mtimeMs) return path;
  const { code } = await bundleWorkflowCode({
    workflowsPath: source,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: (m: string) => console.error(m), log() {} },
  });
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, code);
  return path;
}

export function sha(): string {
  return (randomUUID() + randomUUID()).replace(/-/g, '').slice(0, 40);
}

export function openedEvent(headSha: string, author = 'sam-dev'): PullRequestEvent {
  return {
    kind: 'opened',
    deliveryId: randomUUID(),
    headSha,
    updatedAt: new Date().toISOString(),
    author,
    title: 'Make checkout faster',
    baseRef: 'main',
    headRef: 'fast',
    commits: [
      {
        sha: headSha,
        author: { login: author, email: 'sam@example.com' },
        committer: { login: author, email: 'sam@example.com' },
        message: 'faster',
      },
    ],
    changedFiles: ['src/checkout.ts'],
  };
}

export interface BenchEnv {
  temporal: TemporalServer;
  client: Client;
  key: SigningKey;
  taskQueue: string;
  bareQueue: string;
  workers: Record<ZoneName, ChildProcess>;
  dir: string;
  /** Paths of the workflow bundles the orchestrator runs: changeWorkflow's and the bare baseline's. */
  bundles: { change: string; bare: string };
  /** Called for every message of every worker (after the built-in bookkeeping). */
  onMessage: Array<(m: WorkerMessage, zone: ZoneName) => void>;
  openChange(change: string, headSha: string): Promise<void>;
  approve(change: string, headSha: string): Promise<void>;
  startBare(id: string, input: BareInput): Promise<void>;
  signalBare(id: string): Promise<void>;
  /** Resolves when the change's workflow reported that it waits for approval of `headSha`. */
  awaiting(change: string): Promise<number>;
  bareAwaiting(id: string): Promise<number>;
  /** Activities run and their own run time since the last reset, summed over the three workers. */
  activityStats(
    reset?: boolean,
  ): Promise<{ activities: number; activityMs: number; perZone: Record<ZoneName, number> }>;
  rss(): Record<ZoneName, { rssMiB: number; peakMiB: number }>;
  dbBytes(): number;
  stop(): Promise<void>;
}

const live = new Set<BenchEnv>();

/** Stops every environment still running (Ctrl-C): the Temporal server runs in a process group of its own. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((e) => e.stop()));
}

export async function startBenchEnv(
  name: string,
  /** `dataDir`: a folder kept after stop() (Temporal's database, so a later run continues); `key`: the signing key to reuse. */
  options: { maxCachedWorkflows?: number; dataDir?: string; key?: SigningKey } = {},
): Promise<BenchEnv> {
  const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), `foureyes-bench-${name}-`));
  mkdirSync(dir, { recursive: true });
  const bundle = await ensureWorkflowBundle(process.env);
  const bare = await bareBundle();
  const temporal = await startTemporalServer({ dataDir: dir, headless: true, logFile: join(dir, 'temporal.log') });
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: temporal.namespace });
  const key = options.key ?? generateSigningKey();
  const taskQueue = `bench-${name}`;
  const bareQueue = `bench-bare-${name}`;
  const configPath = join(dir, 'bench.yaml');
  writeFileSync(configPath, BENCH_CONFIG);
  // What "GitHub" shows the orchestrator's look-ups: written here as changes open, read by the worker process.
  const github = new GitHubModel(join(dir, 'github'));

  const waiters = new Map<string, { resolve: (t: number) => void; promise: Promise<number> }>();
  const waiter = (id: string) => {
    let entry = waiters.get(id);
    if (!entry) {
      let resolve!: (t: number) => void;
      const promise = new Promise<number>((r) => (resolve = r));
      entry = { resolve, promise };
      waiters.set(id, entry);
    }
    return entry;
  };
  const statsWaiters: Array<(m: Extract<WorkerMessage, { type: 'stats' }>, zone: ZoneName) => void> = [];
  const onMessage: BenchEnv['onMessage'] = [];

  const log = openSync(join(dir, 'workers.log'), 'a');
  const workers = {} as Record<ZoneName, ChildProcess>;
  const ready: Array<Promise<void>> = [];
  for (const zone of ZONE_NAMES) {
    const child = fork(join(benchDir, 'worker.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', log, log, 'ipc'],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        BENCH_ZONE: zone,
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: temporal.namespace,
        BENCH_TASK_QUEUE: taskQueue,
        BENCH_BARE_QUEUE: bareQueue,
        BENCH_CONFIG: configPath,
        BENCH_GITHUB_DIR: github.dir,
        FOUREYES_WORKFLOW_BUNDLE: bundle,
        BENCH_BARE_BUNDLE: bare,
        FOUREYES_APPROVAL_PUBLIC_KEYS: key.publicKey,
        ...(options.maxCachedWorkflows !== undefined ? { BENCH_MAX_CACHED: String(options.maxCachedWorkflows) } : {}),
      },
    });
    workers[zone] = child;
    ready.push(
      new Promise<void>((resolve, reject) => {
        child.once('exit', (code) =>
          reject(
            new Error(`bench worker ${zone} exited (${code}) before it was ready; see ${join(dir, 'workers.log')}`),
          ),
        );
        child.on('message', (m: WorkerMessage) => {
          if (m.type === 'ready') resolve();
          else if (m.type === 'awaiting') waiter(`awaiting:${m.change}`).resolve(m.t);
          else if (m.type === 'bareAwaiting') waiter(`bare:${m.id}`).resolve(m.t);
          else if (m.type === 'stats') statsWaiters.shift()?.(m, zone);
          for (const listener of onMessage) listener(m, zone);
        });
      }),
    );
  }
  await Promise.all(ready);

  const proc = (pid: number | undefined, field: string) => {
    const text = pid ? readFileSync(`/proc/${pid}/status`, 'utf8') : '';
    const kb = Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    return kb / 1024;
  };

  const benchEnv: BenchEnv = {
    temporal,
    client,
    key,
    taskQueue,
    bareQueue,
    workers,
    dir,
    bundles: { change: bundle, bare },
    onMessage,
    async openChange(change, headSha) {
      // As the gateway does it: GitHub shows the pull request, and the event (without commits) is signed.
      const event = openedEvent(headSha);
      github.set(change, {
        state: 'open',
        merged: false,
        title: event.title,
        author: event.author,
        headRef: event.headRef,
        head: { sha: headSha, baseRef: event.baseRef, commits: event.commits ?? [], files: event.changedFiles ?? [] },
      });
      const { commits: _commits, changedFiles: _files, ...facts } = event;
      await client.workflow.signalWithStart<typeof changeWorkflow, [PullRequestEvent]>('changeWorkflow', {
        workflowId: `change:${change}`,
        taskQueue,
        args: [{ change }],
        signal: pullRequestSignal,
        signalArgs: [signEvent({ ...facts, change, at: new Date().toISOString() }, key)],
      });
    },
    async approve(change, headSha) {
      const claim: ApprovalClaim = {
        v: 1,
        change,
        sha: headSha,
        person: 'alex-reviewer',
        channel: 'cli',
        decision: 'approve',
        evidence: { tokenLogin: 'alex-reviewer' },
        at: new Date().toISOString(),
        nonce: randomUUID(),
      };
      let outcome;
      try {
        outcome = await client.workflow
          .getHandle(`change:${change}`)
          .executeUpdate(approvalUpdate, { args: [signClaim(claim, key)] });
      } catch (error) {
        const cause = (error as { cause?: Error }).cause;
        throw new Error(
          `approval of ${change}: ${(error as Error).message}${cause ? `: ${cause.name} ${cause.message}` : ''}`,
        );
      }
      if (!outcome.counted) throw new Error(`approval of ${change} not counted: ${outcome.reason}`);
    },
    async startBare(id, input) {
      await client.workflow.start<typeof bareWorkflow>('bareWorkflow', {
        workflowId: id,
        taskQueue: bareQueue,
        args: [input],
      });
    },
    async signalBare(id) {
      await client.workflow.getHandle(id).signal(goSignal);
    },
    awaiting: (change) => waiter(`awaiting:${change}`).promise,
    bareAwaiting: (id) => waiter(`bare:${id}`).promise,
    async activityStats(reset = false) {
      const answers = await Promise.all(
        ZONE_NAMES.map(
          (zone) =>
            new Promise<{ zone: ZoneName; activities: number; activityMs: number }>((resolve) => {
              statsWaiters.push((m, from) =>
                resolve({ zone: from, activities: m.activities, activityMs: m.activityMs }),
              );
              workers[zone].send({ type: 'stats', reset });
            }),
        ),
      );
      const perZone = Object.fromEntries(answers.map((a) => [a.zone, a.activities])) as Record<ZoneName, number>;
      return {
        activities: answers.reduce((s, a) => s + a.activities, 0),
        activityMs: answers.reduce((s, a) => s + a.activityMs, 0),
        perZone,
      };
    },
    rss() {
      return Object.fromEntries(
        ZONE_NAMES.map((z) => [z, { rssMiB: proc(workers[z].pid, 'VmRSS'), peakMiB: proc(workers[z].pid, 'VmHWM') }]),
      ) as Record<ZoneName, { rssMiB: number; peakMiB: number }>;
    },
    dbBytes() {
      return ['', '-wal', '-shm'].reduce(
        (sum, suffix) => sum + (existsSync(temporal.dbFile + suffix) ? statSync(temporal.dbFile + suffix).size : 0),
        0,
      );
    },
    async stop() {
      await Promise.all(
        ZONE_NAMES.map(async (zone) => {
          const child = workers[zone];
          if (child.exitCode !== null) return;
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        }),
      );
      await connection.close();
      await temporal.process.stop();
      live.delete(benchEnv);
      if (!process.env.BENCH_KEEP && !options.dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(benchEnv);
  return benchEnv;
}

/**
 * The bare baseline's activities mirroring one change's counts: the orchestrator's (policy, reports) and the
 * checks before the signal (the approval request is one orchestrator activity), the deploy zone's after.
 */
export function bareInputLike(perZone: Record<ZoneName, number>): BareInput {
  return {
    before: [
      ...Array<string>(Math.max(0, perZone.orchestrator - 1)).fill('orchestrator'),
      ...Array<string>(perZone.checks).fill('checks'),
    ],
    after: Array<string>(perZone.deploy).fill('deploy'),
  };
}

/** One change opened, approved once it waits, and delivered; the activities it ran, per zone. */
export async function deliverOne(env: BenchEnv, change: string): Promise<Record<ZoneName, number>> {
  const head = sha();
  const waiting = env.awaiting(change);
  await env.activityStats(true);
  await env.openChange(change, head);
  await within(`${change} waiting for approval`, 60_000, waiting);
  await env.approve(change, head);
  await within(`${change} delivered`, 60_000, env.client.workflow.getHandle(`change:${change}`).result());
  return (await env.activityStats(true)).perZone;
}

/** Fails with `what` after `ms` instead of waiting forever on a stuck run. */
export async function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms / 1000} s`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `work` over `items` with at most `concurrency` in flight. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await work(items[i] as T, i);
      }
    }),
  );
}
