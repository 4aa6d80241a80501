// An initiator pushes once the emergency head went out: on the real Temporal dev server, the head deployed
// under the emergency can still be reviewed (before, every approval of it was refused as "not the head", the
// review could never happen, the change could never end, and no further emergency could be declared for it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  approve,
  claim,
  commit,
  declareEmergency,
  deployedUnderEmergency,
  emergencyClaim,
  EMERGENCY_CONFIG,
  push,
  pushed,
  sha,
  startStack,
  status,
  waitForStatus,
  type Stack,
} from '../workflows/harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ config: EMERGENCY_CONFIG });
});
afterAll(async () => {
  await stack?.stop();
});

describe('a push after a deploy under an emergency', () => {
  it('does not make the retroactive review impossible', async () => {
    const { change, first, c1, handle, outcome } = await deployedUnderEmergency(stack);
    expect(outcome.taken).toBe(true);
    expect(stack.calls.deploy.filter((d) => d.sha === first).map((d) => d.environment)).toEqual(['staging']);

    // sam pushes on top of what went out under the emergency.
    const second = sha();
    await push(stack, handle, pushed(first, second, 'sam-dev', [c1, commit(second, { login: 'sam-dev' })]));
    await waitForStatus(handle, (s) => s.headSha === second && s.stage === 'awaiting-approval', 30_000);
    expect((await status(handle)).emergencies?.[0]?.state).toBe('review-due');

    // alex reviews the exact SHA that went out: taken as the review, and it opens nothing for the new head.
    const review = await approve(stack, handle, claim(change, first, 'alex-reviewer'));
    expect(review).toMatchObject({ counted: true });
    const after = await status(handle);
    expect(after.emergencies?.[0]).toMatchObject({ state: 'reviewed', reviewedBy: 'alex-reviewer' });
    expect(after.stage).toBe('awaiting-approval');
    expect(stack.calls.deploy.filter((d) => d.sha === second)).toEqual([]);
    expect(after.environments.map((e) => e.approvedBy)).toEqual([[], []]);

    // The change is no longer held by the old emergency: a new one may be declared for the new head.
    expect((await declareEmergency(stack, handle, emergencyClaim(change, second, 'lee-ops'))).taken).toBe(true);
  });
});
