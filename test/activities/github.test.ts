// The orchestrator's GitHub activities against the stand-in over real HTTP: idempotent reconciliation
// (a retry creates nothing new), escaping of untrusted text, Retry-After, review confirmation, guarded merge.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { createGitHubActivities } from '../../src/activities/github.ts';
import { startGitHubStandin, type RunningStandin } from '../../src/dev/github-standin/index.ts';
import type { ChangeStatus } from '../../src/shared/types.ts';

const CONFIG = `
people:
  - { github: sam-dev, emails: [sam@example.com] }
  - { github: alex-reviewer, emails: [alex@example.com] }
environments:
  - { name: staging, deploy: { run: "true" } }
  - { name: production, deploy: { run: "true" } }
repositories:
  - { name: acme/shop, remote: /nonexistent, merge: true }
temporal: { namespace: foureyes, uiUrl: "http://ui.example:8233" }
`;

function statusFor(change: string, headSha: string, patch: Partial<ChangeStatus> = {}): ChangeStatus {
  return {
    change,
    title: 'Add checkout @alex-reviewer [click](http://evil.example) <img src=x> #1',
    stage: 'awaiting-approval',
    waitingFor: 'approval of abc for staging',
    headSha,
    author: 'sam-dev',
    initiators: ['sam-dev'],
    policyChange: false,
    checks: {
      sha: headSha,
      passed: true,
      results: [{ name: 'unit', passed: true, exitCode: 0, durationMs: 1200, timedOut: false, outputTail: '' }],
      durationMs: 1200,
    },
    approvals: [],
    environments: [
      { name: 'staging', required: 1, approvedBy: [], state: 'pending' },
      { name: 'production', required: 1, approvedBy: [], state: 'pending' },
    ],
    timeline: [],
    runIds: ['run-1'],
    ...patch,
  };
}

