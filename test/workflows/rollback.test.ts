// Rollback on the real Temporal dev server: an environment goes back to its previous release through the same
// lane, deploy zone and revoke as a change, and the lane records it. What an insider with Temporal access tries
// instead — a request the gateway never signed, a signed request copied from an earlier rollback, a request
// for another environment, a target never approved there, an asker who may not approve the environment — is
// refused with the reason, and the deploy zone runs nothing for it.
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, type SigningKey } from '../../src/shared/approval-signature.ts';
import { laneIdFor, type LaneState } from '../../src/shared/lane.ts';
import {
  rollbackWorkflowId,
  signRollback,
  type RollbackClaim,
  type RollbackStatus,
} from '../../src/shared/rollback.ts';
import { rollbackStatusQuery } from '../../src/workflows/definitions.ts';
import { laneStateQuery } from '../../src/workflows/lane.ts';
import type { RollbackResult } from '../../src/workflows/rollback.ts';
import {
  approve,
  claim,
  newChange,
  openChange,
  opened,
  saveLaneHistory,
  sha,
  startStack,
  waitForStatus,
  type Stack,
} from './harness.ts';

const REPO = 'acme/rollback';
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    repositories: [`{ name: ${REPO}, remote: /nonexistent, environments: [staging, production] }`],
  });
});
afterAll(async () => {
  await stack?.stop();
});

function request(person: string, extra: Partial<RollbackClaim> = {}): RollbackClaim {
  return {
    v: 1,
    kind: 'rollback',
    repo: REPO,
    environment: 'production',
    person,
    channel: 'cli',
    evidence: { tokenLogin: person },
    reason: 'checkout errors since the last release',
    at: new Date().toISOString(),
    nonce: randomUUID(),
    ...extra,
  };
}

/** Starts a rollback as the gateway does (or as an insider would, with `key` or `workflowId` of their own). */
async function rollback(c: RollbackClaim, options: { key?: SigningKey; workflowId?: string } = {}) {
  const workflowId = options.workflowId ?? rollbackWorkflowId(c.repo, c.environment, c.nonce);
  const handle = await stack.client.workflow.start('rollbackWorkflow', {
    workflowId,
    taskQueue: stack.taskQueue,
    args: [{ request: signRollback(c, options.key ?? stack.key) }],
  });
  const outcome = await handle.result().then(
    (r) => ({ result: r as RollbackResult, refused: undefined }),
    (error: unknown) => ({
      result: undefined,
      refused: error instanceof WorkflowFailedError ? String(error.cause?.message) : String(error),
    }),
  );
  return { handle, ...outcome, status: await handle.query(rollbackStatusQuery) };
}

async function deliver(head: string, approver = 'alex-reviewer'): Promise<void> {
  const change = newChange(REPO);
  const handle = await openChange(stack, change, opened(head, 'sam-dev'));
  await waitForStatus(handle, (s) => s.stage === 'awaiting-approval', 30_000);
  await approve(stack, handle, claim(change, head, approver));
  await waitForStatus(handle, (s) => s.stage === 'delivered', 30_000);
}

const lane = () => laneIdFor(REPO, 'production', stack.taskQueue);
const deploysOf = (s: string) => stack.calls.deploy.filter((d) => d.sha === s && d.environment === 'production');

