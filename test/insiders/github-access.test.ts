// Insiders with ordinary GitHub access — they can push, close, reopen and retarget pull requests, write
// commits under any e-mail — and trusted configuration that changes while changes wait: each way around the
// approval gate, end to end over the real gateway, orchestrator and checks zones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import { neverDeployed, startInsiderStack, type InsiderStack } from './harness.ts';

let stack: InsiderStack;
beforeAll(async () => {
  stack = await startInsiderStack('insider-github');
});
afterAll(async () => {
  await stack?.stop();
});

const awaiting = (s: { stage: string }) => s.stage === 'awaiting-approval';

describe('an insider with GitHub access', () => {
  it('pushed to the branch, was refused as a pusher, closed and reopened the pull request: still refused', async () => {
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Close and reopen',
      commits: [{ message: 'one' }],
    });
    const number = opened.pull.number;
    // alex pushes a commit written by sam (alex only pushed it).
    const pushed = await stack.github.standin.pushCommits({
      repo: 'acme/shop',
      number,
      pusher: 'alex-reviewer',
      commits: [{ message: 'two', author: 'sam-dev' }],
    });
    const head = pushed.pull.headSha;
    await stack.until(number, 'the pushed head awaiting approval', (s) => s.headSha === head && awaiting(s));
    expect((await stack.approveApi('alex-reviewer', number, { sha: head })).json).toMatchObject({
      counted: false,
      reason: expect.stringMatching(/alex-reviewer is an initiator \(pusher of/),
    });

    await stack.github.standin.closePullRequest({ repo: 'acme/shop', number, by: 'alex-reviewer' });
    const first = await stack.client.workflow.getHandle(`change:acme/shop#${number}`).describe();
    await stack.client.workflow.getHandle(`change:acme/shop#${number}`, first.runId).result();
    await stack.github.standin.reopenPullRequest({ repo: 'acme/shop', number, by: 'alex-reviewer' });
    const reopened = await stack.until(
      number,
      'the reopened change awaiting approval',
      (s) => s.runIds.length >= 2 && s.headSha === head && awaiting(s),
    );
    expect(reopened.runIds).toContain(first.runId);
    expect(reopened.initiators).toEqual(expect.arrayContaining(['alex-reviewer', 'sam-dev']));

    const again = await stack.approveApi('alex-reviewer', number, { sha: head });
    expect(again.json).toMatchObject({
      counted: false,
      reason: expect.stringMatching(/alex-reviewer is an initiator \(.*pusher of/),
    });
    // Every attempt of every run is on record.
    const s = await stack.statusOf(number);
    expect(s?.approvals.filter((a) => a.claim.person === 'alex-reviewer').map((a) => a.counted)).toEqual([
      false,
      false,
    ]);
    await neverDeployed(stack, head);
  });

  it('a pull request into another branch, which carries an unreviewed commit, cannot be approved; retargeting it voids approvals and re-reads its commits', async () => {
    // alex pushes a commit straight to a release branch: nobody reviewed it.
    await stack.github.standin.pushBranch({
      repo: 'acme/shop',
      branch: 'release',
      pusher: 'alex-reviewer',
      commits: [{ message: 'unreviewed', author: 'alex-reviewer' }],
    });
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Into release',
      base: 'release',
      commits: [{ message: 'on top' }],
    });
    const number = opened.pull.number;
    const head = opened.pull.headSha;
    const waiting = await stack.until(
      number,
      'waiting for the base',
      (s) => s.headSha === head && /targets release/.test(s.waitingFor),
    );
    expect(waiting.waitingFor).toMatch(
      /the pull request targets release, not main; foureyes delivers only pull requests into main: change its base to main/,
    );
    const attempt = await stack.approveApi('alex-reviewer', number, { sha: head });
    expect(attempt.json).toMatchObject({ counted: false, reason: expect.stringMatching(/targets release, not main/) });

    // Retargeted to main: the pull request now holds alex's commit too, so alex is an initiator.
    await stack.github.standin.retargetPullRequest({ repo: 'acme/shop', number, base: 'main', by: 'sam-dev' });
    const retargeted = await stack.until(
      number,
      'the retargeted change awaiting approval',
      (s) => awaiting(s) && s.initiators.includes('alex-reviewer'),
    );
    expect(retargeted.timeline.some((t) => t.kind === 'base-changed')).toBe(true);
    expect((await stack.approveApi('alex-reviewer', number, { sha: head })).json).toMatchObject({
      counted: false,
      reason: expect.stringMatching(/alex-reviewer is an initiator \(author of commit/),
    });
    await neverDeployed(stack, head);
  });

  it('retargeting after approval voids it, even to a branch with no new commits, and the base is confirmed again before each deploy', async () => {
    await stack.github.standin.pushBranch({ repo: 'acme/shop', branch: 'hotfix', pusher: 'jo-platform', commits: [] });
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Retarget after approval',
      commits: [{ message: 'x' }],
    });
    const number = opened.pull.number;
    const head = opened.pull.headSha;
    await stack.until(number, 'awaiting approval', (s) => awaiting(s) && s.headSha === head);
    // Approval held back from counting until we retarget: production needs jo, staging alex; retarget in between.
    await stack.github.standin.retargetPullRequest({
      repo: 'acme/shop',
      number,
      base: 'hotfix',
      by: 'sam-dev',
      deliver: false,
    });
    const approved = await stack.approveApi('alex-reviewer', number, { sha: head });
    expect(approved.json).toMatchObject({ counted: true });
    // GitHub now says the base is hotfix; the webhook has not arrived: the confirmation before the deploy finds it.
    const s = await stack.until(number, 'the confirmation refusing the deploy', (x) =>
      /targets hotfix/.test(x.waitingFor),
    );
    expect(s.approvals.find((a) => a.claim.person === 'alex-reviewer')?.voidReason).toMatch(/base/);
    await neverDeployed(stack, head);
  });

  it(
    'hides a commit past the 250 GitHub lists: the head cannot be approved, and the reason says so',
    { timeout: 120_000 },
    async () => {
      const commits = Array.from({ length: 250 }, (_, i) => ({ message: `step ${i}`, files: {} }));
      // alex's commit is the 251st: GitHub's list stops before it.
      const opened = await stack.github.standin.openPullRequest({
        repo: 'acme/shop',
        author: 'sam-dev',
        title: 'Long history',
        commits: [...commits, { message: 'hidden', author: 'alex-reviewer' }],
      });
      const number = opened.pull.number;
      const head = opened.pull.headSha;
      const waiting = await stack.until(
        number,
        'the truncation on record',
        (s) => s.headSha === head && /251 commits/.test(s.waitingFor),
        90_000,
      );
      expect(waiting.waitingFor).toMatch(/GitHub lists only 250 of its 251 commits/);
      const attempt = await stack.approveApi('alex-reviewer', number, { sha: head });
      expect(attempt.json).toMatchObject({
        counted: false,
        reason: expect.stringMatching(/only 250 of its 251 commits/),
      });
      await neverDeployed(stack, head, 1000);
    },
  );

  it('an approval must name the commit the person saw: the API answers 400 without sha', async () => {
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'No sha',
      commits: [{ message: 'one' }],
    });
    const number = opened.pull.number;
    await stack.until(number, 'awaiting approval', (s) => awaiting(s));
    // sam pushes after alex looked; alex's approval names no commit.
    const pushed = await stack.github.standin.pushCommits({
      repo: 'acme/shop',
      number,
      pusher: 'sam-dev',
      commits: [{ message: 'sneaky' }],
    });
    await stack.until(number, 'the new head', (s) => s.headSha === pushed.pull.headSha && awaiting(s));
    const attempt = await stack.approveApi('alex-reviewer', number, {});
    expect(attempt.status).toBe(400);
    expect(attempt.json.error).toMatch(/missing field sha: name the commit you reviewed/);
    expect((await stack.statusOf(number))?.approvals).toEqual([]);
    await neverDeployed(stack, pushed.pull.headSha, 500);
  });

  it('a commit by an e-mail foureyes cannot match to anyone makes the head unapprovable, saying what to add', async () => {
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Ghost-written',
      commits: [{ message: 'by a laptop identity', author: { name: 'Alex Laptop', email: 'alex@laptop.local' } }],
    });
    const number = opened.pull.number;
    const head = opened.pull.headSha;
    const waiting = await stack.until(
      number,
      'the unknown identity on record',
      (s) => s.headSha === head && /unknown identity/.test(s.waitingFor),
    );
    expect(waiting.waitingFor).toMatch(
      /unknown identity alex@laptop\.local in commit [0-9a-f]{7}: add alex@laptop\.local to the emails of the person it belongs to under people in foureyes\.yaml/,
    );
    expect(waiting.initiators).toContain('email:alex@laptop.local');
    const attempt = await stack.approveApi('alex-reviewer', number, { sha: head });
    expect(attempt.json).toMatchObject({
      counted: false,
      reason: expect.stringMatching(/unknown identity alex@laptop\.local/),
    });
    await neverDeployed(stack, head, 1000);
  });
});

