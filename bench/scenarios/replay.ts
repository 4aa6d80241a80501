// 6. Replay cost: the orchestrator runs without a workflow cache (src/workers/cache.ts), so every workflow task
// of a change rebuilds the workflow from the history recorded so far. This scenario records one change and one
// bare workflow (same activity count, one signal) on the bench's servers, then replays, in this process, the
// history prefix each of their workflow tasks saw: the orchestrator CPU one change costs without a cache,
// against the bare baseline's. Replays run one after another on one core.
import * as ed from '@noble/ed25519';
import { Worker } from '@temporalio/worker';
// CommonJS package: its named exports are not visible to Node's ESM loader.
import proto from '@temporalio/proto';
import {
  canonicalJson,
  generateSigningKey,
  signClaim,
  verifyWithoutBaseTable,
} from '../../src/shared/approval-signature.ts';
import { readBundle } from '../../src/workers/bundle.ts';
import { untracedWorkflowSinks } from '../../src/workers/tracing.ts';
import { bareInputLike, deliverOne, sha, startBenchEnv } from '../env.ts';
import { fmt, ratio, ratioSpread, summarize, table } from '../stats.ts';
import { recordGoal, say, type Scenario } from './types.ts';

type History = proto.temporal.api.history.v1.IHistory;

const WORKFLOW_TASK_STARTED = proto.temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED;

/** The history each workflow task of the run was handed: every event up to and including its WorkflowTaskStarted. */
function taskPrefixes(history: History): History[] {
  const events = history.events ?? [];
  const prefixes: History[] = [];
  events.forEach((event, i) => {
    if (event.eventType === WORKFLOW_TASK_STARTED) prefixes.push({ events: events.slice(0, i + 1) });
  });
  return prefixes;
}

/** Milliseconds to replay each history once, in order (one replay worker, like one orchestrator task slot). */
async function replayTimes(
  bundlePath: string,
  histories: History[],
  label: string,
  workflowId: string,
): Promise<number[]> {
  const times: number[] = [];
  let last = performance.now();
  // Under the run's own workflow ID: a change's run checks that its input names the change it runs for.
  const inputs = histories.map((history) => ({ workflowId, history }));
  for await (const result of Worker.runReplayHistories(
    { workflowBundle: readBundle(bundlePath), replayName: `bench-replay-${label}`, sinks: untracedWorkflowSinks },
    inputs,
  )) {
    if (result.error)
      throw new Error(
        `${label}: replay of ${result.workflowId} (task ${times.length + 1}) failed: ${result.error.message}`,
      );
    const now = performance.now();
    times.push(now - last);
    last = now;
  }
  return times;
}

/** Mean milliseconds of `f` over `n` calls. */
function timeEach(f: () => void, n: number): number {
  const started = performance.now();
  for (let i = 0; i < n; i++) f();
  return (performance.now() - started) / n;
}

/**
 * What checking one approval signature costs a workflow task that starts from nothing (no cache): noble's
 * `ed.verify` builds its base-point table first (the same 4,224 point additions as its `precompute`), then
 * verifies; `verifyWithoutBaseTable` (what the workflow uses) verifies on the plain ladder.
 */
function signatureCheckCost(): { tableMs: number; verifyMs: number; withoutTableMs: number } {
  const key = generateSigningKey();
  const signed = signClaim(
    {
      v: 1,
      change: 'acme/shop#1',
      sha: sha(),
      person: 'alex-reviewer',
      channel: 'cli',
      decision: 'approve',
      evidence: { tokenLogin: 'alex-reviewer' },
      at: new Date().toISOString(),
      nonce: 'bench',
    },
    key,
  );
  const message = new TextEncoder().encode(canonicalJson(signed.claim));
  const signature = ed.etc.hexToBytes(signed.signature);
  const publicKey = ed.etc.hexToBytes(key.publicKey);
  const buildTable = () => {
    let p = ed.Point.BASE;
    for (let w = 0; w < 33; w++) {
      let b = p;
      for (let i = 1; i < 128; i++) b = b.add(p);
      p = b.double();
    }
  };
  buildTable(); // warm the JIT like the other two
  return {
    tableMs: timeEach(buildTable, 10),
    verifyMs: timeEach(() => ed.verify(signature, message, publicKey), 200),
    withoutTableMs: timeEach(() => verifyWithoutBaseTable(signature, message, publicKey), 200),
  };
}

