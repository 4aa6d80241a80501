// How many change workflows an orchestrator keeps in memory between their tasks (the SDK's sticky cache).
//
// Default 0: every workflow task replays the change's history from the start. Why: with a cache, a crash of the
// orchestrator (kill -9, OOM) can cost changes. A status query sent while the dead worker still owns the
// change's sticky queue falls back, after the sticky timeout, to the new worker, which answers it by applying
// events that no workflow task has handled yet (an activity result), and keeps that state cached. When the
// retried task then brings a signal that arrived meanwhile (an approval), the new worker handles it in a
// second activation and records commands in an order that a replay, which handles both in one activation,
// does not reproduce: a nondeterminism error at the next restart or cache eviction, and the change stops
// (found by the long worker-kills drill; reproduced by test/workflows/restart-replay.test.ts). Without a cache
// each task is handled from the full history, exactly as a replay handles it. The price is CPU per task
// (measured in bench/RESULTS.md); a change's history is short (continue-as-new bounds it).
export const WORKFLOW_CACHE_VARIABLE = 'FOUREYES_WORKFLOW_CACHE';

export function workflowCacheSize(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[WORKFLOW_CACHE_VARIABLE]?.trim();
  if (raw === undefined || raw === '') return 0;
  if (!/^[0-9]{1,7}$/.test(raw))
    throw new Error(
      `${WORKFLOW_CACHE_VARIABLE}: expected a whole number of workflows (0 or more), found ${JSON.stringify(raw.slice(0, 20))}; unset it for the default 0 (no cache)`,
    );
  return Number(raw);
}
