// POST /webhooks/github end to end over real HTTP: the GitHub stand-in signs and sends its webhooks to the
// gateway (in this process, on a real port); the real changeWorkflow runs on the shared Temporal dev server
// with the real orchestrator zone (GitHub App credentials of the stand-in) and the real checks zone; the
// deploy zone is a double (its own tests use OpenBao). What the change did is read back through the
// gateway's status endpoint and the stand-in's REST state.
import type { Client } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitHubStandin, type RunningStandin } from '../../src/dev/github-standin/index.ts';
import type { ChangeStatus, DeployInput } from '../../src/shared/types.ts';
import { deployZoneDouble, startGatewayStack, threePeopleConfig, type GatewayStack } from '../helpers/gateway-stack.ts';

const SECRET = randomBytes(20).toString('hex');
let stack: GatewayStack;
let github: RunningStandin;
let gatewayUrl: string;
let client: Client;
const changes: string[] = [];

function configYaml(remote: string): string {
  return threePeopleConfig(remote, { repository: ['policyOwners: [jo-platform]', 'merge: true'] });
}

/** The deploy zone's double: records what it was asked to do. */
const deployed: DeployInput[] = [];
const deployDouble = deployZoneDouble(deployed);

beforeAll(async () => {
  const app: { appId?: number; privateKey?: string } = {};
  const appEnv = (s: GatewayStack) => {
    if (app.appId === undefined) Object.assign(app, s.github.standin.addApp({ slug: 'foureyes' }));
    return { GITHUB_APP_ID: String(app.appId), GITHUB_PRIVATE_KEY: app.privateKey as string };
  };
  stack = await startGatewayStack({
    name: 'webhook',
    configYaml,
    users: ['sam-dev', 'alex-reviewer', 'jo-platform'],
    repoFiles: { 'README.md': 'shop\n', 'deploy/prod.sh': 'echo deploy\n' },
    otherRepos: ['other/repo'],
    gatewayEnv: (s) => ({ GITHUB_WEBHOOK_SECRET: SECRET, ...appEnv(s) }),
    orchestratorEnv: appEnv,
    deployActivities: deployDouble,
  });
  ({ github, gatewayUrl, client } = stack);
  github.standin.setWebhook(`${gatewayUrl}/webhooks/github`, SECRET);
});

afterAll(async () => {
  await Promise.all(
    changes.map((c) =>
      client?.workflow
        .getHandle(`change:${c}`)
        .terminate('test over')
        .catch(() => undefined),
    ),
  );
  await stack?.stop();
});

async function post(
  body: string,
  headers: Record<string, string>,
  url = `${gatewayUrl}/webhooks/github`,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function signed(body: string, event: string, deliveryId: string = crypto.randomUUID()): Record<string, string> {
  return {
    'x-github-event': event,
    'x-github-delivery': deliveryId,
    'x-hub-signature-256': GitHubStandin.sign(body, SECRET),
  };
}

async function status(number: number): Promise<ChangeStatus | undefined> {
  const res = await fetch(`${gatewayUrl}/api/changes/acme/shop/${number}`, {
    headers: { authorization: `Bearer ${stack.tokens['jo-platform']}` },
  });
  if (res.status === 404) return undefined;
  expect(res.status).toBe(200);
  return (await res.json()) as ChangeStatus;
}

async function until(
  number: number,
  what: string,
  ok: (s: ChangeStatus) => boolean,
  timeoutMs = 60_000,
): Promise<ChangeStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ChangeStatus | undefined;
  while (Date.now() < deadline) {
    last = await status(number);
    if (last && ok(last)) return last;
    await sleep(200);
  }
  throw new Error(
    `timed out waiting for ${what}; last status: ${JSON.stringify(last && { stage: last.stage, waitingFor: last.waitingFor, timeline: last.timeline.slice(-5) })}`,
  );
}

