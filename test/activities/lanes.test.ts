// The lane's look-up compares a waiting change's head with what runs, in the same call. That compare spends the
// GitHub App's rate limit and waits on GitHub, so it is made only for a change of the lane's own repository, and
// never for longer than the look-up can afford.
import { describe, expect, it } from 'vitest';
import { withComparison, type CompareCommits } from '../../src/activities/lanes.ts';
import type { CommitComparison, LaneCallerFacts } from '../../src/shared/lane.ts';

const HEAD = '1'.repeat(40);
const RUNNING = '2'.repeat(40);
const behind: CommitComparison = { status: 'behind', aheadBy: 0, behindBy: 2 } as CommitComparison;

function waiting(change: string): LaneCallerFacts {
  return {
    workflowId: `change:${change}`,
    runId: 'run-1',
    found: true,
    workflowType: 'changeWorkflow',
    status: 'RUNNING',
    pending: [{ type: 'acquireLane', id: '7' }],
    change: { change, headSha: HEAD, environment: { state: 'approved', approvedBy: ['alex'] } },
  };
}

function recording(answer: () => Promise<CommitComparison>): { compare: CompareCommits; calls: unknown[] } {
  const calls: unknown[] = [];
  return {
    calls,
    compare: async (input) => {
      calls.push(input);
      return answer();
    },
  };
}

describe('the look-up’s compare with what runs', () => {
  it('compares a waiting change of the lane’s repository, head against the running release', async () => {
    const { compare, calls } = recording(async () => behind);
    const facts = await withComparison(waiting('acme/shop#12'), { repo: 'acme/shop', sha: RUNNING }, compare);
    expect(calls).toEqual([{ repo: 'acme/shop', base: HEAD, head: RUNNING }]);
    expect(facts.comparison).toEqual({ base: HEAD, head: RUNNING, result: behind });
  });

  it('spends no GitHub call on a request that names a change of another repository', async () => {
    const { compare, calls } = recording(async () => behind);
    const facts = await withComparison(waiting('evil/other#3'), { repo: 'acme/shop', sha: RUNNING }, compare);
    expect(calls).toEqual([]);
    expect(facts.comparison).toBeUndefined();
  });

  it('a GitHub that does not answer in time: the look-up answers without the compare, and the lane compares itself', async () => {
    const { compare, calls } = recording(() => new Promise<CommitComparison>(() => {}));
    const started = Date.now();
    const facts = await withComparison(waiting('acme/shop#12'), { repo: 'acme/shop', sha: RUNNING }, compare, 200);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(calls).toHaveLength(1);
    expect(facts.comparison).toBeUndefined();
    expect(facts.change?.headSha).toBe(HEAD);
  });
});
