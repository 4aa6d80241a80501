// kill -9 each worker kind (orchestrator, checks, deployer) at random moments while changes flow, restarting
// it each time: every change completes, each (change, environment, SHA) is deployed once, no lease is left.
import { setTimeout as sleep } from 'node:timers/promises';
import { driveChanges, judge, randomBetween, type Drill } from './common.ts';
import type { Role } from './stack.ts';

export const workerKills: Drill = async ({ long, log, stack }) => {
  const started = Date.now();
  const changes = long ? 120 : 30;
  const parallel = 8;
  {
    const kills: Record<string, number> = { orchestrator: 0, checks: 0, deploy: 0 };
    let done = false;
    const killer = (async () => {
      const kinds: Role[] = ['orchestrator', 'checks', 'deploy'];
      let i = 0;
      // Short: two kills of each kind (each kill of a busy worker costs its activities a 30 s heartbeat timeout).
      const maxKills = long ? Infinity : 6;
      while (!done && i < maxKills) {
        await sleep(randomBetween(long ? 4000 : 6000, long ? 10_000 : 12_000));
        if (done) break;
        // Every kind in turn, in a shuffled order each round, at a random moment.
        if (i % 3 === 0) kinds.sort(() => Math.random() - 0.5);
        const role = kinds[i++ % 3] as Role;
        log(`kill -9 ${role} (pid ${stack.procs[role].child.pid})`);
        await stack.kill9(role);
        kills[role] = (kills[role] ?? 0) + 1;
      }
    })();
    const results = await driveChanges(stack, changes, parallel, long ? 900_000 : 300_000, log);
    done = true;
    await killer;
    const total = kills.orchestrator! + kills.checks! + kills.deploy!;
    const result = await judge(
      stack,
      'worker-kills',
      results,
      `${total} kill -9 (orchestrator ${kills.orchestrator}, checks ${kills.checks}, deployer ${kills.deploy}), each restarted`,
      started,
    );
    if (kills.orchestrator === 0 || kills.checks === 0 || kills.deploy === 0)
      result.failures.push('not every worker kind was killed at least once (run longer)');
    return result;
  }
};
