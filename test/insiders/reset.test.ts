// "Reset" is something anyone with a Temporal client can do to a change (README: it shows in the UI). Reset
// without re-applying signals drops every signal after the reset point — among them the signed push event
// that named an approver as the pusher of a commit they wrote under the developer's e-mail. The record the
// reset run goes on with forgets that approver took part; a later pusher-less signed event for the same head
// (the gateway forwards a base change as `edited`, no sender) moves the head there, and the approver's own
// approval of their own commit counts. What should hold: what a signal taught the change is not forgotten.
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  approve,
  claim,
  commit,
  deliverOnly,
  newChange,
  openChange,
  opened,
  push,
  pushed,
  sha,
  startStack,
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

describe('a reset that drops signals', () => {
  it('does not make a pusher’s own commit approvable by them', async () => {
    const change = newChange();
    const first = sha();
    const handle = await openChange(stack, change, opened(first));
    await waitForStatus(handle, (s) => s.stage === 'awaiting-approval' && s.headSha === first);

    // alex writes a commit under sam's e-mail and pushes it: an initiator as its pusher.
    const second = sha();
    const push2 = pushed(first, second, 'alex-reviewer', [
      commit(first, { login: 'sam-dev', email: 'sam@example.com' }),
      commit(second, { email: 'sam@example.com' }),
    ]);
    await push(stack, handle, push2);
    await waitForStatus(
      handle,
      (s) => s.stage === 'awaiting-approval' && s.headSha === second && s.initiators.includes('alex-reviewer'),
    );

    // The insider resets the run to the last workflow task before the push signal, re-applying nothing.
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const pushIndex = events.findIndex(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'pullRequest' && Number(e.eventId) > 2,
    ); // after the opening signal
    const resetPoint = events
      .slice(0, pushIndex)
      .filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
      .at(-1);
    const described = await handle.describe();
    await stack.client.workflowService.resetWorkflowExecution({
      namespace: stack.client.options.namespace,
      workflowExecution: { workflowId: handle.workflowId, runId: described.runId },
      workflowTaskFinishEventId: resetPoint?.eventId,
      reason: 'insider',
      requestId: sha(),
      resetReapplyType: temporal.api.enums.v1.ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
    });
    const reset = stack.client.workflow.getHandle(handle.workflowId) as typeof handle;
    await waitForStatus(reset, (s) => s.headSha === first);

    // The pull request is retargeted (GitHub access): the gateway forwards a signed `edited` event, no sender.
    await deliverOnly(stack, reset, {
      ...push2,
      kind: 'edited',
      deliveryId: `edited-${sha()}`,
      beforeSha: undefined as never,
      pusher: undefined as never,
    });
    const moved = await waitForStatus(reset, (s) => s.headSha === second && s.stage === 'awaiting-approval');
    const outcome = await approve(stack, reset, claim(change, second, 'alex-reviewer'));
    // The reset run cannot know alex pushed it, but it knows no push named anyone: nobody can approve that head.
    expect(moved.initiators).not.toContain('alex-reviewer');
    expect(outcome).toMatchObject({
      counted: false,
      reason: expect.stringMatching(/became the head without a push event naming who pushed it/),
    });
    expect(stack.calls.deploy.filter((d) => d.change === change && d.sha === second)).toEqual([]);
  });
});