export const replay: Scenario = {
  name: 'replay',
  title: '6. Replay cost per change without a workflow cache (orchestrator CPU)',
  async run(options) {
    const rounds = Math.max(options.rounds, options.n ?? (options.quick ? 5 : 20));
    const env = await startBenchEnv(
      'replay',
      options.maxCached !== undefined ? { maxCachedWorkflows: options.maxCached } : {},
    );
    let change: History;
    let bare: History;
    try {
      const counts = await deliverOne(env, 'acme/shop#1');
      await env.startBare('bare-1', bareInputLike(counts));
      await env.bareAwaiting('bare-1');
      await env.signalBare('bare-1');
      await env.client.workflow.getHandle('bare-1').result();
      change = await env.client.workflow.getHandle('change:acme/shop#1').fetchHistory();
      bare = await env.client.workflow.getHandle('bare-1').fetchHistory();
    } finally {
      await env.stop();
    }
    const changeTasks = taskPrefixes(change);
    const bareTasks = taskPrefixes(bare);
    // One untimed pass each: the replay worker's start and the first evaluation of each bundle.
    await replayTimes(env.bundles.change, changeTasks.slice(-1), 'warm-change', 'change:acme/shop#1');
    await replayTimes(env.bundles.bare, bareTasks.slice(-1), 'warm-bare', 'bare-1');

    const perChange: number[] = [];
    const perBare: number[] = [];
    const fullChange: number[] = [];
    const fullBare: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // Interleaved, so load from elsewhere on the machine falls on both.
      const c = await replayTimes(env.bundles.change, changeTasks, 'change', 'change:acme/shop#1');
      const b = await replayTimes(env.bundles.bare, bareTasks, 'bare', 'bare-1');
      perChange.push(c.reduce((s, t) => s + t, 0));
      perBare.push(b.reduce((s, t) => s + t, 0));
      fullChange.push(c.at(-1) ?? Number.NaN);
      fullBare.push(b.at(-1) ?? Number.NaN);
    }
    const sc = summarize(perChange);
    const sb = summarize(perBare);
    const fc = summarize(fullChange);
    const fb = summarize(fullBare);
    const events = (h: History) => h.events?.length ?? 0;
    say(
      `${rounds} rounds; each replays every workflow task's history prefix of one change (${changeTasks.length} tasks, ${events(change)} events) and of one bare run (${bareTasks.length} tasks, ${events(bare)} events)`,
    );
    say(
      table(
        ['figure', 'changeWorkflow', 'bare baseline', 'ratio'],
        [
          [
            'workflow tasks / events in the history',
            `${changeTasks.length} / ${events(change)}`,
            `${bareTasks.length} / ${events(bare)}`,
            '',
          ],
          ['CPU of all tasks of one run, no cache, p50 (ms)', fmt(sc.p50), fmt(sb.p50), ratio(sc.p50, sb.p50)],
          ['same, mean (ms)', fmt(sc.mean), fmt(sb.mean), ratio(sc.mean, sb.mean)],
          ['replay of the whole history, p50 (ms)', fmt(fc.p50), fmt(fb.p50), ratio(fc.p50, fb.p50)],
          [
            'runs per second of one core, no cache (1000 / p50)',
            fmt(1000 / sc.p50, 2),
            fmt(1000 / sb.p50, 2),
            ratio(sb.p50, sc.p50),
          ],
        ],
      ),
    );
    const cpuRatios = perChange.map((c, i) => c / (perBare[i] as number));
    say(`CPU of all tasks, per-round ratio: ${ratioSpread(cpuRatios)}`);
    recordGoal(
      'no-cache CPU per change ≤ 1.2× bare',
      `${fmt(sc.p50)} / ${fmt(sb.p50)} ms bare (all tasks of one run replayed, p50 of ${rounds} rounds)`,
      cpuRatios,
      (x) => x <= 1.2,
    );
    const sig = signatureCheckCost();
    say(
      `approval signature check in a task that starts without a cache: ed.verify ${fmt(sig.tableMs + sig.verifyMs, 2)} ms (base-point table ${fmt(sig.tableMs, 2)} + verify ${fmt(sig.verifyMs, 2)}); without the table ${fmt(sig.withoutTableMs, 2)} ms (${ratio(sig.withoutTableMs, sig.tableMs + sig.verifyMs)}); the table pays off only from ${Math.ceil(sig.tableMs / Math.max(0.001, sig.withoutTableMs - sig.verifyMs))} signatures per task`,
    );
  },
};
