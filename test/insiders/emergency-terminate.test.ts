// Terminating a change is something anyone with a Temporal client can do. A change whose head went out under an
// emergency and owes its retroactive review is terminated; the next push starts a fresh run from what the
// earlier runs left. That run must still owe the review (before, it started without the emergency: the review
// was gone), and the signed declaration, copied from the terminated run's history, is a replay there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signEmergency } from '../../src/shared/emergency.ts';
import { emergencyUpdate, pullRequestSignal } from '../../src/workflows/definitions.ts';
import {
  commit,
  deployedUnderEmergency,
  EMERGENCY_CONFIG,
  factsOf,
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
  stack = await startStack({ config: EMERGENCY_CONFIG });
});
afterAll(async () => {
  await stack?.stop();
});

describe('terminating a change that owes an emergency review', () => {
  it('the next run still owes it, and the declaration cannot be replayed there', async () => {
    const { change, first, c1, handle, declaration, outcome } = await deployedUnderEmergency(stack);
    expect(outcome.taken).toBe(true);

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
