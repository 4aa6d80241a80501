// Environment lanes on the real Temporal dev server: one deploy at a time per repository and environment, in
// the order the changes reached it; an older head never replaces a newer release; a holder that ended without
// giving the lane back loses it; the lane's history stays bounded and its releases stay.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { laneIdFor, type LaneState } from '../../src/shared/lane.ts';
import { laneStateQuery } from '../../src/workflows/lane.ts';
import {
  approve,
  claim,
  close,
  saveLaneHistory,
  newChange,
  opened,
  openChange,
  result,
  saveHistory,
  sha,
  startStack,
  status,
  waitForStatus,
  type Stack,
} from './harness.ts';
import { scheduledActivities } from '../helpers/temporal.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const awaiting = (s: { stage: string }) => s.stage === 'awaiting-approval';

async function laneState(lane: string): Promise<LaneState> {
  return stack.client.workflow.getHandle(lane).query(laneStateQuery);
}

async function untilLane(
  lane: string,
  what: string,
  ok: (s: LaneState) => boolean,
  timeoutMs = 30_000,
): Promise<LaneState> {
  const deadline = Date.now() + timeoutMs;
  let last: LaneState | undefined;
  for (;;) {
    last = await laneState(lane).catch(() => undefined);
    if (last && ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`lane never showed ${what}; last: ${JSON.stringify(last, null, 1)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The activities every run of a lane scheduled, by type (the lane's own look-ups and compares). */
const laneActivities = (lane: string) => scheduledActivities(stack.client, `WorkflowId = ${JSON.stringify(lane)}`);

describe('environment lanes', () => {
  it(
    'two approved changes racing deploy one after the other, in approval order, and the lane records both',
    { timeout: 60_000 },
    async () => {
      const [a, b] = [newChange(), newChange()];
      const [ha, hb] = [sha(), sha()];
      for (const c of [a, b]) stack.slowDeploys.set(c, 400);
      const handleA = await openChange(stack, a, opened(ha));
      const handleB = await openChange(stack, b, opened(hb));
      await waitForStatus(handleA, awaiting);
      await waitForStatus(handleB, awaiting);
      await approve(stack, handleA, claim(a, ha, 'alex-reviewer'));
      // B is approved while A holds the staging lane (its deploy takes 400 ms): B's request must wait its turn.
      await waitForStatus(handleA, (s) => s.timeline.some((t) => t.kind === 'lane-acquired'));
      await approve(stack, handleB, claim(b, hb, 'jo-platform'));
      expect(await result(handleA)).toMatchObject({ outcome: 'delivered' });
      expect(await result(handleB)).toMatchObject({ outcome: 'delivered' });

      const approvers = { [a]: ['alex-reviewer'], [b]: ['jo-platform'] };
      const shas = { [a]: ha, [b]: hb };
      for (const env of ['staging', 'production']) {
        const deploys = stack.calls.deploy.filter((d) => (d.change === a || d.change === b) && d.environment === env);
        const windows = JSON.stringify(deploys.map((d) => [d.change, d.at, d.endedAt]));
        expect(deploys, `one deploy each to ${env}: ${windows}`).toHaveLength(2);
        const [first, second] = [...deploys].sort((x, y) => x.at - y.at) as [(typeof deploys)[0], (typeof deploys)[0]];
        // In staging they met at the lane in approval order. Production they reach each on its own way from
        // staging, so under load B may get there first; either way one waits for the other.
        if (env === 'staging') expect(first.change, windows).toBe(a);
        // Measured from the deploy worker's own timestamps: the first window ends before the second begins.
        expect(first.endedAt, `deploy windows in ${env} overlap: ${windows}`).toBeLessThanOrEqual(second.at);
        const lane = await laneState(laneIdFor('acme/shop', env, stack.taskQueue));
        const mine = lane.releases.filter((r) => r.change === a || r.change === b);
        expect(mine.map((r) => [r.change, r.sha, r.approvers, r.outcome])).toEqual(
          [first, second].map((d) => [d.change, shas[d.change], approvers[d.change], 'deployed']),
        );
        expect(lane.running).toMatchObject({ change: second.change, sha: shas[second.change] });
        expect(lane.holder).toBeUndefined();
        // The second followed another SHA: its look-up compared the two, so the lane needed no compare task.
        const scheduled = await laneActivities(laneIdFor('acme/shop', env, stack.taskQueue));
        expect(scheduled, `the ${env} lane's activities`).toContain('lookUpLaneCaller');
        expect(scheduled, `the ${env} lane's activities`).not.toContain('compareCommits');
      }
      const timeline = (await status(handleA)).timeline.map((t) => t.kind);
      expect(timeline.filter((k) => k === 'lane-acquired')).toHaveLength(2);
      expect(timeline.filter((k) => k === 'lane-released')).toHaveLength(2);
      await saveHistory(stack, handleA, 'v2-lane-race');
      await saveLaneHistory(stack, laneIdFor('acme/shop', 'staging', stack.taskQueue), 'v2-lane-staging');
    },
  );

  it(
    'an older change approved after a newer one is not deployed over it, with the reason in its status',
    { timeout: 60_000 },
    async () => {
      const [older, newer] = [newChange(), newChange()];
      const [ho, hn] = [sha(), sha()];
      stack.github.descend(hn, ho);
      const handleOld = await openChange(stack, older, opened(ho));
      const handleNew = await openChange(stack, newer, opened(hn));
      await waitForStatus(handleOld, awaiting);
      await approve(stack, handleNew, claim(newer, hn, 'alex-reviewer'));
      expect(await result(handleNew)).toMatchObject({ outcome: 'delivered' });
      await approve(stack, handleOld, claim(older, ho, 'alex-reviewer'));
      const refused = await waitForStatus(handleOld, (s) => s.stage === 'failed');
      expect(refused.waitingFor).toContain(
        `${ho.slice(0, 7)} is older than the release running there (${hn.slice(0, 7)} of ${newer} contains it`,
      );
      expect(refused.environments.find((e) => e.name === 'staging')?.state).toBe('failed');
      expect(stack.calls.deploy.filter((d) => d.change === older)).toEqual([]);
      const lane = await laneState(laneIdFor('acme/shop', 'staging', stack.taskQueue));
      expect(lane.running?.sha).toBe(hn);
      expect(Object.values(lane.declined)).toContainEqual(expect.stringContaining(`${ho.slice(0, 7)} is older`));
      // Declined on the compare its own look-up made, in the task that read that look-up.
      const staging = laneIdFor('acme/shop', 'staging', stack.taskQueue);
      expect(await laneActivities(staging)).not.toContain('compareCommits');
      await saveHistory(stack, handleOld, 'v2-lane-older-declined');
      await saveLaneHistory(stack, staging, 'v2-lane-folded-compare');
      await close(stack, handleOld);
    },
  );

  it(
    'GitHub failing the look-up’s compare: the lane compares on its own, and the newer change deploys',
    { timeout: 60_000 },
    async () => {
      const [first, next] = [newChange(), newChange()];
      const [hf, hn] = [sha(), sha()];
      const handleFirst = await openChange(stack, first, opened(hf));
      await waitForStatus(handleFirst, awaiting);
      await approve(stack, handleFirst, claim(first, hf, 'alex-reviewer'));
      expect(await result(handleFirst)).toMatchObject({ outcome: 'delivered' });
      const staging = laneIdFor('acme/shop', 'staging', stack.taskQueue);
      const comparesBefore = (await laneActivities(staging)).filter((a) => a === 'compareCommits').length;

      const handleNext = await openChange(stack, next, opened(hn));
      await waitForStatus(handleNext, awaiting);
      // The next compare GitHub is asked for, the one folded into the staging lane's look-up, answers 502.
      stack.github.failCompares(1);
      await approve(stack, handleNext, claim(next, hn, 'alex-reviewer'));
      const ended = await waitForStatus(handleNext, (s) => s.stage === 'delivered' || s.stage === 'failed');
      expect(ended.stage, ended.waitingFor).toBe('delivered');
      expect(stack.calls.deploy.filter((d) => d.change === next).map((d) => d.environment)).toEqual([
        'staging',
        'production',
      ]);
      const lane = await laneState(staging);
      expect(lane.running).toMatchObject({ change: next, sha: hn });
      const compares = (await laneActivities(staging)).filter((a) => a === 'compareCommits').length;
      expect(compares - comparesBefore, 'compares the staging lane made itself').toBe(1);
    },
  );

  it(
    'a holder terminated mid-deploy loses the lane; the next change deploys, nothing deploys twice',
    { timeout: 60_000 },
    async () => {
      const [a, b] = [newChange(), newChange()];
      const [ha, hb] = [sha(), sha()];
      stack.hangingDeploys.add(a);
      const lane = laneIdFor('acme/shop', 'staging', stack.taskQueue);
      const handleA = await openChange(stack, a, opened(ha));
      const handleB = await openChange(stack, b, opened(hb));
      await waitForStatus(handleB, awaiting);
      await approve(stack, handleA, claim(a, ha, 'alex-reviewer'));
      await untilLane(lane, 'A holding', (s) => s.holder?.change === a);
      await approve(stack, handleB, claim(b, hb, 'alex-reviewer'));
      await untilLane(lane, 'B waiting', (s) => s.queue.some((t) => t.change === b));
      await waitForStatus(
        handleA,
        (s) => s.environments[0]?.state === 'deploying' && stack.calls.deploy.some((d) => d.change === a),
      );
      await handleA.terminate('worker lost, operator terminated the change');
      const reclaimed = await untilLane(lane, 'A reclaimed', (s) => s.releases.some((r) => r.change === a));
      expect(reclaimed.releases.find((r) => r.change === a)).toMatchObject({
        outcome: 'reclaimed',
        reason: expect.stringContaining('terminated while holding the lane'),
      });
      expect(await result(handleB)).toMatchObject({ outcome: 'delivered' });
      expect(stack.calls.deploy.filter((d) => d.change === a).map((d) => d.environment)).toEqual(['staging']);
      const [da, db] = [a, b].map((c) => stack.calls.deploy.find((d) => d.change === c && d.environment === 'staging'));
      expect(da?.endedAt, "A's deploy stopped before B's began").toBeLessThanOrEqual(db?.at ?? 0);
      expect(stack.calls.deploy.filter((d) => d.change === b).map((d) => d.environment)).toEqual([
        'staging',
        'production',
      ]);
    },
  );

  it('continues as new with a bounded history and keeps every release', { timeout: 90_000 }, async () => {
    const lane = laneIdFor('acme/dual', 'dual', stack.taskQueue);
    const first = await stack.client.workflow.start('laneWorkflow', {
      workflowId: lane,
      taskQueue: stack.taskQueue,
      args: [{ lane, historyEventLimit: 40 }],
    });
    const changes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = newChange('acme/dual');
      const h = sha();
      changes.push(c);
      const handle = await openChange(stack, c, opened(h));
      await waitForStatus(handle, awaiting);
      await approve(stack, handle, claim(c, h, 'alex-reviewer'));
      await approve(stack, handle, claim(c, h, 'jo-platform'));
      await waitForStatus(handle, (s) => s.environments[0]?.state === 'deployed');
      await close(stack, handle);
    }
    const state = await untilLane(lane, 'three releases', (s) => s.releases.length === 3 && !s.holder);
    expect(state.releases.map((r) => [r.change, r.outcome])).toEqual(changes.map((c) => [c, 'deployed']));
    const now = await stack.client.workflow.getHandle(lane).describe();
    expect(now.runId).not.toBe(first.firstExecutionRunId);
    expect(now.historyLength).toBeLessThan(80);
  });
});

