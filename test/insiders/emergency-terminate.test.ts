// Terminating a change is something anyone with a Temporal client can do. A change whose head went out under an
// emergency and owes its retroactive review is terminated; the next push starts a fresh run from what the
// earlier runs left. That run must still owe the review (before, it started without the emergency: the review
// was gone), and the signed declaration, copied from the terminated run's history, is a replay there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signEmergency } from '../../src/shared/emergency.ts';
import { emergencyUpdate, pullRequestSignal } from '../../src/workflows/definitions.ts';
import {
  commit,
  declareEmergency,
  emergencyClaim,
  factsOf,
  newChange,
  openChange,
  opened,
  pushed,
  sha,
  signedEvent,
  startStack,
  waitForStatus,
  type ChangeHandle,
  type Stack,
} from '../workflows/harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ config: 'emergency: { allowed: [lee-ops], window: 1h, reviewWithin: 2h }' });
});
afterAll(async () => {
  await stack?.stop();
});

describe('terminating a change that owes an emergency review', () => {
  it('the next run still owes it, and the declaration cannot be replayed there', async () => {
    const change = newChange();
    const first = sha();
    const c1 = commit(first, { login: 'sam-dev', email: 'sam@example.com' });
    const handle = await openChange(stack, change, opened(first, 'sam-dev', [c1]));
    await waitForStatus(handle, (s) => s.stage === 'awaiting-approval' && s.headSha === first, 30_000);
    const declaration = emergencyClaim(change, first, 'lee-ops', { environments: ['staging'] });
    expect((await declareEmergency(stack, handle, declaration)).taken).toBe(true);
    await waitForStatus(
      handle,
      (s) => s.stage === 'awaiting-approval' && s.emergencies?.[0]?.state === 'review-due',
      30_000,
    );

    await handle.terminate('insider');

    const second = sha();
    const push2 = pushed(first, second, 'sam-dev', [c1, commit(second, { login: 'sam-dev' })]);
    stack.github.set(change, factsOf(push2));
    const fresh = (await stack.client.workflow.signalWithStart('changeWorkflow', {
      workflowId: `change:${change}`,
      taskQueue: stack.taskQueue,
      args: [{ change }],
      signal: pullRequestSignal,
      signalArgs: [signedEvent(stack, change, push2)],
    })) as unknown as ChangeHandle;
    const waiting = await waitForStatus(fresh, (s) => s.headSha === second && s.stage === 'awaiting-approval', 60_000);
    expect(waiting.emergencies?.map((e) => ({ id: e.id, state: e.state, usedFor: e.usedFor }))).toEqual([
      { id: declaration.nonce, state: 'review-due', usedFor: ['staging'] },
    ]);
    const replayed = await fresh.executeUpdate(emergencyUpdate, {
      args: [signEmergency({ ...declaration, sha: second }, stack.key)],
    });
    expect(replayed).toMatchObject({ taken: false, reason: 'this declaration was already received (replayed nonce)' });
  });
});