describe('trusted configuration that changes while a change waits', () => {
  it('someone removed from the eligible people: their approval no longer opens the gate', async () => {
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Eligibility removed',
      commits: [{ message: 'one' }],
    });
    const number = opened.pull.number;
    const head = opened.pull.headSha;
    await stack.until(number, 'awaiting approval', (s) => awaiting(s) && s.headSha === head);
    // An administrator removes alex from staging's eligible people (jo stays); the orchestrator reloads.
    const staging = stack.config.environments.find((e) => e.name === 'staging')!;
    const before = staging.approval.eligible;
    staging.approval.eligible = ['jo-platform'];
    try {
      const attempt = await stack.approveApi('alex-reviewer', number, { sha: head, environment: 'staging' });
      // Decided against the policy in force: refused at once, or voided before the gate opens.
      const s = await stack.until(
        number,
        'the decision',
        (x) => x.approvals.length >= 1 && (x.approvals[0]!.counted === false || x.approvals[0]!.voidedAt !== undefined),
      );
      expect([attempt.json.reason, s.approvals[0]!.voidReason].join(' ')).toMatch(
        /alex-reviewer is not eligible for staging/,
      );
      await neverDeployed(stack, head);
    } finally {
      staging.approval.eligible = before;
    }
  });

  it('a revoked gateway key: approvals it signed stop counting before anything deploys', async () => {
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Key revoked',
      commits: [{ message: 'one' }],
    });
    const number = opened.pull.number;
    const head = opened.pull.headSha;
    await stack.until(number, 'awaiting approval', (s) => awaiting(s) && s.headSha === head);
    // The gateway's key leaked: operators rotate it. The orchestrator trusts only the new key from now on,
    // and an approval signed with the leaked key arrives.
    const fresh = generateSigningKey();
    await stack.restartOrchestrator({ FOUREYES_APPROVAL_PUBLIC_KEYS: fresh.publicKey });
    const attempt = await stack.approveApi('alex-reviewer', number, { sha: head });
    const s = await stack.until(
      number,
      'the decision',
      (x) => x.approvals.length >= 1 && (x.approvals[0]!.counted === false || x.approvals[0]!.voidedAt !== undefined),
    );
    expect([attempt.json.reason, s.approvals[0]!.voidReason].join(' ')).toMatch(
      /not from a trusted gateway key|the gateway key that signed it is no longer trusted/,
    );
    await neverDeployed(stack, head);
  });
});