// The deploy worker as production runs it: a terminated change's deploy learns that the workflow is gone only at
// its next heartbeat to the server, throttled by the deploy zone's worker options.
describe('a reclaimed lane with production heartbeats', () => {
  let prod: Stack;
  beforeAll(async () => {
    prod = await startStack({ productionHeartbeats: true, laneReclaimGraceMs: 5_000 });
  });
  afterAll(async () => {
    await prod?.stop();
  });

  it("grants the next change only after the terminated holder's deploy has stopped", { timeout: 90_000 }, async () => {
    const [a, b] = [newChange(), newChange()];
    const [ha, hb] = [sha(), sha()];
    prod.hangingDeploys.add(a);
    const lane = laneIdFor('acme/shop', 'staging', prod.taskQueue);
    const stateOf = () => prod.client.workflow.getHandle(lane).query(laneStateQuery);
    const until = async (what: string, ok: (s: LaneState) => boolean) => {
      const deadline = Date.now() + 40_000;
      for (;;) {
        const s = await stateOf().catch(() => undefined);
        if (s && ok(s)) return s;
        if (Date.now() > deadline) throw new Error(`lane never showed ${what}: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const handleA = await openChange(prod, a, opened(ha));
    const handleB = await openChange(prod, b, opened(hb));
    await waitForStatus(handleB, awaiting);
    await approve(prod, handleA, claim(a, ha, 'alex-reviewer'));
    await until('A holding', (s) => s.holder?.change === a);
    await approve(prod, handleB, claim(b, hb, 'alex-reviewer'));
    await until('B waiting', (s) => s.queue.some((t) => t.change === b));
    await waitForStatus(
      handleA,
      (s) => s.environments[0]?.state === 'deploying' && prod.calls.deploy.some((d) => d.change === a),
    );
    await handleA.terminate('an insider terminates the change mid-deploy');
    const reclaimed = await until('A reclaimed', (s) => s.releases.some((r) => r.change === a));
    expect(reclaimed.releases.find((r) => r.change === a)).toMatchObject({ outcome: 'reclaimed' });
    const grace = reclaimed.grace ?? (await stateOf()).grace;
    expect(await result(handleB)).toMatchObject({ outcome: 'delivered' });
    const deployA = prod.calls.deploy.find((d) => d.change === a);
    const deployB = prod.calls.deploy.find((d) => d.change === b && d.environment === 'staging');
    // A's deploy stops once its worker's heartbeat learns that A is gone; wait for that to measure it.
    const deadline = Date.now() + 40_000;
    while (deployA?.endedAt === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(deployA?.endedAt, "A's deploy saw its cancellation").toBeDefined();
    expect(
      deployB!.at - deployA!.endedAt!,
      `B's deploy started ${deployB!.at - deployA!.endedAt!} ms after A's deploy stopped`,
    ).toBeGreaterThanOrEqual(0);
    // Why the lane waited, as `foureyes environments` shows it; and it waits no longer.
    expect(grace?.reason).toContain(`${a} (run ${reclaimed.releases.find((r) => r.change === a)?.runId})`);
    expect((await stateOf()).grace).toBeUndefined();
    await saveLaneHistory(prod, lane, 'v2-lane-reclaim-grace');
  });
});
