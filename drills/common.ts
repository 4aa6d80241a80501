// What every drill shares: driving one change through the stand-in (open, approve, close) while faults
// land, and the invariants judged after the drill (from the ledger, OpenBao, PostgreSQL, the stand-in
// and Temporal), never from the system's own opinion of itself.
import { Worker } from '@temporalio/worker';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChangeStatus } from '../src/shared/types.ts';
import { untracedWorkflowSinks } from '../src/workers/tracing.ts';
import { REPO, type DrillStack } from './stack.ts';

export interface DrillResult {
  drill: string;
  changes: number;
  faults: string;
  delivered: number;
  lost: number;
  deployAttempts: number;
  effectiveDeploys: number;
  duplicateDeploys: number;
  leakedLeases: number;
  leftoverRoles: number;
  githubDuplicates: number;
  /** Drill-specific figures (printed under the table). */
  notes: string[];
  /** Broken invariants; empty = pass. */
  failures: string[];
  seconds: number;
}

export interface DrillOptions {
  long: boolean;
  log: (line: string) => void;
  keep: boolean;
  /** The stack all drills of one run share (started once: starting it is most of a short drill's time). */
  stack: DrillStack;
}

export type Drill = (options: DrillOptions) => Promise<DrillResult>;

/** The change's status through the gateway, or undefined while it cannot answer (a fault is in progress). */
export async function statusOf(stack: DrillStack, n: number): Promise<ChangeStatus | undefined> {
  try {
    return await stack.status(n);
  } catch {
    return undefined;
  }
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${Math.round(timeoutMs / 1000)}s`);
    await sleep(everyMs);
  }
}

export const workflowIdOf = (n: number) => `change:${REPO}#${n}`;

/** The workflow's closed outcome ('delivered' / 'abandoned'), or undefined while it runs. */
export async function closedOutcome(stack: DrillStack, n: number): Promise<string | undefined> {
  const handle = stack.client.workflow.getHandle(workflowIdOf(n));
  const d = await handle.describe();
  if (d.status.name === 'RUNNING') return undefined;
  if (d.status.name !== 'COMPLETED') return d.status.name;
  const r = (await handle.result()) as { outcome?: string };
  return r.outcome ?? 'unknown';
}

/**
 * A webhook the stand-in could not get acknowledged (gateway or Temporal down) is redelivered, with the same
 * delivery ID, as an operator would from "Recent deliveries", until it is acknowledged.
 */
export async function ensureDelivered(
  stack: DrillStack,
  delivery: string,
  status: number | undefined,
  timeoutMs = 120_000,
): Promise<number> {
  let s = status;
  let redeliveries = 0;
  const deadline = Date.now() + timeoutMs;
  while (s === undefined || s >= 300) {
    if (Date.now() > deadline) throw new Error(`delivery ${delivery} never acknowledged (last ${s ?? 'no answer'})`);
    await sleep(1000);
    s = await stack.github.standin.sendDelivery(delivery);
    redeliveries++;
  }
  return redeliveries;
}

/** Replays the histories of these changes (every run of each) with the orchestrators' bundle; the failures. */
export async function replayAll(stack: DrillStack, numbers: number[]): Promise<string[]> {
  const histories = [];
  for (const n of numbers) {
    const runs = stack.client.workflow.list({ query: `WorkflowId = '${workflowIdOf(n)}'` });
    // Under the run's own workflow ID: a run checks that its input names the change it runs for.
    for await (const run of runs)
      histories.push({
        workflowId: run.workflowId,
        runId: run.runId,
        history: await stack.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory(),
      });
  }
  const failures: string[] = [];
  let i = 0;
  for await (const result of Worker.runReplayHistories(
    { workflowBundle: { code: stack.workflowBundleCode }, replayName: 'drill-replay', sinks: untracedWorkflowSinks },
    histories,
  )) {
    const replayed = histories[i++];
    if (result.error)
      failures.push(`${result.workflowId} ${replayed?.runId ?? ''}: ${result.error.message.slice(0, 200)}`);
  }
  return failures;
}

/** One change end to end: Sam opens it, Alex approves its head once checks ask for it, closed once delivered. */
export async function driveChange(
  stack: DrillStack,
  timeoutMs: number,
  hooks: { redeliveries?: (n: number) => void } = {},
): Promise<{ number: number; sha: string; outcome: string }> {
  const opened = await stack.openChange();
  const n = opened.number;
  const count = (k: number) => hooks.redeliveries?.(k);
  count(await ensureDelivered(stack, opened.delivery, opened.status));
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1000, deadline - Date.now());
  await waitFor(
    `#${n} awaiting approval`,
    async () => {
      const s = await statusOf(stack, n);
      return s && (s.stage === 'awaiting-approval' || s.stage === 'checks-failed') ? s : undefined;
    },
    left(),
  );
  const approved = await stack.approve(n, opened.sha);
  count(await ensureDelivered(stack, approved.delivery, approved.status));
  const final = await waitFor(
    `#${n} delivered`,
    async () => {
      const s = await statusOf(stack, n);
      return s && ['delivered', 'failed', 'checks-failed', 'rejected'].includes(s.stage) ? s : undefined;
    },
    left(),
  );
  const closed = await stack.close(n);
  count(await ensureDelivered(stack, closed.delivery, closed.status));
  const outcome = await waitFor(`#${n} closed`, () => closedOutcome(stack, n), left());
  return {
    number: n,
    sha: opened.sha,
    outcome: final.stage === 'delivered' ? outcome : `${final.stage} (${final.waitingFor})`,
  };
}

