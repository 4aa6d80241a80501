// kill -9 the Temporal dev server while changes are in flight and start it again on the same SQLite file and
// port: every run continues where it was, and no approval that GitHub saw acknowledged is lost.
import { setTimeout as sleep } from 'node:timers/promises';
import { driveChanges, judge, statusOf, type Drill } from './common.ts';

export const temporalRestart: Drill = async ({ long, log, stack }) => {
  const started = Date.now();
  const changes = long ? 40 : 10;
  const restarts = long ? 4 : 1;
  {
    const downtimes: number[] = [];
    const inFlight: number[] = [];
    const driving = driveChanges(stack, changes, long ? 8 : 5, long ? 900_000 : 300_000, log);
    for (let i = 0; i < restarts; i++) {
      // Mid-run: some changes checking, some awaiting or deploying.
      await sleep(long ? 20_000 : 12_000);
      inFlight.push(stack.github.standin.state.pulls.filter((p) => p.state === 'open').length);
      const t = Date.now();
      log(`kill -9 temporal (pid ${stack.temporal.process.child.pid}), restart on ${stack.temporal.dbFile}`);
      await stack.restartTemporal();
      downtimes.push(Date.now() - t);
      log(`temporal back after ${downtimes.at(-1)} ms`);
    }
    const results = await driving;
    const result = await judge(
      stack,
      'temporal-restart',
      results,
      `${restarts} kill -9 + restart of the Temporal dev server on the same database file (down ${downtimes.map((d) => `${(d / 1000).toFixed(1)} s`).join(', ')})`,
      started,
    );
    // Every change's approval is in its history: one counted approval by the reviewer per change.
    let lostApprovals = 0;
    for (const r of results) {
      if (r.number < 0) continue;
      const s = await statusOf(stack, r.number);
      const counted = s?.approvals.filter((a) => a.counted && a.claim.sha === r.sha).length ?? 0;
      if (counted !== 1) lostApprovals++;
    }
    result.notes.push(
      `approvals counted once per change: ${results.length - lostApprovals}/${results.length}; changes in flight at each restart: ${inFlight.join(', ')}`,
    );
    if (lostApprovals > 0) result.failures.push(`${lostApprovals} change(s) without exactly one counted approval`);
    return result;
  }
};
