// Resetting a change is something anyone with a Temporal client can do (README: it shows in the UI). A change
// whose head went out under an emergency owes its retroactive review; the insider resets the run to a point
// before the declaration, re-applying nothing. The new run copies the history up to there: its record has no
// emergency, yet the deploy under it really happened. Closing the pull request then ended the change with no
// review owed. What should hold: the reset run takes the emergencies (and the declaration's nonce) the run it
// was reset from last published, so the review is still owed and the declaration is a replay there.
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeEmergency } from '../../src/policy/sod.ts';
import { signEmergency, type EmergencyRecord } from '../../src/shared/emergency.ts';
import { emergencyUpdate } from '../../src/workflows/definitions.ts';
import {
  approve,
  claim,
  close,
  commit,
  declareEmergency,
  emergencyClaim,
  newChange,
  openChange,
  opened,
  sha,
  startStack,
  waitForStatus,
  type ChangeHandle,
  type Stack,
} from '../workflows/harness.ts';

let stack: Stack;
beforeAll(async () => {
  // No workflow cache, as production runs by default: every task of the reset run replays its whole history,
  // the recovery past the reset point included, under the reset run's own run ID.
  stack = await startStack({
    config: 'emergency: { allowed: [lee-ops], window: 1h, reviewWithin: 2h }',
    workflowCache: 0,
  });
});
afterAll(async () => {
  await stack?.stop();
});

describe('resetting a change that owes an emergency review to before the declaration', () => {
  it('the reset run still owes the review, and the declaration is a replay there', async () => {
    const change = newChange();
    const head = sha();
    const handle = await openChange(
      stack,
      change,
      opened(head, 'sam-dev', [commit(head, { login: 'sam-dev', email: 'sam@example.com' })]),
    );
    await waitForStatus(handle, (s) => s.stage === 'awaiting-approval' && s.headSha === head, 30_000);
    const declaration = emergencyClaim(change, head, 'lee-ops', { environments: ['staging'] });
    expect((await declareEmergency(stack, handle, declaration)).taken).toBe(true);
    await waitForStatus(
      handle,
      (s) => s.stage === 'awaiting-approval' && s.emergencies?.[0]?.state === 'review-due',
      30_000,
    );
    expect(stack.calls.deploy.filter((d) => d.change === change && d.sha === head)).not.toEqual([]);

    // The insider resets the run to the last workflow task before the declaration, re-applying nothing.
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const declared = events.findIndex(
      (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'emergency',
    );
    expect(declared).toBeGreaterThan(0);
    const resetPoint = events
      .slice(0, declared)
      .filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
      .at(-1);
    const described = await handle.describe();
    const { runId } = await stack.client.workflowService.resetWorkflowExecution({
      namespace: stack.client.options.namespace,
      workflowExecution: { workflowId: handle.workflowId, runId: described.runId },
      workflowTaskFinishEventId: resetPoint?.eventId,
      reason: 'insider',
      requestId: sha(),
      resetReapplyType: temporal.api.enums.v1.ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
    });
    expect(runId).not.toBe(described.runId);
    const reset = stack.client.workflow.getHandle(handle.workflowId) as ChangeHandle;

    // The reset run knows the emergency as the run it came from left it: the review is still owed.
    const owing = await waitForStatus(
      reset,
      (s) => (s.emergencies?.length ?? 0) > 0 && s.stage === 'awaiting-approval',
      15_000,
    );
    expect(owing.emergencies?.map((e) => ({ id: e.id, state: e.state, usedFor: e.usedFor }))).toEqual([
      { id: declaration.nonce, state: 'review-due', usedFor: ['staging'] },
    ]);
    // The signed declaration, taken from the reset run's predecessor, is a replay in the reset run.
    const replayed = await reset.executeUpdate(emergencyUpdate, { args: [signEmergency(declaration, stack.key)] });
    expect(replayed).toMatchObject({ taken: false, reason: 'this declaration was already received (replayed nonce)' });

    // Closing the pull request does not end the change while the review is owed.
    await close(stack, reset);
    await waitForStatus(reset, (s) => s.timeline.some((t) => t.kind === 'closed'), 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await reset.describe()).status.name).toBe('RUNNING');

    // The review closes it: an eligible person who is neither an initiator nor the declarer approves the head.
    expect((await approve(stack, reset, claim(change, head, 'alex-reviewer'))).counted).toBe(true);
    const done = (await reset.result()) as { outcome: string; record?: { emergencies?: { closedHow?: string }[] } };
    expect(done.record?.emergencies?.[0]).toMatchObject({ closedHow: 'reviewed' });
  });
});

describe('what a reset run keeps of an emergency the run it was reset from published', () => {
  const base: EmergencyRecord = {
    id: 'n-1',
    sha: 'a'.repeat(40),
    declaredBy: 'lee-ops',
    channel: 'cli',
    reason: 'checkout is down',
    declaredAt: '2026-12-04T10:00:00.000Z',
    windowEndsAt: '2026-12-04T11:00:00.000Z',
    reviewDueAt: '2026-12-04T12:00:00.000Z',
    environments: ['staging', 'production'],
    keyId: 'k',
    signature: 's',
    usedFor: [],
  };
  it('a deploy either run made stays owed, even where this run saw the emergency lapse unused', () => {
    const held = { ...base, closedHow: 'lapsed' as const, closedAt: '2026-12-04T11:00:00.000Z' };
    const other = { ...base, usedFor: ['staging'], deployedAt: '2026-12-04T10:05:00.000Z' };
    const merged = mergeEmergency(held, other);
    expect(merged).toMatchObject({ usedFor: ['staging'], deployedAt: '2026-12-04T10:05:00.000Z' });
    expect(merged.closedHow).toBeUndefined();
    expect(mergeEmergency({ ...base, usedFor: ['production'] }, other).usedFor).toEqual(['production', 'staging']);
  });
  it('a review either run recorded stays recorded', () => {
    const reviewed = {
      ...base,
      usedFor: ['staging'],
      closedHow: 'reviewed' as const,
      closedAt: '2026-12-04T10:30:00.000Z',
      reviewedBy: 'alex-reviewer',
      reviewedAt: '2026-12-04T10:30:00.000Z',
    };
    expect(mergeEmergency({ ...base }, reviewed)).toMatchObject({ closedHow: 'reviewed', reviewedBy: 'alex-reviewer' });
    expect(mergeEmergency(undefined, reviewed)).toEqual(reviewed);
  });
});