/** Runs `count` changes, at most `parallel` at a time. */
export async function driveChanges(
  stack: DrillStack,
  count: number,
  parallel: number,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<Array<{ number: number; sha: string; outcome: string }>> {
  const results: Array<{ number: number; sha: string; outcome: string }> = [];
  let started = 0;
  const lane = async () => {
    while (started < count) {
      started++;
      try {
        const r = await driveChange(stack, timeoutMs);
        results.push(r);
        if (r.outcome !== 'delivered') log(`#${r.number}: ${r.outcome}`);
      } catch (error) {
        results.push({ number: -1, sha: '', outcome: `lost: ${(error as Error).message}` });
        log(`lost: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, () => lane()));
  return results;
}

/** Deploy ledger, leases, database roles and GitHub writes, judged after the drill. */
export async function judge(
  stack: DrillStack,
  drill: string,
  changes: Array<{ number: number; sha: string; outcome: string }>,
  faults: string,
  started: number,
): Promise<DrillResult> {
  const failures: string[] = [];
  const delivered = changes.filter((c) => c.outcome === 'delivered');
  const lost = changes.length - delivered.length;
  if (lost > 0)
    failures.push(
      `${lost} change(s) not delivered: ${changes
        .filter((c) => c.outcome !== 'delivered')
        .map((c) => `#${c.number} ${c.outcome}`)
        .slice(0, 3)
        .join('; ')}`,
    );

  // The stack is shared by the drills of a run: judge only this drill's changes.
  const mine = (change: string, sha: string) => changes.some((c) => `${REPO}#${c.number}` === change && c.sha === sha);
  const ledger = stack.ledger();
  const attempts = ledger.attempts.filter((e) => changes.some((c) => `${REPO}#${c.number}` === e.change));
  const effective = ledger.effective.filter((e) => changes.some((c) => `${REPO}#${c.number}` === e.change));
  const perKey = new Map<string, number>();
  for (const e of effective) perKey.set(e.key, (perKey.get(e.key) ?? 0) + 1);
  const duplicateDeploys = [...perKey.values()].filter((v) => v > 1).length;
  if (duplicateDeploys > 0) failures.push(`${duplicateDeploys} idempotency key(s) deployed more than once`);
  let missing = 0;
  for (const c of delivered)
    for (const env of ['staging', 'production']) if (!perKey.has(`${REPO}#${c.number}@${env}@${c.sha}`)) missing++;
  if (missing > 0) failures.push(`${missing} delivered (change, environment) pair(s) missing from the deploy ledger`);
  const unexpected = effective.filter((e) => !mine(e.change, e.sha)).length;
  if (unexpected > 0 && lost === 0) failures.push(`${unexpected} deploy(s) of changes that were not delivered`);

  // Revocation of the last lease is synchronous in the deploy step, so nothing should be left by now.
  const leases = (await stack.outstandingLeases()).filter((l) => !stack.baseline.leases.has(l));
  if (leases.length > 0) failures.push(`${leases.length} lease(s) outstanding in OpenBao, e.g. ${leases[0]}`);
  const roles = (await stack.leftoverRoles()).filter((r) => !stack.baseline.roles.has(r));
  if (roles.length > 0)
    failures.push(`${roles.length} leased role(s) left in PostgreSQL: ${roles.slice(0, 3).join(', ')}`);

  // Every history must replay with the code that recorded it: a change that does not is stuck the next time a
  // worker has to rebuild it (restart, eviction, a query on another worker).
  const replayFailures = await replayAll(
    stack,
    changes.map((c) => c.number),
  );
  if (replayFailures.length > 0)
    failures.push(
      `${replayFailures.length} change history(ies) fail to replay: ${replayFailures.slice(0, 3).join('; ')}`,
    );

  const all = stack.github.standin.state;
  const shas = new Set(changes.map((c) => c.sha));
  const st = {
    comments: all.comments.filter((c) => changes.some((x) => x.number === c.issue)),
    checkRuns: all.checkRuns.filter((r) => shas.has(r.headSha)),
    deployments: all.deployments.filter((d) => shas.has(d.sha)),
  };
  const dupes: string[] = [];
  const dup = <T>(what: string, items: T[], key: (t: T) => string) => {
    const seen = new Map<string, number>();
    for (const i of items) seen.set(key(i), (seen.get(key(i)) ?? 0) + 1);
    for (const [k, v] of seen) if (v > 1) dupes.push(`${v} ${what} for ${k}`);
  };
  dup(
    'summary comments',
    st.comments.filter((c) => c.user !== 'sam-dev' && c.user !== 'alex-reviewer'),
    (c) => `${c.repo}#${c.issue}`,
  );
  dup('check runs', st.checkRuns, (r) => `${r.headSha.slice(0, 8)} ${r.name}`);
  dup('deployments', st.deployments, (d) => `${d.sha.slice(0, 8)} ${d.environment}`);
  const githubDuplicates = dupes.length;
  if (githubDuplicates > 0) failures.push(`duplicated on GitHub: ${dupes.slice(0, 5).join('; ')}`);
  const missingReports = delivered.filter(
    (c) => !st.deployments.some((d) => d.sha === c.sha && d.environment === 'production'),
  ).length;
  if (missingReports > 0)
    failures.push(`${missingReports} delivered change(s) without a production deployment on GitHub`);

  return {
    drill,
    changes: changes.length,
    faults,
    delivered: delivered.length,
    lost,
    deployAttempts: attempts.length,
    effectiveDeploys: effective.length,
    duplicateDeploys,
    leakedLeases: leases.length,
    leftoverRoles: roles.length,
    githubDuplicates,
    notes: [],
    failures,
    seconds: Math.round((Date.now() - started) / 1000),
  };
}

export function randomBetween(min: number, max: number): number {
  return min + Math.random() * (max - min);
}