describe('POST /webhooks/github', () => {
  it('refuses unsigned and badly signed deliveries (401) and starts nothing', async () => {
    const { pull, delivery } = await github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'unsigned',
      commits: [{ message: 'x' }],
      deliver: false,
    });
    changes.push(`acme/shop#${pull.number}`);
    const headers = { 'x-github-event': 'pull_request', 'x-github-delivery': delivery.id };
    expect((await post(delivery.body, headers)).status).toBe(401);
    const bad = await post(delivery.body, {
      ...headers,
      'x-hub-signature-256': GitHubStandin.sign(delivery.body, 'wrong-secret'),
    });
    expect(bad.status).toBe(401);
    expect(bad.json.error).toMatch(/X-Hub-Signature-256/);
    expect(JSON.stringify(bad.json)).not.toContain(SECRET);
    // A body altered after signing fails too.
    const tampered = await post(delivery.body.replace('unsigned', 'unsigneD'), {
      ...headers,
      'x-hub-signature-256': GitHubStandin.sign(delivery.body, SECRET),
    });
    expect(tampered.status).toBe(401);
    await expect(client.workflow.getHandle(`change:acme/shop#${pull.number}`).describe()).rejects.toThrow(/not found/i);
  });

  it('answers bad input with a clear 4xx and unknown events with 202 ignored', async () => {
    const malformed = '{"action": "opened", ';
    expect(await post(malformed, signed(malformed, 'pull_request'))).toMatchObject({
      status: 400,
      json: { error: expect.stringMatching(/malformed JSON/) },
    });
    const wrongShape = JSON.stringify({ action: 'opened', pull_request: { number: 'x' } });
    expect(await post(wrongShape, signed(wrongShape, 'pull_request'))).toMatchObject({
      status: 400,
      json: { error: expect.stringMatching(/malformed pull_request payload/) },
    });
    const issue = JSON.stringify({ action: 'opened', issue: {} });
    expect(await post(issue, signed(issue, 'issues'))).toMatchObject({
      status: 202,
      json: { ignored: expect.stringMatching(/issues/) },
    });
    const labeled = JSON.stringify({ action: 'labeled' });
    expect(await post(labeled, signed(labeled, 'pull_request'))).toMatchObject({
      status: 202,
      json: { ignored: expect.stringMatching(/labeled/) },
    });
    const big = JSON.stringify({ pad: 'x'.repeat(6 * 1024 * 1024) });
    expect((await post(big, signed(big, 'pull_request'))).status).toBe(413);

    const { pull, delivery } = await github.standin.openPullRequest({
      repo: 'other/repo',
      author: 'sam-dev',
      title: 'elsewhere',
      commits: [{ message: 'x' }],
      deliver: false,
    });
    const other = await post(delivery.body, signed(delivery.body, 'pull_request', delivery.id));
    expect(other).toMatchObject({
      status: 422,
      json: { error: expect.stringMatching(/other\/repo is not configured/) },
    });
    await expect(client.workflow.getHandle(`change:other/repo#${pull.number}`).describe()).rejects.toThrow(
      /not found/i,
    );
  });

  it('signed webhook in -> change delivered: check runs, deployments, one comment, merge; a duplicate delivery has one effect', async () => {
    const opened = await github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Speed up checkout',
      commits: [{ message: 'faster checkout' }],
    });
    const number = opened.pull.number;
    changes.push(`acme/shop#${number}`);
    expect(opened.status).toBe(202);
    const waiting = await until(number, 'awaiting approval', (s) => s.stage === 'awaiting-approval');
    expect(waiting.initiators).toContain('sam-dev');

    // The same delivery again: answered as a duplicate by this gateway, and ignored by the workflow when a
    // restarted gateway (no memory) forwards it.
    const eventsBefore = waiting.timeline.length;
    expect(await github.standin.sendDelivery(opened.delivery.id)).toBe(202);
    const restarted = await stack.startGateway();
    try {
      const again = await post(
        opened.delivery.body,
        signed(opened.delivery.body, 'pull_request', opened.delivery.id),
        `http://127.0.0.1:${(restarted.address() as AddressInfo).port}/webhooks/github`,
      );
      expect(again.status).toBe(202);
    } finally {
      restarted.closeAllConnections();
      restarted.close();
    }
    await sleep(500);
    expect((await status(number))!.timeline.length).toBe(eventsBefore);

    const review = await github.standin.submitReview({
      repo: 'acme/shop',
      number,
      reviewer: 'alex-reviewer',
      event: 'APPROVE',
    });
    expect(review.status).toBe(202);
    const done = await until(
      number,
      'delivered',
      (s) => s.stage === 'delivered' && github.standin.requirePull('acme/shop', number).merged,
    );
    expect(
      done.approvals.filter((a) => a.counted).map((a) => [a.claim.person, a.claim.channel, a.claim.evidence.reviewId]),
    ).toEqual([['alex-reviewer', 'github', String(review.review.id)]]);
    expect(deployed.filter((d) => d.sha === opened.pull.headSha).map((d) => d.environment)).toEqual([
      'staging',
      'production',
    ]);

    // What GitHub shows, once the reporter caught up.
    const head = opened.pull.headSha;
    const deadline = Date.now() + 30_000;
    const runs = () =>
      github.standin.state.checkRuns.filter((r) => r.headSha === head).map((r) => [r.name, r.conclusion]);
    const expectedRuns = [
      ['foureyes / checks', 'success'],
      ['foureyes / approval', 'success'],
      ['foureyes / staging', 'success'],
      ['foureyes / production', 'success'],
    ];
    const comments = () => github.standin.state.comments.filter((c) => c.issue === number);
    while (
      (JSON.stringify(runs()) !== JSON.stringify(expectedRuns) ||
        !comments()[0]?.body.includes('foureyes: delivered')) &&
      Date.now() < deadline
    )
      await sleep(200);
    expect(runs()).toEqual(expectedRuns);
    const deployments = github.standin.state.deployments.filter((d) => d.sha === head);
    expect(deployments.map((d) => d.environment)).toEqual(['staging', 'production']);
    for (const d of deployments)
      expect(github.standin.state.deploymentStatuses.filter((s) => s.deploymentId === d.id).at(-1)?.state).toBe(
        'success',
      );
    expect(comments()).toHaveLength(1);
    expect(comments()[0]!.user).toBe('foureyes[bot]');
    expect(comments()[0]!.body).toMatch(/foureyes: delivered/);
    expect(github.standin.requirePull('acme/shop', number).mergedBy).toBe('foureyes[bot]');
  });

  it('a synchronize delivered before its opened event: the newest head wins, the pusher is an initiator; a review of an older commit is refused', async () => {
    const opened = await github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Out of order',
      commits: [{ message: 'first' }],
      deliver: false,
    });
    const number = opened.pull.number;
    const firstHead = opened.pull.headSha;
    changes.push(`acme/shop#${number}`);
    const pushed = await github.standin.pushCommits({
      repo: 'acme/shop',
      number,
      pusher: 'jo-platform',
      commits: [{ message: 'second', author: 'jo-platform' }],
      deliver: false,
    });
    expect(await github.standin.sendDelivery(pushed.delivery.id)).toBe(202);
    expect(await github.standin.sendDelivery(opened.delivery.id)).toBe(202);
    const s = await until(number, 'awaiting approval', (x) => x.stage === 'awaiting-approval');
    expect(s.headSha).toBe(pushed.pull.headSha);
    expect(s.author).toBe('sam-dev');
    expect(s.initiators).toEqual(expect.arrayContaining(['sam-dev', 'jo-platform']));

    const stale = await github.standin.submitReview({
      repo: 'acme/shop',
      number,
      reviewer: 'alex-reviewer',
      event: 'APPROVE',
      commitId: firstHead,
    });
    expect(stale.status).toBe(202);
    const after = await until(number, 'the refusal', (x) => x.approvals.length > 0);
    expect(after.approvals[0]).toMatchObject({
      counted: false,
      reason: expect.stringMatching(/approval names .* but the head is/),
    });
    expect(after.stage).toBe('awaiting-approval');
  });

  it('a pull request that edits the policy is flagged; a dismissed review voids the approval', async () => {
    const opened = await github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Deploy faster',
      commits: [{ message: 'edit deploy', files: { 'deploy/prod.sh': 'echo faster\n' } }],
    });
    const number = opened.pull.number;
    changes.push(`acme/shop#${number}`);
    const s = await until(number, 'awaiting approval', (x) => x.stage === 'awaiting-approval');
    expect(s.policyChange).toBe(true);

    const review = await github.standin.submitReview({
      repo: 'acme/shop',
      number,
      reviewer: 'alex-reviewer',
      event: 'APPROVE',
    });
    const approved = await until(number, 'the approval', (x) => x.approvals.some((a) => a.counted));
    expect(approved.stage).toBe('awaiting-approval');
    expect(approved.waitingFor).toMatch(/policy owner/);

    await github.standin.dismissReview({
      repo: 'acme/shop',
      number,
      reviewId: review.review.id,
      by: 'jo-platform',
      message: 'not yet',
    });
    const dismissed = await until(number, 'the dismissal', (x) => x.approvals.some((a) => a.voidedAt !== undefined));
    expect(dismissed.approvals.find((a) => a.claim.decision === 'approve')).toMatchObject({
      voidReason: expect.stringMatching(/dismissed/),
    });
    expect(dismissed.environments.every((e) => e.approvedBy.length === 0)).toBe(true);
    expect(deployed.some((d) => d.sha === opened.pull.headSha)).toBe(false);
  });
});

