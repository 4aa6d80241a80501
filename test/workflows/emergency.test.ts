// Break-glass on the real Temporal dev server: a declared emergency deploys the exact head without waiting for
// approvals, is announced, and keeps the change open until an eligible person who is neither an initiator nor
// the declarer has approved that head. What an insider tries instead — declaring without being allowed, with a
// key of their own, for another head, twice, over failing checks, reviewing their own emergency — is refused
// with the reason and deploys nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import { laneIdFor, type LaneState } from '../../src/shared/lane.ts';
import { laneStateQuery } from '../../src/workflows/lane.ts';
import {
  approve,
  claim,
  declareEmergency,
  emergencyClaim,
  newChange,
  openChange,
  opened,
  result,
  saveHistory,
  saveLaneHistory,
  sha,
  startStack,
  status,
  waitForStatus,
  type Stack,
} from './harness.ts';

let stack: Stack;
/** Short window and review deadline; failing checks may be overridden. */
let quick: Stack;
beforeAll(async () => {
  [stack, quick] = await Promise.all([
    startStack({ config: 'emergency: { allowed: [lee-ops, jo-platform], window: 1h, reviewWithin: 2h }' }),
    startStack({
      config: 'emergency: { allowed: [lee-ops], window: 3s, reviewWithin: 5s, overrideFailingChecks: true }',
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([stack?.stop(), quick?.stop()]);
});

async function awaitingApproval(on: Stack, head: string) {
  const change = newChange();
  const handle = await openChange(on, change, opened(head, 'sam-dev'));
  await waitForStatus(handle, (s) => s.stage === 'awaiting-approval' || s.stage === 'checks-failed', 30_000);
  return { change, handle };
}

const deploysOf = (on: Stack, head: string) => on.calls.deploy.filter((d) => d.sha === head).map((d) => d.environment);

describe('emergency', () => {
  it('deploys the declared head without approvals, announces it, and stays open until the retroactive review', async () => {
    const head = sha();
    const { change, handle } = await awaitingApproval(stack, head);
    const declared = await declareEmergency(stack, handle, emergencyClaim(change, head, 'lee-ops'));
    expect(declared).toMatchObject({
      taken: true,
      emergency: { declaredBy: 'lee-ops', sha: head, environments: ['staging', 'production'], state: 'open' },
    });

    const delivered = await waitForStatus(
      handle,
      (s) => s.stage === 'delivered' && stack.calls.merge.length > 0,
      30_000,
    );
    expect(deploysOf(stack, head)).toEqual(['staging', 'production']);
    expect(delivered.approvals).toHaveLength(0);
    expect(delivered.emergencies?.[0]).toMatchObject({ state: 'review-due', usedFor: ['staging', 'production'] });
    expect(delivered.emergencies?.[0]?.summary).toMatch(/^emergency, review due /);
    expect(stack.calls.announce.filter((a) => a.change === change)).toEqual([
      expect.objectContaining({ kind: 'declared', emergency: expect.objectContaining({ declaredBy: 'lee-ops' }) }),
    ]);

    // Neither the declarer nor an initiator can review it; the change stays open for the review.
    const own = await approve(stack, handle, claim(change, head, 'lee-ops'));
    expect(own.counted).toBe(true);
    const initiator = await approve(stack, handle, claim(change, head, 'sam-dev'));
    expect(initiator).toMatchObject({ counted: false, reason: expect.stringMatching(/initiator/) });
    expect((await status(handle)).emergencies?.[0]?.state).toBe('review-due');
    expect((await handle.describe()).status.name).toBe('RUNNING');

    const review = await approve(stack, handle, claim(change, head, 'alex-reviewer'));
    expect(review.counted).toBe(true);
    expect(await result(handle)).toMatchObject({ outcome: 'delivered', headSha: head });
    const done = await status(handle);
    expect(done.emergencies?.[0]).toMatchObject({ state: 'reviewed', reviewedBy: 'alex-reviewer' });
    const kinds = done.timeline.map((t) => t.kind);
    expect(kinds.filter((k) => k === 'emergency-gate-open')).toHaveLength(2);
    expect(kinds).toContain('emergency-reviewed');
    expect(deploysOf(stack, head)).toEqual(['staging', 'production']);
    // The lane keeps it as an emergency release: never a pre-approved rollback target.
    const lane = stack.client.workflow.getHandle(laneIdFor('acme/shop', 'production', stack.taskQueue));
    const state: LaneState = await lane.query(laneStateQuery);
    expect(state.releases.find((r) => r.sha === head)).toMatchObject({ emergency: 'lee-ops', approvers: [] });
    await saveHistory(stack, handle, 'v2-emergency');
    await saveLaneHistory(stack, lane.workflowId, 'v2-lane-emergency');
  });

  it('refuses a declaration by someone not allowed, a forged one, one for another head, a replay and a second one', async () => {
    const head = sha();
    const { change, handle } = await awaitingApproval(stack, head);
    const refusals = [
      await declareEmergency(stack, handle, emergencyClaim(change, head, 'kim-qa')),
      await declareEmergency(stack, handle, emergencyClaim(change, head, 'lee-ops'), generateSigningKey()),
      await declareEmergency(stack, handle, emergencyClaim(change, sha(), 'lee-ops')),
      await declareEmergency(stack, handle, emergencyClaim(change, head, 'lee-ops', { evidence: { tokenLogin: 'x' } })),
    ];
    expect(refusals.map((r) => r.taken)).toEqual([false, false, false, false]);
    expect(refusals.map((r) => r.reason)).toEqual([
      expect.stringMatching(/kim-qa may not declare an emergency \(emergency.allowed: jo-platform, lee-ops\)/),
      expect.stringMatching(/not signed by a gateway key the policy trusts/),
      expect.stringMatching(/but the head is/),
      expect.stringMatching(/names nobody the gateway authenticated/),
    ]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(deploysOf(stack, head)).toEqual([]);
    expect((await status(handle)).stage).toBe('awaiting-approval');

    const first = emergencyClaim(change, head, 'jo-platform', { environments: ['staging'] });
    expect((await declareEmergency(stack, handle, first)).taken).toBe(true);
    expect(await declareEmergency(stack, handle, first)).toMatchObject({
      taken: false,
      reason: expect.stringMatching(/replayed nonce/),
    });
    expect(await declareEmergency(stack, handle, emergencyClaim(change, head, 'lee-ops'))).toMatchObject({
      taken: false,
      reason: expect.stringMatching(/already open .* declared by jo-platform/),
    });
    // Only staging was declared: production still waits for its approval.
    const waiting = await waitForStatus(
      handle,
      (s) => s.stage === 'awaiting-approval' && s.environments.some((e) => e.state === 'deployed'),
      30_000,
    );
    expect(deploysOf(stack, head)).toEqual(['staging']);
    expect(waiting.stage).toBe('awaiting-approval');
    expect(waiting.timeline.filter((t) => t.kind === 'emergency-refused')).toHaveLength(6);
  });

  it('keeps failing checks out unless emergency.overrideFailingChecks is set; the checks still run and show', async () => {
    const head = sha();
    stack.failingShas.add(head);
    const strict = await awaitingApproval(stack, head);
    expect(await declareEmergency(stack, strict.handle, emergencyClaim(strict.change, head, 'lee-ops'))).toMatchObject({
      taken: false,
      reason: expect.stringMatching(/checks failed on \w+: .*overrideFailingChecks is off/),
    });
    expect(deploysOf(stack, head)).toEqual([]);

    const overridden = sha();
    quick.failingShas.add(overridden);
    const { change, handle } = await awaitingApproval(quick, overridden);
    expect((await status(handle)).stage).toBe('checks-failed');
    expect((await declareEmergency(quick, handle, emergencyClaim(change, overridden, 'lee-ops'))).taken).toBe(true);
    const deployed = await waitForStatus(handle, (s) => s.stage === 'delivered', 30_000);
    expect(deployed.checks).toMatchObject({ sha: overridden, passed: false });
    expect(deploysOf(quick, overridden)).toEqual(['staging', 'production']);
  });

  it('an unreviewed emergency falls overdue: a finding, announced again; a late review closes it as late', async () => {
    const head = sha();
    const { change, handle } = await awaitingApproval(quick, head);
    expect((await declareEmergency(quick, handle, emergencyClaim(change, head, 'lee-ops'))).taken).toBe(true);
    await waitForStatus(handle, (s) => s.stage === 'delivered', 30_000);
    const overdue = await waitForStatus(handle, (s) => s.emergencies?.[0]?.state === 'overdue', 30_000);
    expect(overdue.emergencies?.[0]?.summary).toMatch(/review OVERDUE since/);
    expect(overdue.timeline.find((t) => t.kind === 'emergency-overdue')?.summary).toMatch(/^finding: /);
    await waitForStatus(handle, () => quick.calls.announce.some((a) => a.change === change && a.kind === 'overdue'));
    expect((await handle.describe()).status.name).toBe('RUNNING');

    await approve(quick, handle, claim(change, head, 'kim-qa'));
    await result(handle);
    expect((await status(handle)).emergencies?.[0]).toMatchObject({ state: 'reviewed-late', reviewedBy: 'kim-qa' });
    expect(quick.calls.announce.filter((a) => a.change === change).map((a) => a.kind)).toEqual(['declared', 'overdue']);
  });

  it('an emergency under which nothing deployed lapses when its window ends, and another may then be declared', async () => {
    const head = sha();
    const { change, handle } = await awaitingApproval(quick, head);
    // Production only: staging, first in order, waits for its approval while the window runs out.
    const only = emergencyClaim(change, head, 'lee-ops', { environments: ['production'] });
    expect((await declareEmergency(quick, handle, only)).taken).toBe(true);
    const lapsed = await waitForStatus(handle, (s) => s.emergencies?.[0]?.state === 'lapsed', 30_000);
    expect(lapsed.timeline.find((t) => t.kind === 'emergency-lapsed')?.summary).toMatch(/window ended/);
    expect(deploysOf(quick, head)).toEqual([]);
    expect((await declareEmergency(quick, handle, emergencyClaim(change, head, 'lee-ops'))).taken).toBe(true);
    await waitForStatus(handle, (s) => s.stage === 'delivered', 30_000);
    expect(deploysOf(quick, head)).toEqual(['staging', 'production']);
  });
});
