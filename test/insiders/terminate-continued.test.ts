// Terminating a change is something anyone with a Temporal client can do (README: "the next run starts from
// the change's record"). A run started afresh reads what earlier runs left: the record a completed run
// returned, or — for a run that ended without one — the signals and look-ups in its history. A run that was
// itself continued as new got the change's record as its input, and the run it continued from is skipped;
// so terminating a continued run loses everything the record carried, such as an approver who pushed a
// commit they wrote under the developer's e-mail. The next push by the developer starts a fresh run in which
// that approver took no part, and their approval of a head containing their own commit counts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullRequestSignal } from '../../src/workflows/definitions.ts';
import {
  approve,
  claim,
  commit,
  factsOf,
  newChange,
  openChange,
  opened,
  push,
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
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

describe('terminating a run that was continued as new', () => {
  it('does not forget who took part in the change', async () => {
    const change = newChange();
    const first = sha();
    const c1 = commit(first, { login: 'sam-dev', email: 'sam@example.com' });
    // A long-lived change continues as new now and then; a low limit makes it do so quickly here.
    const handle = await openChange(stack, change, opened(first), { historyEventLimit: 30 });
    await waitForStatus(handle, (s) => s.stage === 'awaiting-approval' && s.headSha === first);

    const second = sha();
    const c2 = commit(second, { email: 'sam@example.com' });
    await push(stack, handle, pushed(first, second, 'alex-reviewer', [c1, c2]));
    await waitForStatus(handle, (s) => s.headSha === second && s.initiators.includes('alex-reviewer'));
    // It continues as new with the record (alex an initiator in it).
    const continued = await waitForStatus(handle, (s) => (s.runs ?? []).some((r) => r.how === 'continued'), 60_000);
    expect(continued.initiators).toContain('alex-reviewer');

    await handle.terminate('insider');

    // sam pushes on top: the gateway's signalWithStart starts a fresh run.
    const third = sha();
    const push3 = pushed(second, third, 'sam-dev', [
      c1,
      c2,
      commit(third, { login: 'sam-dev', email: 'sam@example.com' }),
    ]);
    stack.github.set(change, factsOf(push3));
    const fresh = (await stack.client.workflow.signalWithStart('changeWorkflow', {
      workflowId: `change:${change}`,
      taskQueue: stack.taskQueue,
      args: [{ change }],
      signal: pullRequestSignal,
      signalArgs: [signedEvent(stack, change, push3)],
    })) as unknown as ChangeHandle;
    const waiting = await waitForStatus(fresh, (s) => s.headSha === third && s.stage === 'awaiting-approval', 60_000);
    const outcome = await approve(stack, fresh, claim(change, third, 'alex-reviewer'));
    expect({ initiators: waiting.initiators, counted: outcome.counted }).toEqual({
      initiators: expect.arrayContaining(['alex-reviewer']),
      counted: false,
    });
  });
});