describe('POST /webhooks/github: commits looked up by the orchestrator, after the acknowledgement', () => {
  /** The stand-in's answers to the commits and files look-ups of one pull request. */
  const lookUps = (number: number) =>
    github.server.requests.filter(
      (r) =>
        r.path === `/repos/acme/shop/pulls/${number}/commits` || r.path === `/repos/acme/shop/pulls/${number}/files`,
    );
  /** Holds (or fails) the look-ups of one pull request in the stand-in. */
  const holdLookUps = (number: number, fault: { delayMs?: number; status?: number; remaining: number }) => {
    const id = github.standin.nextId();
    github.standin.state.faults.push({
      id,
      path: `^/repos/acme/shop/pulls/${number}/(commits|files)$`,
      status: fault.status ?? 0,
      ...(fault.delayMs ? { delayMs: fault.delayMs } : {}),
      remaining: fault.remaining,
    });
    return () => void (github.standin.state.faults = github.standin.state.faults.filter((f) => f.id !== id));
  };

  it('answers 202 before any look-up; a commit author the webhook does not name becomes an initiator, and cannot approve the head meanwhile either', async () => {
    const opened = await github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Ghost-written',
      commits: [{ message: 'written by alex', author: 'alex-reviewer' }],
      deliver: false,
    });
    const number = opened.pull.number;
    const head = opened.pull.headSha;
    changes.push(`acme/shop#${number}`);
    // The look-ups answer 2 s late: a gateway that made them before answering would answer after them.
    const release = holdLookUps(number, { delayMs: 2000, remaining: 2 });
    try {
      expect(await github.standin.sendDelivery(opened.delivery.id)).toBe(202);
      const answeredAt = Date.now();
      expect(lookUps(number).filter((r) => r.answeredAt <= answeredAt)).toEqual([]);
      // While the orchestrator looks the commits up, the head is not current: alex's approval of it is refused.
      const early = await github.standin.submitReview({
        repo: 'acme/shop',
        number,
        reviewer: 'alex-reviewer',
        event: 'APPROVE',
        commitId: head,
      });
      expect(early.status).toBe(202);
      const waiting = await until(
        number,
        'awaiting approval',
        (s) => s.stage === 'awaiting-approval' && s.approvals.length >= 1,
      );
      expect(waiting.headSha).toBe(head);
      expect(waiting.initiators).toEqual(expect.arrayContaining(['sam-dev', 'alex-reviewer']));
      expect(waiting.approvals.map((a) => a.counted)).toEqual([false]);
      expect(waiting.approvals[0]!.reason).toMatch(
        /was just pushed and its commits are being read from GitHub: approve again in a moment|approval names .* but the head is|alex-reviewer is an initiator/,
      );
      // The orchestrator made the look-ups, after the answer.
      expect(
        lookUps(number)
          .map((r) => r.path.split('/').at(-1))
          .sort(),
      ).toEqual(['commits', 'files']);
      expect(lookUps(number).every((r) => r.answeredAt > answeredAt)).toBe(true);
    } finally {
      release();
    }
    // Once the head is current, alex is refused as an initiator.
    await github.standin.submitReview({
      repo: 'acme/shop',
      number,
      reviewer: 'alex-reviewer',
      event: 'APPROVE',
      commitId: head,
    });
    const refused = await until(number, 'the second refusal', (s) => s.approvals.length >= 2);
    expect(refused.approvals[1]).toMatchObject({
      counted: false,
      reason: expect.stringMatching(/alex-reviewer is an initiator \(.*author of commit/),
    });
    expect(refused.stage).toBe('awaiting-approval');
    expect(deployed.some((d) => d.sha === head)).toBe(false);
  });

  it('a push voids the head as soon as it is acknowledged: an approval of the old head while its commits are read is refused and nothing of it deploys', async () => {
    const opened = await github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Pushed under review',
      commits: [{ message: 'one' }],
    });
    const number = opened.pull.number;
    const oldHead = opened.pull.headSha;
    changes.push(`acme/shop#${number}`);
    await until(number, 'awaiting approval', (s) => s.stage === 'awaiting-approval' && s.headSha === oldHead);
    const pushed = await github.standin.pushCommits({
      repo: 'acme/shop',
      number,
      pusher: 'sam-dev',
      commits: [{ message: 'two' }],
      deliver: false,
    });
    const newHead = pushed.pull.headSha;
    // The look-up of the push answers 3 s late; alex approves the old head in the meantime.
    const release = holdLookUps(number, { delayMs: 3000, remaining: 2 });
    try {
      expect(await github.standin.sendDelivery(pushed.delivery.id)).toBe(202);
      expect(
        (
          await github.standin.submitReview({
            repo: 'acme/shop',
            number,
            reviewer: 'alex-reviewer',
            event: 'APPROVE',
            commitId: oldHead,
          })
        ).status,
      ).toBe(202);
      const refused = await until(number, 'the approval decided', (s) => s.approvals.length >= 1);
      expect(refused.headSha).toBe(oldHead);
      expect(refused.approvals[0]).toMatchObject({
        counted: false,
        reason: expect.stringMatching(
          new RegExp(
            `${newHead.slice(0, 7)}.* was just pushed and its commits are being read from GitHub: ${oldHead.slice(0, 7)}.* is no longer the head`,
          ),
        ),
      });
    } finally {
      release();
    }
    const moved = await until(
      number,
      'the new head awaiting approval',
      (s) => s.headSha === newHead && s.stage === 'awaiting-approval',
    );
    expect(moved.approvals.filter((a) => a.counted)).toEqual([]);
    expect(deployed.some((d) => d.sha === oldHead)).toBe(false);
  });

  it('two synchronize events in quick succession are applied in arrival order; a redelivery is a no-op that looks nothing up', async () => {
    const opened = await github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Two pushes',
      commits: [{ message: 'one' }],
    });
    const number = opened.pull.number;
    changes.push(`acme/shop#${number}`);
    await until(number, 'awaiting approval', (s) => s.stage === 'awaiting-approval');
    const first = await github.standin.pushCommits({
      repo: 'acme/shop',
      number,
      pusher: 'sam-dev',
      commits: [{ message: 'two' }],
      deliver: false,
    });
    const firstHead = first.pull.headSha;
    const second = await github.standin.pushCommits({
      repo: 'acme/shop',
      number,
      pusher: 'jo-platform',
      commits: [{ message: 'three', author: 'jo-platform' }],
      deliver: false,
    });
    const secondHead = second.pull.headSha;
    expect(secondHead).not.toBe(firstHead);
    // The first look-up is slow, so the second event arrives while it runs.
    const release = holdLookUps(number, { delayMs: 1000, remaining: 2 });
    try {
      expect(await github.standin.sendDelivery(first.delivery.id)).toBe(202);
      expect(await github.standin.sendDelivery(second.delivery.id)).toBe(202);
      const s = await until(
        number,
        'the second head awaiting approval',
        (x) => x.headSha === secondHead && x.stage === 'awaiting-approval',
      );
      // GitHub decides the head: when the first event's look-up runs, GitHub already shows the second push, so
      // the first moves nothing; both pushers took part all the same.
      expect(s.timeline.filter((e) => e.kind === 'pushed').map((e) => e.sha)).toEqual([secondHead]);
      expect(s.timeline.filter((e) => e.kind === 'event-ignored').map((e) => e.sha)).toEqual([firstHead]);
      expect(s.initiators).toEqual(expect.arrayContaining(['sam-dev', 'jo-platform']));
    } finally {
      release();
    }

    // Redelivered: to this gateway (which remembers it) and to a restarted one (which does not): no effect,
    // and no look-up either.
    await sleep(500);
    const before = await status(number);
    const lookedUp = lookUps(number).length;
    expect(await github.standin.sendDelivery(second.delivery.id)).toBe(202);
    const restarted = await stack.startGateway();
    try {
      const url = `http://127.0.0.1:${(restarted.address() as AddressInfo).port}/webhooks/github`;
      for (const d of [first.delivery, second.delivery])
        expect((await post(d.body, signed(d.body, 'pull_request', d.id), url)).status).toBe(202);
    } finally {
      restarted.closeAllConnections();
      restarted.close();
    }
    await sleep(1500);
    const after = await status(number);
    expect(after!.timeline.length).toBe(before!.timeline.length);
    expect(after!.headSha).toBe(secondHead);
    expect(lookUps(number).length).toBe(lookedUp);
  });

  it('a look-up that keeps failing fails safe: the head cannot be approved, status says why; the next push recovers', async () => {
    const opened = await github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'GitHub down',
      commits: [{ message: 'one' }],
      deliver: false,
    });
    const number = opened.pull.number;
    const head = opened.pull.headSha;
    changes.push(`acme/shop#${number}`);
    // 404 is not retried: the fail-safe path at once.
    const release = holdLookUps(number, { status: 404, remaining: -1 });
    try {
      expect(await github.standin.sendDelivery(opened.delivery.id)).toBe(202);
      const failed = await until(number, 'the fail-safe', (s) => s.stage === 'failed');
      expect(failed.headSha).toBe(head);
      expect(failed.waitingFor).toMatch(new RegExp(`the commits of ${head.slice(0, 7)} could not be read from GitHub`));
      expect(failed.timeline.some((e) => e.kind === 'commits-unknown' && e.sha === head)).toBe(true);
      expect(failed.checks).toBeUndefined();
      await github.standin.submitReview({
        repo: 'acme/shop',
        number,
        reviewer: 'alex-reviewer',
        event: 'APPROVE',
        commitId: head,
      });
      const refused = await until(number, 'the refusal', (s) => s.approvals.length >= 1);
      expect(refused.approvals[0]).toMatchObject({
        counted: false,
        reason: expect.stringMatching(/could not be read from GitHub/),
      });
      expect(refused.stage).toBe('failed');
    } finally {
      release();
    }
    const pushed = await github.standin.pushCommits({
      repo: 'acme/shop',
      number,
      pusher: 'sam-dev',
      commits: [{ message: 'two' }],
    });
    expect(pushed.status).toBe(202);
    const recovered = await until(
      number,
      'awaiting approval of the new head',
      (s) => s.headSha === pushed.pull.headSha && s.stage === 'awaiting-approval',
    );
    expect(recovered.initiators).toEqual(['sam-dev']);
    expect(deployed.some((d) => d.sha === head)).toBe(false);
  });
});
