// changeWorkflow on the real Temporal dev server: Segregation of Duties as a user of foureyes sees it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, signClaim } from '../../src/shared/approval-signature.ts';
import { approvalSignal } from '../../src/workflows/definitions.ts';
import {
  approve,
  claim,
  close,
  commit,
  deliverOnly,
  newChange,
  openChange,
  opened,
  push,
  pushed,
  result,
  saveHistory,
  sha,
  status,
  startStack,
  waitForStatus,
  type Stack,
} from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const awaiting = (s: { stage: string }) => s.stage === 'awaiting-approval';

describe('changeWorkflow', () => {
  it('delivers an approved change to staging then production, revokes after each step, and merges', async () => {
    const change = newChange();
    const head = sha();
    const handle = await openChange(stack, change, opened(head));
    const waiting = await waitForStatus(handle, awaiting);
    expect(waiting.waitingFor).toContain('for staging');
    expect(waiting.initiators).toEqual(['sam-dev']);

    const outcome = await approve(stack, handle, claim(change, head, 'alex-reviewer'));
    expect(outcome).toMatchObject({ counted: true, environments: ['staging', 'production'] });
    expect(await result(handle)).toMatchObject({ outcome: 'delivered', change, headSha: head });

    const final = await status(handle);
    expect(final.stage).toBe('delivered');
    expect(final.environments.map((e) => [e.name, e.state, e.approvedBy])).toEqual([
      ['staging', 'deployed', ['alex-reviewer']],
      ['production', 'deployed', ['alex-reviewer']],
    ]);
    const mine = <T extends { change: string }>(list: T[]) => list.filter((c) => c.change === change);
    expect(mine(stack.calls.deploy).map((d) => d.idempotencyKey)).toEqual([
      `${change}@staging@${head}`,
      `${change}@production@${head}`,
    ]);
    expect(mine(stack.calls.verify).map((d) => d.environment)).toEqual(['staging']);
    expect(mine(stack.calls.revoke).map((r) => r.environment)).toEqual(['staging', 'production']);
    expect(stack.calls.merge).toContainEqual({ change, sha: head });
    expect(stack.calls.checks).toContain(head);
    // Approvers were asked in chat once for this head, not once per environment or per wake-up.
    expect(stack.calls.slack.filter((c) => c === `${change}@${head}`)).toHaveLength(1);

    const described = await handle.describe();
    expect(described.searchAttributes.FoureyesStage).toEqual(['delivered']);
    expect(described.searchAttributes.FoureyesApprovers).toEqual(['alex-reviewer']);
    expect(described.searchAttributes.FoureyesHeadSha).toEqual([head]);
    await saveHistory(stack, handle, 'v2-happy-path');
  });

  it('refuses every initiator, an older SHA and an ineligible person, each with its reason on record', async () => {
    const change = newChange();
    const first = sha();
    const second = sha();
    const commits = [
      commit(
        first,
        { email: 'KIM@example.com', name: 'Kim' },
        { email: '4242+pat-peer@users.noreply.github.com', name: 'Pat' },
        'Speed up\n\nCo-authored-by: Jo <jo@EXAMPLE.com>',
      ),
    ];
    const handle = await openChange(stack, change, opened(first, 'sam-dev', commits));
    await waitForStatus(handle, (s) => awaiting(s) && s.headSha === first);
    await push(stack, handle, pushed(first, second, 'alex-reviewer', [commit(second, { login: 'sam-dev' })]));
    const s = await waitForStatus(handle, (st) => awaiting(st) && st.headSha === second);
    expect(s.initiators).toEqual(['alex-reviewer', 'jo-platform', 'kim-qa', 'pat-peer', 'sam-dev']);

    const attempt = (person: string, extra = {}) => approve(stack, handle, claim(change, second, person, extra));
    expect((await attempt('sam-dev')).reason).toBe(
      `sam-dev is an initiator (author of the pull request, author of commit ${second.slice(0, 7)}, committer of commit ${second.slice(0, 7)})`,
    );
    expect((await attempt('kim-qa')).reason).toBe(`kim-qa is an initiator (author of commit ${first.slice(0, 7)})`);
    expect((await attempt('pat-peer')).reason).toBe(
      `pat-peer is an initiator (committer of commit ${first.slice(0, 7)})`,
    );
    expect((await attempt('jo-platform')).reason).toBe(
      `jo-platform is an initiator (co-author of commit ${first.slice(0, 7)})`,
    );
    expect((await attempt('alex-reviewer')).reason).toBe(
      `alex-reviewer is an initiator (pusher of ${second.slice(0, 7)})`,
    );
    expect((await approve(stack, handle, claim(change, first, 'lee-ops'))).reason).toBe(
      `approval names ${first.slice(0, 7)} but the head is ${second.slice(0, 7)}`,
    );
    const ineligible = await attempt('lee-ops', { environment: 'production' });
    expect(ineligible.reason).toBe(
      'lee-ops is not eligible for production (eligible: alex-reviewer, jo-platform, kim-qa)',
    );
    expect(ineligible.counted).toBe(false);

    // lee may approve staging only: staging is delivered, production keeps waiting for an eligible non-initiator.
    expect(await attempt('lee-ops')).toMatchObject({ counted: true, environments: ['staging'] });
    const after = await waitForStatus(handle, (st) => st.environments[0]?.state === 'deployed' && awaiting(st));
    expect(after.waitingFor).toContain('for production');
    expect(after.approvals.filter((a) => !a.counted)).toHaveLength(7);
    expect(after.timeline.filter((t) => t.kind === 'approve-refused')).toHaveLength(7);
    await close(stack, handle);
    expect((await result(handle)).outcome).toBe('abandoned');
    await saveHistory(stack, handle, 'v2-refusals');
  });

  it('a push voids approvals; the same person twice is one approver; two distinct people deliver', async () => {
    const change = newChange('acme/dual');
    const first = sha();
    const handle = await openChange(stack, change, opened(first));
    await waitForStatus(handle, awaiting);
    expect((await approve(stack, handle, claim(change, first, 'alex-reviewer'))).counted).toBe(true);

    const second = sha();
    await push(stack, handle, pushed(first, second));
    const voided = await waitForStatus(handle, (s) => s.headSha === second && awaiting(s));
    expect(voided.approvals[0]).toMatchObject({ counted: true, voidReason: 'void: new commits pushed' });
    expect(voided.environments[0]?.approvedBy).toEqual([]);

    await approve(stack, handle, claim(change, second, 'alex-reviewer'));
    await approve(stack, handle, claim(change, second, 'alex-reviewer'));
    const once = await status(handle);
    expect(once.stage).toBe('awaiting-approval');
    expect(once.environments[0]?.approvedBy).toEqual(['alex-reviewer']);
    expect(once.waitingFor).toContain('by 1 more eligible person');

    await approve(stack, handle, claim(change, second, 'kim-qa'));
    await waitForStatus(handle, (s) => s.stage === 'delivered');
    expect(stack.calls.deploy.filter((d) => d.change === change).map((d) => d.sha)).toEqual([second]);
    await close(stack, handle);
    expect(await result(handle)).toMatchObject({ outcome: 'delivered', headSha: second });
    await saveHistory(stack, handle, 'v2-push-voids-two-approvers');
  });

  it('an approval expires after the configured time and no longer counts', async () => {
    const change = newChange('acme/quick');
    const head = sha();
    const handle = await openChange(stack, change, opened(head));
    await waitForStatus(handle, awaiting);
    await approve(stack, handle, claim(change, head, 'alex-reviewer'));
    const expired = await waitForStatus(handle, (s) => s.approvals[0]?.voidReason !== undefined, 10_000);
    expect(expired.approvals[0]?.voidReason).toMatch(/^void: expired/);
    expect(expired.environments[0]?.approvedBy).toEqual([]);
    // A fresh approval by another person alone is not enough: alex's expired one does not count.
    await approve(stack, handle, claim(change, head, 'kim-qa'));
    expect((await status(handle)).stage).toBe('awaiting-approval');
    await close(stack, handle);
    expect((await result(handle)).outcome).toBe('abandoned');
    await saveHistory(stack, handle, 'v2-expiry');
  });

  it('a rejection stops delivery until new commits, then an approval delivers', async () => {
    const change = newChange();
    const first = sha();
    const handle = await openChange(stack, change, opened(first));
    await waitForStatus(handle, awaiting);
    const rejected = await approve(
      stack,
      handle,
      claim(change, first, 'kim-qa', { decision: 'reject', comment: 'missing a test' }),
    );
    expect(rejected).toMatchObject({ counted: true, stage: 'rejected' });
    expect((await approve(stack, handle, claim(change, first, 'alex-reviewer'))).counted).toBe(true);
    const still = await status(handle);
    expect(still.stage).toBe('rejected');
    expect(still.waitingFor).toBe(`new commits: kim-qa requested changes to ${first.slice(0, 7)}`);

    const second = sha();
    await push(stack, handle, pushed(first, second));
    await waitForStatus(handle, (s) => s.headSha === second && awaiting(s));
    await approve(stack, handle, claim(change, second, 'alex-reviewer'));
    expect(await result(handle)).toMatchObject({ outcome: 'delivered', headSha: second });
    expect(stack.calls.deploy.filter((d) => d.change === change).every((d) => d.sha === second)).toBe(true);
    await saveHistory(stack, handle, 'v2-reject-then-approve');
  });

  it('failed checks wait for new commits; stale and duplicate deliveries change nothing', async () => {
    const change = newChange();
    const first = sha();
    stack.failingShas.add(first);
    const open = opened(first);
    const handle = await openChange(stack, change, open);
    await waitForStatus(handle, (s) => s.stage === 'checks-failed');
    const second = sha();
    const push2 = pushed(first, second);
    await push(stack, handle, push2);
    await waitForStatus(handle, (s) => s.headSha === second && awaiting(s));
    // The opened event again (duplicate) and an out-of-order event naming the superseded head.
    await deliverOnly(stack, handle, open);
    await deliverOnly(stack, handle, {
      ...opened(first),
      kind: 'synchronize',
      updatedAt: new Date(Date.now() - 60_000).toISOString(),
    });
    const s = await waitForStatus(handle, (st) => st.timeline.some((t) => t.kind === 'event-ignored'));
    expect(s.headSha).toBe(second);
    expect(s.stage).toBe('awaiting-approval');
    expect(s.checks?.passed).toBe(true);
    await close(stack, handle);
    await result(handle);
  });

  it('closed while waiting for approval: abandoned, nothing deployed', async () => {
    const change = newChange();
    const handle = await openChange(stack, change, opened(sha()));
    await waitForStatus(handle, awaiting);
    await close(stack, handle);
    expect((await result(handle)).outcome).toBe('abandoned');
    expect((await status(handle)).stage).toBe('abandoned');
    expect(stack.calls.deploy.some((d) => d.change === change)).toBe(false);
    await saveHistory(stack, handle, 'v2-closed-waiting');
  });

  it('closed mid-deploy: the deploy is cancelled and the leases are revoked', async () => {
    const change = newChange();
    stack.hangingDeploys.add(change);
    const head = sha();
    const handle = await openChange(stack, change, opened(head));
    await waitForStatus(handle, awaiting);
    await approve(stack, handle, claim(change, head, 'alex-reviewer'));
    await waitForStatus(handle, (s) => s.stage === 'deploying');
    await close(stack, handle);
    expect((await result(handle)).outcome).toBe('abandoned');
    expect(stack.calls.revoke).toContainEqual({ change, environment: 'staging' });
    const s = await status(handle);
    expect(s.timeline.map((t) => t.kind)).toEqual(expect.arrayContaining(['delivery-cancelled', 'closed']));
    await saveHistory(stack, handle, 'v2-closed-mid-deploy');
  });

  it('the workflow writes its own view at each decision: who initiated, whose approval counted, under which policy', async () => {
    const change = newChange();
    const head = sha();
    const handle = await openChange(stack, change, opened(head));
    await waitForStatus(handle, awaiting);
    expect((await approve(stack, handle, claim(change, head, 'sam-dev'))).counted).toBe(false);
    expect((await approve(stack, handle, claim(change, head, 'alex-reviewer'))).counted).toBe(true);
    expect(await result(handle)).toMatchObject({ outcome: 'delivered' });
    const described = await handle.describe();
    const view = described.memo?.foureyesAuditView as { at: string; initiators: object; counted: string[] };
    expect(view).toMatchObject({ at: 'gate', environment: 'production', counted: ['alex-reviewer'] });
    expect(Object.keys(view.initiators)).toEqual(['sam-dev']);
    await saveHistory(stack, handle, 'v2-audit-view');
  });

  for (const shape of ['result', 'thrown'] as const)
    it(`a deploy command that fails (${shape === 'result' ? 'returned as a result' : 'thrown, as older deploy zones did'}): its exit code and last output are in status`, async () => {
      const change = newChange();
      stack.failingDeploys.set(change, shape);
      const head = sha();
      const handle = await openChange(stack, change, opened(head));
      await waitForStatus(handle, awaiting);
      await approve(stack, handle, claim(change, head, 'alex-reviewer'));
      const failed = await waitForStatus(handle, (s) => s.stage === 'failed');
      const staging = failed.environments.find((e) => e.name === 'staging');
      expect(staging?.state).toBe('failed');
      expect(staging?.deploy).toMatchObject({ status: 'failed', exitCode: 3, durationMs: 1200 });
      expect(staging?.deploy?.outputTail).toContain('migration 0042_orders failed');
      expect(failed.waitingFor).toBe(
        `new commits: deploy of ${head.slice(0, 7)} to staging failed: the command exited with code 3 after 1.2 s; last output: applying migration 0042 ⏎ error: migration 0042_orders failed`,
      );
      // Nothing went further, the leases were revoked, and production was never tried.
      expect(stack.calls.deploy.filter((d) => d.change === change).map((d) => d.environment)).toEqual(['staging']);
      await close(stack, handle);
      expect((await result(handle)).outcome).toBe('abandoned');
      // The revoke runs after the stage says failed (in delivery's finally): by the end it has.
      expect(stack.calls.revoke).toContainEqual({ change, environment: 'staging' });
      await saveHistory(stack, handle, shape === 'result' ? 'v2-deploy-failed' : 'v2-deploy-failed-thrown');
    });

  it('a forged approval signalled straight to Temporal is refused and visible in status', async () => {
    const change = newChange();
    const head = sha();
    const handle = await openChange(stack, change, opened(head));
    await waitForStatus(handle, awaiting);
    const forged = signClaim(claim(change, head, 'alex-reviewer'), generateSigningKey());
    await handle.signal(approvalSignal, forged);
    await handle.signal(approvalSignal, { claim: { person: 'jo-platform' }, signature: 'nonsense' } as never);
    const s = await waitForStatus(handle, (st) => st.approvals.length === 2);
    expect(s.approvals.map((a) => [a.claim.person, a.counted, a.reason.startsWith('the signature')])).toEqual([
      ['alex-reviewer', false, true],
      ['jo-platform', false, true],
    ]);
    expect(s.stage).toBe('awaiting-approval');
    // The forged claim's nonce was not burnt: the real gateway's claim with it still counts.
    expect((await approve(stack, handle, { ...forged.claim })).counted).toBe(true);
    await result(handle);
    await saveHistory(stack, handle, 'v2-forged');
  });

  it('continues as new when the history grows and keeps the whole record', { timeout: 40_000 }, async () => {
    const change = newChange('acme/dual');
    let head = sha();
    const handle = await openChange(stack, change, opened(head), { historyEventLimit: 40 });
    await waitForStatus(handle, awaiting);
    for (let i = 0; i < 4; i++) {
      await approve(stack, handle, claim(change, head, 'sam-dev'));
      const next = sha();
      await push(stack, handle, pushed(head, next));
      head = next;
      await waitForStatus(handle, (s) => s.headSha === head && awaiting(s));
    }
    const s = await waitForStatus(handle, (st) => st.runIds.length >= 2 && awaiting(st));
    expect(s.approvals).toHaveLength(4);
    expect(s.approvals.every((a) => a.reason.startsWith('sam-dev is an initiator'))).toBe(true);
    expect(s.timeline.some((t) => t.kind === 'continued-as-new')).toBe(true);
    expect(s.initiators).toEqual(['sam-dev']);
    await approve(stack, handle, claim(change, head, 'alex-reviewer'));
    await approve(stack, handle, claim(change, head, 'kim-qa'));
    await waitForStatus(handle, (st) => st.stage === 'delivered');
    await close(stack, handle);
    expect(await result(handle)).toMatchObject({ outcome: 'delivered', headSha: head });
    await saveHistory(stack, handle, 'v2-continue-as-new');
  });
});
