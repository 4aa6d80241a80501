// A busy lane on a worker without a workflow cache (the production default): every query of the lane replays
// it, so waiting changes read its memo, which the Temporal server answers. Eight changes queue for one lane and
// all deploy, one at a time.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { laneIdFor, type LaneMemo, type LaneState } from '../../src/shared/lane.ts';
import {
  approve,
  claim,
  close,
  saveLaneHistory,
  newChange,
  opened,
  openChange,
  result,
  sha,
  startStack,
  waitForStatus,
  type Stack,
} from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ workflowCache: 0 });
});
afterAll(async () => {
  await stack?.stop();
});

it(
  'eight changes queued for one lane on a worker without a cache all deploy, one at a time',
  { timeout: 120_000 },
  async () => {
    const lane = laneIdFor('acme/busy', 'staging', stack.taskQueue);
    const changes = Array.from({ length: 8 }, () => ({ change: newChange('acme/busy'), head: sha() }));
    // Long enough that the other seven are approved and queued while it holds the lane on a loaded machine (each
    // approval is an update, and each update a full replay without a cache: at 6 s it was once over first).
    stack.slowDeploys.set(changes[0]!.change, 20_000);
    const handles = [];
    for (const c of changes) handles.push(await openChange(stack, c.change, opened(c.head)));
    for (const h of handles) await waitForStatus(h, (s) => s.stage === 'awaiting-approval', 60_000);
    const memoShows = async (what: string, ok: (m: LaneMemo) => boolean) => {
      const deadline = Date.now() + 60_000;
      let memo: LaneMemo | undefined;
      for (;;) {
        memo = (
          await stack.client.workflow
            .getHandle(lane)
            .describe()
            .catch(() => undefined)
        )?.memo?.lane as LaneMemo | undefined;
        if (memo && ok(memo)) return;
        if (Date.now() > deadline)
          throw new Error(`the lane's memo never showed ${what}; last: ${JSON.stringify(memo)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await approve(stack, handles[0]!, claim(changes[0]!.change, changes[0]!.head, 'alex-reviewer'));
    await memoShows('the first change holding', (m) => m.holder?.change === changes[0]!.change);
    for (const [i, h] of handles.entries())
      if (i > 0) await approve(stack, h, claim(changes[i]!.change, changes[i]!.head, 'alex-reviewer'));
    await memoShows(
      'the first change holding with the others queued',
      (m) => m.holder?.change === changes[0]!.change && m.queue.length >= 3,
    );

    // acme/busy does not merge: a delivered change waits for its pull request to close.
    for (const h of handles) await waitForStatus(h, (s) => s.stage === 'delivered', 90_000);
    const deploys = stack.calls.deploy
      .filter((d) => d.environment === 'staging' && changes.some((c) => c.change === d.change))
      .sort((a, b) => a.at - b.at);
    expect(deploys.map((d) => d.change).sort()).toEqual(changes.map((c) => c.change).sort());
    for (let i = 1; i < deploys.length; i++) expect(deploys[i - 1]!.endedAt).toBeLessThanOrEqual(deploys[i]!.at);
    for (const h of handles) await close(stack, h);
    for (const h of handles) expect(await result(h)).toMatchObject({ outcome: 'delivered' });
    // Eight changes are more than one run of the lane holds (each task replays the history): it continued as new,
    // and the run now serving still knows every release.
    const described = await stack.client.workflow.getHandle(lane).describe();
    expect(described.raw.workflowExecutionInfo?.firstRunId).not.toBe(described.runId);
    const state = await stack.client.workflow.getHandle(lane).query<LaneState>('state');
    expect(state.releases.map((r) => r.change).sort()).toEqual(changes.map((c) => c.change).sort());
    await saveLaneHistory(stack, lane, 'v2-lane-short-history');
    await saveLaneHistory(stack, lane, 'v2-lane-shorter-history');
  },
);
