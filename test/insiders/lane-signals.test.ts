// Insiders with a Temporal client (the Web UI's "Send Signal") against an environment's lane: they can send
// the lane any request or release naming any workflow, but cannot take the lane for a change that did not ask,
// free it from under the change deploying, or push a waiting change back in the queue. What they tried is in
// the lane's refusals.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { laneIdFor, type LaneState } from '../../src/shared/lane.ts';
import { laneReleaseSignal, laneRequestSignal, laneStateQuery } from '../../src/workflows/lane.ts';
import {
  approve,
  claim,
  close,
  newChange,
  opened,
  openChange,
  sha,
  startStack,
  status,
  waitForStatus,
  type Stack,
} from '../workflows/harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function laneState(lane: string): Promise<LaneState> {
  return stack.client.workflow.getHandle(lane).query(laneStateQuery);
}

async function until(
  lane: string,
  what: string,
  ok: (s: LaneState) => boolean,
  timeoutMs = 20_000,
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

it("an insider's signals neither grab, free nor reorder the lane", { timeout: 60_000 }, async () => {
  const lane = laneIdFor('acme/shop', 'staging', stack.taskQueue);
  const [a, b, c] = [newChange(), newChange(), newChange()];
  const [ha, hb, hc] = [sha(), sha(), sha()];
  stack.hangingDeploys.add(a);
  const handleA = await openChange(stack, a, opened(ha));
  const handleB = await openChange(stack, b, opened(hb));
  const handleC = await openChange(stack, c, opened(hc));
  await waitForStatus(handleC, (s) => s.stage === 'awaiting-approval');
  await approve(stack, handleA, claim(a, ha, 'alex-reviewer'));
  await until(lane, 'A holding', (s) => s.holder?.change === a);
  await approve(stack, handleB, claim(b, hb, 'alex-reviewer'));
  await until(lane, 'B waiting', (s) => s.queue.some((t) => t.change === b));

  const runOf = async (h: typeof handleA) => ({ workflowId: h.workflowId, runId: (await h.describe()).runId });
  const laneHandle = stack.client.workflow.getHandle(lane);
  const [callerA, callerB, callerC] = [await runOf(handleA), await runOf(handleB), await runOf(handleC)];
  // Grab: C waits for approval and never asked; a made-up run of a change.
  await laneHandle.signal(laneRequestSignal, callerC);
  await laneHandle.signal(laneRequestSignal, {
    workflowId: `change:${newChange()}`,
    runId: '00000000-0000-0000-0000-000000000000',
  });
  // Free: the lane out from under A, mid-deploy.
  await laneHandle.signal(laneReleaseSignal, callerA);
  // Reorder: B out of the queue, then in again behind C.
  await laneHandle.signal(laneReleaseSignal, callerB);
  await laneHandle.signal(laneRequestSignal, callerC);
  await laneHandle.signal(laneRequestSignal, callerB);

  const after = await until(lane, 'every insider signal read', (s) => s.refusals.length >= 5);
  expect(after.holder?.change).toBe(a);
  expect(after.queue.map((t) => t.change)).toEqual([b]);
  expect(
    after.refusals.map(
      (r) =>
        `${r.what} ${r.workflowId === callerA.workflowId ? 'A' : r.workflowId === callerB.workflowId ? 'B' : r.workflowId === callerC.workflowId ? 'C' : 'made-up'}: ${r.reason}`,
    ),
  ).toEqual([
    expect.stringMatching(/^request C: .*no acquireLane activity of it is pending/),
    expect.stringMatching(/^request made-up: .*does not exist/),
    expect.stringMatching(/^release A: .*no releaseLane activity of it is pending/),
    expect.stringMatching(/^release B: .*no releaseLane activity of it is pending/),
    expect.stringMatching(/^request C: .*no acquireLane activity of it is pending/),
  ]);
  // Nothing but A deployed while A holds the lane.
  expect(stack.calls.deploy.filter((d) => d.change === b || d.change === c)).toEqual([]);

  // A ends (closed mid-deploy): its revoke and release run, and B, not C, gets the lane.
  await close(stack, handleA);
  await until(lane, 'B holding or done', (s) => s.releases.some((r) => r.change === b) || s.holder?.change === b);
  await waitForStatus(handleB, (s) => s.environments.find((e) => e.name === 'staging')?.state === 'deployed');
  const final = await laneState(lane);
  expect(final.releases.map((r) => [r.change, r.outcome])).toEqual(expect.arrayContaining([[a, 'cancelled']]));
  expect(stack.calls.deploy.filter((d) => d.change === c)).toEqual([]);
  for (const h of [handleB, handleC]) await close(stack, h);
});

/** Change A holds the staging lane with a deploy that does not end; change B waits for its approval. */
async function aDeployingBWaitingForApproval() {
  const lane = laneIdFor('acme/shop', 'staging', stack.taskQueue);
  const [a, b] = [newChange(), newChange()];
  const [ha, hb] = [sha(), sha()];
  stack.hangingDeploys.add(a);
  const handleA = await openChange(stack, a, opened(ha));
  const handleB = await openChange(stack, b, opened(hb));
  await waitForStatus(handleB, (s) => s.stage === 'awaiting-approval');
  await approve(stack, handleA, claim(a, ha, 'alex-reviewer'));
  await until(lane, 'A holding', (s) => s.holder?.change === a);
  return { lane, a, b, hb, handleA, handleB };
}

it(
  'terminating the lane mid-deploy does not let the next change deploy next to the running one',
  { timeout: 60_000 },
  async () => {
    const { lane, a, b, hb, handleA, handleB } = await aDeployingBWaitingForApproval();
    await stack.client.workflow.getHandle(lane).terminate('insider: an empty lane would grant at once');
    await approve(stack, handleB, claim(b, hb, 'alex-reviewer'));
    const taken = await until(lane, 'B waiting behind A in the new run', (s) => s.queue.some((t) => t.change === b));
    expect(taken.holder?.change).toBe(a);
    expect(taken.refusals.at(-1)?.reason).toMatch(
      /was terminated|terminated; this run took over its holder, queue and releases/,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(stack.calls.deploy.filter((d) => d.change === b)).toEqual([]);
    await close(stack, handleA);
    await waitForStatus(handleB, (s) => s.environments.find((e) => e.name === 'staging')?.state === 'deployed');
    await close(stack, handleB);
  },
);

it(
  'a lane started by an insider with a memo naming a change as holder does not let that change deploy',
  { timeout: 60_000 },
  async () => {
    const { lane, a, b, hb, handleA, handleB } = await aDeployingBWaitingForApproval();
    // The insider ends the lane and starts one of their own under its ID, on a queue no worker polls, whose memo
    // (set at start, as anyone starting a workflow may) names B as the holder.
    const { runId: runB } = await handleB.describe();
    const real = await stack.client.workflow.getHandle(lane).describe();
    await stack.client.workflow.getHandle(lane).terminate('insider');
    const forged = {
      v: 1,
      run: real.runId,
      holder: { workflowId: handleB.workflowId, runId: runB, change: b, sha: hb },
      queue: [],
      declined: {},
      refused: {},
    };
    const bogus = await stack.client.workflow.start('laneWorkflow', {
      workflowId: lane,
      taskQueue: `${stack.taskQueue}-nobody`,
      args: [{ lane }],
      memo: { lane: forged },
    });
    await approve(stack, handleB, claim(b, hb, 'alex-reviewer'));
    await new Promise((r) => setTimeout(r, 3_000));
    expect(stack.calls.deploy.filter((d) => d.change === b)).toEqual([]);
    expect((await status(handleB)).environments.find((e) => e.name === 'staging')?.state).not.toBe('deployed');
    // Once the bogus run is gone, B waits behind A in a real lane and deploys after A has ended.
    await bogus.terminate('cleaning up');
    await until(
      lane,
      'B waiting behind A in a real lane',
      (s) => s.holder?.change === a && s.queue.some((t) => t.change === b),
    );
    expect(stack.calls.deploy.filter((d) => d.change === b)).toEqual([]);
    await close(stack, handleA);
    await waitForStatus(handleB, (s) => s.environments.find((e) => e.name === 'staging')?.state === 'deployed');
    await close(stack, handleB);
  },
);

it(
  "a request naming a waiting change without a run ID (the server's latest run) is refused: no ticket for a run nobody named",
  { timeout: 60_000 },
  async () => {
    const { lane, b, hb, handleA, handleB } = await aDeployingBWaitingForApproval();
    await approve(stack, handleB, claim(b, hb, 'alex-reviewer'));
    await until(lane, 'B waiting', (s) => s.queue.some((t) => t.change === b));
    // Sent first, such a ticket would hold the lane while B, whose run ID it is not, waits for it forever; one
    // recorded as a release would have a rollback read its approvals from whatever run of B is latest then.
    await stack.client.workflow
      .getHandle(lane)
      .signal(laneRequestSignal, { workflowId: handleB.workflowId, runId: '' });
    const after = await until(lane, 'the request read', (s) => s.refusals.some((r) => r.runId === ''));
    expect(after.refusals.find((r) => r.runId === '')?.reason).toMatch(/does not exist/);
    expect(after.queue.map((t) => [t.change, t.runId])).toEqual([[b, (await handleB.describe()).runId]]);
    for (const h of [handleA, handleB]) await close(stack, h);
  },
);