describe('GitHub activities', () => {
  let dir: string;
  let gh: RunningStandin;
  let app: { appId: number; installationId: number; privateKey: string };
  let botToken: string;
  const config = parseConfig(CONFIG);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-activities-'));
    gh = await startGitHubStandin({ dataDir: dir });
    gh.standin.addUser({ login: 'sam-dev', email: 'sam@example.com' });
    gh.standin.addUser({ login: 'alex-reviewer', email: 'alex@example.com' });
    botToken = gh.standin.addUser({ login: 'foureyes-bot' }).token;
    gh.standin.createRepo({ fullName: 'acme/shop' });
    app = gh.standin.addApp({ slug: 'foureyes' });
  });
  afterAll(async () => {
    await gh?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const appActivities = () =>
    createGitHubActivities(() => config, {
      GITHUB_API_URL: gh.url,
      GITHUB_APP_ID: String(app.appId),
      GITHUB_PRIVATE_KEY: app.privateKey,
    });

  it('as an App: check runs per stage, deployments, one comment; a retry changes nothing; a new state updates in place', async () => {
    const { pull } = await gh.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 't',
      commits: [{ message: 'one' }],
    });
    const activities = appActivities();
    const status = statusFor(`acme/shop#${pull.number}`, pull.headSha);
    await activities.syncGitHub({ status });
    const snapshot = () =>
      JSON.stringify({
        c: gh.standin.state.checkRuns,
        d: gh.standin.state.deployments,
        ds: gh.standin.state.deploymentStatuses,
        m: gh.standin.state.comments,
      });
    const first = snapshot();
    await activities.syncGitHub({ status });
    expect(snapshot()).toBe(first);

    const runs = () => gh.standin.state.checkRuns.filter((r) => r.headSha === pull.headSha);
    expect(runs().map((r) => [r.name, r.status, r.conclusion])).toEqual([
      ['foureyes / checks', 'completed', 'success'],
      ['foureyes / approval', 'in_progress', null],
      ['foureyes / staging', 'queued', null],
      ['foureyes / production', 'queued', null],
    ]);
    const comments = () => gh.standin.state.comments.filter((c) => c.issue === pull.number);
    expect(comments()).toHaveLength(1);
    const body = comments()[0]!.body;
    expect(body).toContain('<!-- foureyes:summary -->');
    expect(body).toContain(
      `http://ui.example:8233/namespaces/foureyes/workflows/${encodeURIComponent(`change:acme/shop#${pull.number}`)}/run-1/history`,
    );
    // Untrusted text cannot mention, link or inject HTML.
    expect(body).not.toMatch(/@alex-reviewer|\[click\]\(|<img|#1\b/);

    // Someone pastes the marker into their own comment: ours is still found by author, theirs untouched.
    gh.standin.state.comments.push({
      repo: 'acme/shop',
      id: 1,
      issue: pull.number,
      user: 'sam-dev',
      body: '<!-- foureyes:summary --> fake',
      createdAt: '',
      updatedAt: '',
      updates: 0,
    });

    const delivered = statusFor(status.change, pull.headSha, {
      stage: 'delivered',
      environments: [
        { name: 'staging', required: 1, approvedBy: ['alex-reviewer'], state: 'deployed' },
        { name: 'production', required: 1, approvedBy: ['alex-reviewer'], state: 'deployed' },
      ],
    });
    await activities.syncGitHub({ status: delivered });
    await activities.syncGitHub({ status: delivered });
    expect(runs().map((r) => r.conclusion)).toEqual(['success', 'success', 'success', 'success']);
    expect(runs()).toHaveLength(4);
    const deployments = gh.standin.state.deployments.filter((d) => d.sha === pull.headSha);
    expect(deployments.map((d) => [d.environment, d.productionEnvironment])).toEqual([
      ['staging', false],
      ['production', true],
    ]);
    for (const d of deployments)
      expect(gh.standin.state.deploymentStatuses.filter((s) => s.deploymentId === d.id).map((s) => s.state)).toEqual([
        'success',
      ]);
    expect(comments().filter((c) => c.user === 'foureyes[bot]')).toHaveLength(1);
    expect(comments().find((c) => c.user === 'foureyes[bot]')!.updates).toBe(1);
    expect(comments().find((c) => c.id === 1)!.body).toBe('<!-- foureyes:summary --> fake');
  });

  it('with a plain token: commit statuses instead of check runs; honours Retry-After on 429', async () => {
    const { pull } = await gh.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 't2',
      commits: [{ message: 'two' }],
    });
    const activities = createGitHubActivities(() => config, { GITHUB_API_URL: gh.url, GITHUB_TOKEN: botToken });
    gh.standin.state.faults.push({
      id: 1,
      path: `/issues/${pull.number}/comments$`,
      method: 'GET',
      status: 429,
      retryAfter: 1,
      remaining: 1,
    });
    const started = Date.now();
    await activities.syncGitHub({ status: statusFor(`acme/shop#${pull.number}`, pull.headSha) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    await activities.syncGitHub({ status: statusFor(`acme/shop#${pull.number}`, pull.headSha) });
    const statuses = gh.standin.state.statuses.filter((s) => s.sha === pull.headSha);
    expect(statuses.map((s) => [s.context, s.state])).toEqual([
      ['foureyes / checks', 'success'],
      ['foureyes / approval', 'pending'],
      ['foureyes / staging', 'pending'],
      ['foureyes / production', 'pending'],
    ]);
    expect(gh.standin.state.comments.filter((c) => c.issue === pull.number && c.user === 'foureyes-bot')).toHaveLength(
      1,
    );

    // A long Retry-After is handed to Temporal as the next retry delay instead of blocking the activity.
    gh.standin.state.faults.push({
      id: 2,
      path: `/issues/${pull.number}/comments$`,
      status: 429,
      retryAfter: 120,
      remaining: 1,
    });
    await expect(
      activities.syncGitHub({ status: statusFor(`acme/shop#${pull.number}`, pull.headSha, { stage: 'checking' }) }),
    ).rejects.toMatchObject({ type: 'GitHubRateLimited' });
  });

  it('confirmReviews re-reads the reviews; mergePullRequest is guarded by the SHA', async () => {
    const { pull } = await gh.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 't3',
      commits: [{ message: 'three' }],
    });
    const change = `acme/shop#${pull.number}`;
    const activities = appActivities();
    const { review } = await gh.standin.submitReview({
      repo: 'acme/shop',
      number: pull.number,
      reviewer: 'alex-reviewer',
      event: 'APPROVE',
    });
    expect(
      await activities.confirmReviews({ change, sha: pull.headSha, reviewIds: [String(review.id)] }),
    ).toMatchObject({ ok: true });
    expect(await activities.confirmReviews({ change, sha: pull.headSha, reviewIds: ['999999'] })).toMatchObject({
      ok: false,
    });
    await gh.standin.dismissReview({ repo: 'acme/shop', number: pull.number, reviewId: review.id, by: 'sam-dev' });
    expect(
      (await activities.confirmReviews({ change, sha: pull.headSha, reviewIds: [String(review.id)] })).reason,
    ).toMatch(/DISMISSED/);

    const old = pull.headSha;
    await gh.standin.pushCommits({
      repo: 'acme/shop',
      number: pull.number,
      pusher: 'sam-dev',
      commits: [{ message: 'four' }],
    });
    expect((await activities.confirmReviews({ change, sha: old, reviewIds: [] })).ok).toBe(false);
    expect(await activities.mergePullRequest({ change, sha: old })).toMatchObject({
      merged: false,
      reason: expect.stringMatching(/head moved/),
    });
    expect(
      await activities.mergePullRequest({ change, sha: gh.standin.requirePull('acme/shop', pull.number).headSha }),
    ).toMatchObject({ merged: true });
    expect(gh.standin.requirePull('acme/shop', pull.number).mergedBy).toBe('foureyes[bot]');
  });
});
