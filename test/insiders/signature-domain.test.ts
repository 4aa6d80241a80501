// Approvals are signed over the bare claim, events under their own domain: `{domain, event}`. An insider with a
// Temporal client reads any signed pull request event from a change's history and sends it as an approval
// whose "claim" is exactly `{domain, event}`: the gateway's signature verifies, and the workflow then decides
// a claim with no person, change or sha. What should hold: it is refused like any malformed claim, and the
// change goes on (an honest approval still delivers).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalSignal } from '../../src/workflows/definitions.ts';
import type { PullRequestEvent, SignedApproval } from '../../src/shared/types.ts';
import {
  approve,
  claim,
  newChange,
  openChange,
  opened,
  result,
  sha,
  startStack,
  waitForStatus,
  type Stack,
} from '../workflows/harness.ts';
import { defaultPayloadConverter } from '@temporalio/common';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

describe('an event signature replayed as an approval signature', () => {
  it('is refused and the change still delivers on an honest approval', async () => {
    const change = newChange();
    const head = sha();
    const handle = await openChange(stack, change, opened(head));
    await waitForStatus(handle, (s) => s.stage === 'awaiting-approval');

    // The signed event, as anyone with read access to Temporal sees it in the history.
    const history = await handle.fetchHistory();
    const signal = history.events?.find(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'pullRequest',
    )?.workflowExecutionSignaledEventAttributes;
    const event = defaultPayloadConverter.fromPayload(signal?.input?.payloads?.[0] as never) as PullRequestEvent & {
      signature: string;
      keyId: string;
    };
    const { signature, keyId, ...unsigned } = event;
    const forged = {
      claim: { domain: 'foureyes.gateway-event/v1', event: unsigned },
      signature,
      keyId,
    } as unknown as SignedApproval;
    await handle.signal(approvalSignal, forged);

    const honest = approve(stack, handle, claim(change, head, 'alex-reviewer'));
    const outcome = await Promise.race([
      honest,
      new Promise((r) => setTimeout(() => r('no answer in 15 s: the workflow task fails on the forged claim'), 15_000)),
    ]);
    expect(outcome).toMatchObject({ counted: true });
    expect(await result(handle)).toMatchObject({ outcome: 'delivered', headSha: head });
  });
});