describe('rollback', () => {
  let first: string;
  let second: string;

  it('goes back to the previous release through the lane and the deploy zone, and the lane records it', async () => {
    first = sha();
    second = sha();
    await deliver(first, 'alex-reviewer');
    await deliver(second, 'kim-qa');
    const before = deploysOf(first).length;
    const revokesBefore = stack.calls.revoke.length;

    const asked = request('jo-platform');
    const done = await rollback(asked);
    expect(done.refused).toBeUndefined();
    expect(done.result).toMatchObject({ outcome: 'done', sha: first });
    expect(done.status).toMatchObject({
      stage: 'done',
      requestedBy: 'jo-platform',
      headSha: first,
      approvedBy: ['alex-reviewer'],
      from: { sha: second },
    });
    const redeployed = deploysOf(first);
    expect(redeployed.length).toBe(before + 1);
    expect(redeployed.at(-1)).toMatchObject({ rollback: asked.nonce });
    // The revoke backstop ran, in the deploy zone, for the release's change in production, after the rollback's deploy.
    expect(done.status.timeline.map((t) => t.what)).not.toContain('revoke-failed');
    expect(stack.calls.revoke.slice(revokesBefore)).toContainEqual(
      expect.objectContaining({ change: redeployed.at(-1)?.change, environment: 'production', rollback: asked.nonce }),
    );

    const state: LaneState = await stack.client.workflow.getHandle(lane()).query(laneStateQuery);
    expect(state.running).toMatchObject({
      sha: first,
      kind: 'rollback',
      outcome: 'deployed',
      approvers: ['alex-reviewer'],
    });
    expect(state.releases.map((r) => `${r.kind}:${r.sha.slice(0, 7)}`).slice(-3)).toEqual([
      `change:${first.slice(0, 7)}`,
      `change:${second.slice(0, 7)}`,
      `rollback:${first.slice(0, 7)}`,
    ]);
    await saveLaneHistory(stack, done.handle.workflowId, 'v2-rollback-reverify');
    await saveLaneHistory(stack, lane(), 'v2-lane-rollback');

    // A second rollback keeps going back: the release rolled back from is no "previous release" any more.
    const deploys = stack.calls.deploy.length;
    const again = await rollback(request('jo-platform'));
    expect(again.refused).toBe(`production has no earlier release to roll back to before ${first.slice(0, 7)}`);
    expect(stack.calls.deploy.length).toBe(deploys);
  });

  it('refuses a target that was never approved and delivered there, and an asker who may not approve it', async () => {
    const deploys = stack.calls.deploy.length;
    const unapproved = await rollback(request('jo-platform', { to: sha().slice(0, 12) }));
    expect(unapproved.refused).toMatch(/was never approved and delivered to production/);
    expect(unapproved.status.stage).toBe('refused');
    // sam-dev is not in team platform, production's eligible approvers.
    const notEligible = await rollback(request('sam-dev', { to: second }));
    expect(notEligible.refused).toMatch(/sam-dev may not roll back production/);
    expect(stack.calls.deploy.length).toBe(deploys);
  });

  it('refuses what an insider starts at Temporal without the gateway: forged, copied, or for another environment', async () => {
    const deploys = stack.calls.deploy.length;
    const forged = await rollback(request('jo-platform', { to: second }), { key: generateSigningKey() });
    expect(forged.refused).toMatch(/not signed by a gateway key the policy trusts/);

    // A signed request copied from a finished rollback's history, started again under its own ID.
    const copied = request('jo-platform', { to: second });
    const once = await rollback(copied);
    expect(once.result).toMatchObject({ outcome: 'done', sha: second });
    const again = await rollback(copied);
    expect(again.refused).toMatch(/already ran 1 time\(s\): a signed rollback request runs once/);

    // Signed for staging, started under a production rollback's ID.
    const staging = request('jo-platform', { environment: 'staging' });
    const moved = await rollback(staging, { workflowId: rollbackWorkflowId(REPO, 'production', staging.nonce) });
    expect(moved.refused).toMatch(/is for acme\/rollback@staging/);

    const old = await rollback(request('jo-platform', { at: new Date(Date.now() - 3_600_000).toISOString() }));
    expect(old.refused).toMatch(/old \(at most/);
    // Only the one honest rollback deployed.
    expect(stack.calls.deploy.length).toBe(deploys + 1);
    const status: RollbackStatus = again.status;
    expect(status.timeline.map((t) => t.what)).toEqual(['refused']);
  });
});

// The target's approvals are read again from the change that delivered it and must stand under the policy now.
describe('rollback under the policy now', () => {
  it('refuses a target whose approver is no longer eligible for the environment, and deploys nothing', async () => {
    const target = sha();
    await deliver(target, 'kim-qa');
    await deliver(sha(), 'alex-reviewer');
    const platform = stack.config.teams.platform as string[];
    // kim-qa leaves team platform, production's eligible approvers.
    stack.config.teams.platform = platform.filter((p) => p !== 'kim-qa');
    try {
      const deploys = stack.calls.deploy.length;
      const refused = await rollback(request('jo-platform'));
      expect(refused.refused).toBe(
        `the approval of ${target.slice(0, 7)} for production no longer stands (0 of 1 required): kim-qa is no longer eligible to approve production: deploy it as a change, to have it approved under the policy now`,
      );
      expect(refused.status.stage).toBe('refused');
      expect(stack.calls.deploy.length).toBe(deploys);
    } finally {
      stack.config.teams.platform = platform;
    }
  });

  it('refuses a target approved under a gateway key the policy no longer trusts, and deploys nothing', async () => {
    const target = sha();
    await deliver(target, 'alex-reviewer');
    // The gateway's key is rotated out (say, after a compromise): only the new one is trusted from now on.
    const old = stack.key;
    stack.key = generateSigningKey();
    stack.trustedKeys.splice(0, stack.trustedKeys.length, stack.key.publicKey);
    try {
      await deliver(sha(), 'alex-reviewer');
      const deploys = stack.calls.deploy.length;
      const refused = await rollback(request('jo-platform'));
      expect(refused.refused).toBe(
        `the approval of ${target.slice(0, 7)} for production no longer stands (0 of 1 required): alex-reviewer's approval was signed by a gateway key the policy no longer trusts: deploy it as a change, to have it approved under the policy now`,
      );
      expect(stack.calls.deploy.length).toBe(deploys);

      // A target approved under the new key still rolls back.
      const current = sha();
      await deliver(current, 'kim-qa');
      await deliver(sha(), 'alex-reviewer');
      const done = await rollback(request('jo-platform'));
      expect(done.result).toMatchObject({ outcome: 'done', sha: current });
      expect(done.status.timeline.find((t) => t.what === 'accepted')?.detail).toContain(
        'its approval still stands under the policy now (kim-qa)',
      );
    } finally {
      stack.key = old;
      stack.trustedKeys.splice(0, stack.trustedKeys.length, old.publicKey);
    }
  });
});

// Someone with Temporal access terminates the lane: its releases are still the evidence, read from that run's history.
describe('rollback after the lane was terminated', () => {
  it('finds the previous release in the terminated lane and goes back through the lane that takes over', async () => {
    const target = sha();
    await deliver(target, 'kim-qa');
    const current = sha();
    await deliver(current, 'alex-reviewer');
    await stack.client.workflow
      .getHandle(lane())
      .terminate('insider: a lane with no releases has nothing to go back to');
    const deploys = deploysOf(target).length;
    const done = await rollback(request('jo-platform'));
    expect(done.refused).toBeUndefined();
    expect(done.result).toMatchObject({ outcome: 'done', sha: target });
    expect(deploysOf(target).length).toBe(deploys + 1);
    const state: LaneState = await stack.client.workflow.getHandle(lane()).query(laneStateQuery);
    expect(state.running).toMatchObject({ sha: target, kind: 'rollback' });
  });
});
