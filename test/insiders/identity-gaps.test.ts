// Who wrote a commit comes from its author/committer/co-author identities and from whoever the push event
// names. Git lets anyone write any identity, and GitHub links an e-mail to its owner's login, so an approver
// who writes a commit under the developer's configured e-mail is visible only as its pusher. Two gaps:
// - a push made by a bot (GitHub Actions, an App — a workflow any collaborator can trigger) names the bot,
//   which is no person, yet the head stays approvable: the approver approves their own commit;
// - `<id>+<login>@users.noreply.github.com` for a login nobody configured resolves to that login, so it is
//   not an "unknown identity" although, like any unmatched e-mail, it could be anyone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unknownIdentities } from '../../src/policy/sod.ts';
import { neverDeployed, startInsiderStack, type InsiderStack } from './harness.ts';

let stack: InsiderStack;
beforeAll(async () => {
  stack = await startInsiderStack('insider-identity');
  stack.github.standin.addUser({ login: 'ci-bot', type: 'Bot' });
});
afterAll(async () => {
  await stack?.stop();
});

const awaiting = (s: { stage: string }) => s.stage === 'awaiting-approval';

describe('identities foureyes cannot see', () => {
  it('an approver’s commit written under the developer’s e-mail and pushed by a bot cannot be approved by that approver', async () => {
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Bot-pushed',
      commits: [{ message: 'sam’s work' }],
    });
    const number = opened.pull.number;
    // alex writes this commit (as sam@example.com) and has a CI job push it to sam's branch.
    const pushed = await stack.github.standin.pushCommits({
      repo: 'acme/shop',
      number,
      pusher: 'ci-bot',
      commits: [{ message: 'alex’s backdoor', author: { email: 'sam@example.com', name: 'Sam' } }],
    });
    const head = pushed.pull.headSha;
    const waiting = await stack.until(
      number,
      'the bot-pushed head awaiting approval',
      (s) => s.headSha === head && awaiting(s),
    );
    expect(waiting.initiators).not.toContain('alex-reviewer');

    const attempt = await stack.approveApi('alex-reviewer', number, { sha: head });
    // What should hold: a head whose last push no configured person made cannot be approved.
    expect(attempt.json).toMatchObject({ counted: false });
    await neverDeployed(stack, head);
  });

  it('a noreply address of a login nobody configured is an unknown identity', () => {
    // For heads read under the head-evidence rules (HEAD_EVIDENCE_PATCH): GitHub did not link the address (no login).
    const found = unknownIdentities(
      [{ github: 'sam-dev', emails: ['sam@example.com'] }],
      [
        {
          sha: 'a'.repeat(40),
          author: { email: '4242+ghost-writer@users.noreply.github.com', name: 'Ghost' },
          committer: { email: 'sam@example.com' },
          message: 'x',
        },
      ],
      { sha: 'a'.repeat(40), identityRules: 2 },
    );
    expect(found.map((u) => u.identity)).toContain('4242+ghost-writer@users.noreply.github.com');
  });
});
