// Orchestrator activities that report a change on GitHub and check GitHub before production. Each is
// idempotent: it reads what is there and only writes the difference, so a retry creates no duplicate.
//
// - syncGitHub: one check run per stage on the head SHA when authenticated as a GitHub App (check runs need
//   an App), commit statuses with the same names when using a plain token; one GitHub deployment per
//   environment and SHA with its deployment statuses; one summary comment on the pull request, found again
//   by a hidden marker and our own login, updated in place.
// - confirmReviews: re-reads the reviews and confirms that every approval through the `github` channel still
//   stands (APPROVED, same commit, not dismissed) and that the head has not moved.
// - mergePullRequest: merges with the `sha` guard when the repository's `merge` switch is on.
// - lookUpPullRequest: the pull request as GitHub shows it now (head, base, every commit and file, or why not
//   all), for each signed event the workflow applies; read-only, so retries are harmless.
// - confirmDelivery: just before each deploy, the policy in force, the pull request's state, head and base,
//   and whether the approving GitHub reviews still stand.
// - lookUpPullRequestChanges: commits and files only (runs started before core v2).
import { ApplicationFailure } from '@temporalio/activity';
import type { CommitComparison } from '../shared/lane.ts';
import type { Octokit } from '@octokit/rest';
import type { FoureyesConfig } from '../config/schema.ts';
import { parseChangeRef, workflowIdFor, type ChangeRef } from '../shared/change-ref.ts';
import { failedStep, failureOf, lastOutput } from '../shared/step-report.ts';
import type {
  ApprovalRecord,
  ChangePolicy,
  ChangeStatus,
  CommitInfo,
  EnvironmentStatus,
  PullRequestFacts,
} from '../shared/types.ts';
import { GitHubConfigError, lazyGitHubClients, RateLimitedError, type GitHubClients } from './github-client.ts';
import { md } from '../shared/markdown.ts';
import { policyFor } from './policy.ts';
import { fetchPullRequest, fetchPullRequestChanges } from './pull-request-changes.ts';

/** Just before a deploy: the policy in force now, the pull request as GitHub has it, and whether its approving reviews stand. */
export interface DeliveryConfirmation {
  policy: ChangePolicy;
  pull: { state: 'open' | 'closed'; headSha: string; baseRef: string };
  reviews: { ok: boolean; reason: string };
}

export const SUMMARY_MARKER = '<!-- foureyes:summary -->';
export const CHECK_PREFIX = 'foureyes / ';

type RunStatus = 'queued' | 'in_progress' | 'completed';
type Conclusion = 'success' | 'failure' | 'cancelled' | 'skipped' | 'neutral';

export interface StageReport {
  name: string;
  status: RunStatus;
  conclusion?: Conclusion;
  title: string;
  summary: string;
}

// ---------------------------------------------------------------------------------------------
// Escaping: titles, comments, logins, reasons are untrusted; they must not inject Markdown, HTML or @mentions
// (md, src/shared/markdown.ts).

export { md };

function sha7(sha: string): string {
  return /^[0-9a-f]{7,40}$/.test(sha) ? sha.slice(0, 7) : md(sha, 12);
}

// ---------------------------------------------------------------------------------------------
// What GitHub should show, derived from the change's status only.

export function stageReports(status: ChangeStatus): StageReport[] {
  const ended = status.stage === 'abandoned';
  const out: StageReport[] = [];
  const checks = status.checks && status.checks.sha === status.headSha ? status.checks : undefined;
  if (checks) {
    out.push({
      name: `${CHECK_PREFIX}checks`,
      status: 'completed',
      conclusion: checks.passed ? 'success' : 'failure',
      title: checks.passed ? 'checks passed' : 'checks failed',
      summary:
        checks.results
          .map(
            (r) =>
              `- ${r.passed ? '✅' : '❌'} ${md(r.name)}: exit ${r.exitCode ?? 'none'}${r.timedOut ? ' (timed out)' : ''}, ${Math.round(r.durationMs / 1000)}s`,
          )
          .join('\n') || 'no checks configured',
    });
  } else if (status.stage === 'checking')
    out.push({
      name: `${CHECK_PREFIX}checks`,
      status: 'in_progress',
      title: 'checks running',
      summary: `checks on ${sha7(status.headSha)}`,
    });
  else
    out.push({
      name: `${CHECK_PREFIX}checks`,
      status: ended ? 'completed' : 'queued',
      ...(ended ? { conclusion: 'cancelled' as const } : {}),
      title: 'checks',
      summary: 'not run',
    });

  const envApproved = (e: EnvironmentStatus) => e.state !== 'pending' || e.approvedBy.length >= e.required;
  const allApproved = status.environments.length > 0 && status.environments.every(envApproved);
  const approvalSummary = status.environments
    .map(
      (e) =>
        `- ${md(e.name)}: ${e.approvedBy.length}/${e.required}${e.approvedBy.length ? ` (${e.approvedBy.map((p) => md(p)).join(', ')})` : ''}`,
    )
    .join('\n');
  if (status.stage === 'rejected')
    out.push({
      name: `${CHECK_PREFIX}approval`,
      status: 'completed',
      conclusion: 'failure',
      title: 'changes requested',
      summary: md(status.waitingFor, 500),
    });
  else if (allApproved)
    out.push({
      name: `${CHECK_PREFIX}approval`,
      status: 'completed',
      conclusion: 'success',
      title: 'approved',
      summary: approvalSummary,
    });
  else if (status.stage === 'awaiting-approval')
    out.push({
      name: `${CHECK_PREFIX}approval`,
      status: 'in_progress',
      title: 'waiting for approval',
      summary: `${md(status.waitingFor, 500)}\n\n${approvalSummary}`,
    });
  else
    out.push({
      name: `${CHECK_PREFIX}approval`,
      status: ended ? 'completed' : 'queued',
      ...(ended ? { conclusion: 'cancelled' as const } : {}),
      title: 'approval',
      summary: approvalSummary || 'not started',
    });

  for (const env of status.environments) {
    const name = `${CHECK_PREFIX}${env.name}`;
    const detail = [
      env.deploy ? `deploy: ${env.deploy.status}, exit ${env.deploy.exitCode ?? 'none'}` : '',
      env.verify ? `verify: ${env.verify.passed ? 'passed' : 'failed'}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    switch (env.state) {
      case 'deploying':
      case 'verifying':
        out.push({
          name,
          status: 'in_progress',
          title: `${env.state} ${env.name}`,
          summary: `${env.state} ${sha7(status.headSha)} in ${md(env.name)}`,
        });
        break;
      case 'deployed':
        out.push({
          name,
          status: 'completed',
          conclusion: 'success',
          title: `deployed to ${env.name}`,
          summary: md(detail || 'deployed'),
        });
        break;
      case 'failed':
        out.push({
          name,
          status: 'completed',
          conclusion: 'failure',
          title: `${env.name} failed`,
          summary: md(detail || 'failed'),
        });
        break;
      case 'skipped':
        out.push({
          name,
          status: 'completed',
          conclusion: 'skipped',
          title: `${env.name} skipped`,
          summary: 'skipped',
        });
        break;
      default:
        out.push({
          name,
          status: ended ? 'completed' : 'queued',
          ...(ended ? { conclusion: 'cancelled' as const } : {}),
          title: `${env.name}: ${env.approvedBy.length}/${env.required} approvals`,
          summary: 'waiting',
        });
    }
  }
  return out;
}

export function runUrl(status: ChangeStatus, uiUrl: string, namespace: string): string {
  const base = `${uiUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowIdFor(status.change))}`;
  const runId = status.runIds.at(-1);
  return runId ? `${base}/${encodeURIComponent(runId)}/history` : base;
}

function approvalLine(r: ApprovalRecord): string {
  const c = r.claim;
  const what = c.decision === 'approve' ? 'approve' : c.decision === 'reject' ? 'request changes' : 'dismiss';
  return `${md(c.person)} via ${md(c.channel)}: ${what} ${sha7(c.sha)}${c.environment ? ` for ${md(c.environment)}` : ''}`;
}

/** The summary comment: stage, environments, initiators, approvals, refused attempts and why, the run link. */
export function renderSummary(status: ChangeStatus, link: string): string {
  const lines: string[] = [SUMMARY_MARKER, `### foureyes: ${md(status.stage)}`, ''];
  lines.push(
    `**${md(status.title || status.change)}** · head \`${sha7(status.headSha)}\` · [the run in the Temporal UI](${link.replace(/[()\s<>]/g, (c) => encodeURIComponent(c))})`,
    '',
  );
  if (status.waitingFor && status.stage !== 'delivered') lines.push(`Waiting for: ${md(status.waitingFor, 500)}`, '');
  if (status.policyChange)
    lines.push('> ⚠️ This pull request changes policy or delivery files: a policy owner must approve it.', '');
  for (const e of status.emergencies ?? [])
    lines.push(
      `> 🚨 **Emergency** declared by ${md(e.declaredBy)} for \`${sha7(e.sha)}\` (${e.environments.map((n) => md(n)).join(', ')}): ${md(e.reason, 300)} — ${md(e.summary, 300)}`,
      '',
    );
  if (status.environments.length > 0) {
    lines.push('| environment | approvals | approved by | state |', '| --- | --- | --- | --- |');
    for (const e of status.environments)
      lines.push(
        `| ${md(e.name)} | ${e.approvedBy.length}/${e.required} | ${e.approvedBy.map((p) => md(p)).join(', ') || (e.emergency ? `none: emergency declared by ${md(e.emergency)}` : '—')} | ${md(e.state)} |`,
      );
    lines.push('');
  }
  const failures = status.environments.flatMap((e) => {
    const failed = failedStep(e);
    return failed ? [{ env: e.name, ...failed }] : [];
  });
  for (const f of failures) {
    lines.push(
      `**${md(f.env)}: ${f.step === 'deploy' ? 'deploy' : 'verification'} failed** — the command ${md(failureOf(f.report))} after ${(f.report.durationMs / 1000).toFixed(1)} s`,
      '',
    );
    // The output is the change's own: escaped like every other untrusted text, on one line.
    if (f.report.outputTail)
      lines.push(`Last output (secrets redacted): ${md(lastOutput(f.report.outputTail, 8, 800), 900)}`, '');
  }
  if (status.initiators.length > 0)
    lines.push(`Initiators (may not approve): ${status.initiators.map((p) => md(p)).join(', ')}`, '');
  // What else waits for or runs in these environments: the lanes, and the way back (rollback).
  const repo = status.change.split('#')[0] ?? '';
  if (status.environments.length > 0 && /^[A-Za-z0-9._/-]+$/.test(repo))
    lines.push(
      `What runs in each environment, what waits for it, and its releases: \`foureyes environments ${repo}\` (gateway: \`GET /api/environments/${repo}\`); back to an earlier release: \`foureyes rollback ${repo} <environment>\``,
      '',
    );
  const counted = status.approvals.filter((r) => r.counted && !r.voidedAt);
  const refused = status.approvals.filter((r) => !r.counted);
  const voided = status.approvals.filter((r) => r.counted && r.voidedAt);
  if (counted.length > 0) {
    lines.push('**Approvals**', '');
    for (const r of counted.slice(-20)) lines.push(`- ${approvalLine(r)} (${md(r.reason, 200)})`);
    lines.push('');
  }
  if (voided.length > 0) {
    lines.push('**Voided**', '');
    for (const r of voided.slice(-20)) lines.push(`- ${approvalLine(r)}: ${md(r.voidReason ?? 'voided', 200)}`);
    lines.push('');
  }
  if (refused.length > 0) {
    lines.push('**Refused attempts**', '');
    for (const r of refused.slice(-20)) lines.push(`- ${approvalLine(r)}: ${md(r.reason, 300)}`);
    lines.push('');
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

function toFailure(error: unknown): unknown {
  if (error instanceof RateLimitedError)
    return ApplicationFailure.create({
      message: error.message,
      type: 'GitHubRateLimited',
      nextRetryDelay: error.retryAfterMs,
    });
  if (error instanceof GitHubConfigError) return ApplicationFailure.nonRetryable(error.message, 'GitHubNotConfigured');
  const status = (error as { status?: number }).status;
  if (status !== undefined) {
    // Only what identifies the failure: Octokit's error carries the request (its token is redacted anyway).
    const message = `GitHub API ${(error as { request?: { method?: string; url?: string } }).request?.method ?? ''} ${new URL((error as { request?: { url?: string } }).request?.url ?? 'http://x/').pathname} answered ${status}: ${(error as Error).message.split('\n')[0]}`;
    return status >= 400 && status < 500 && status !== 408 && status !== 429
      ? ApplicationFailure.nonRetryable(message, `GitHubHttp${status}`)
      : ApplicationFailure.retryable(message, `GitHubHttp${status}`);
  }
  return error;
}

type Activity<A, R> = (input: A) => Promise<R>;

/** Every activity throws what Temporal should see: a rate limit as a delayed retry, a 4xx as non-retryable. */
function wrap<A, R>(fn: Activity<A, R>): Activity<A, R> {
  return async (input: A): Promise<R> => {
    try {
      return await fn(input);
    } catch (error) {
      throw toFailure(error);
    }
  };
}

// --- reporting: check runs or commit statuses, deployments, the summary comment -------------

async function syncCheckRuns(
  github: () => GitHubClients,
  octokit: Octokit,
  ref: ChangeRef,
  sha: string,
  reports: StageReport[],
  link: string,
): Promise<void> {
  const existing = await octokit.paginate(octokit.rest.checks.listForRef, {
    owner: ref.owner,
    repo: ref.repo,
    ref: sha,
    per_page: 100,
    filter: 'latest' as const,
  });
  const self = (await github().selfLogin(ref.owner, ref.repo)).replace(/\[bot\]$/, '');
  for (const report of reports) {
    const mine = existing
      .filter((r) => r.name === report.name && (!r.app || r.app.slug === self))
      .sort((a, b) => b.id - a.id)[0];
    const output = { title: report.title, summary: report.summary };
    if (mine) {
      const same =
        mine.status === report.status &&
        (mine.conclusion ?? undefined) === report.conclusion &&
        mine.output?.title === output.title &&
        mine.output?.summary === output.summary;
      if (same) continue;
      await octokit.rest.checks.update({
        owner: ref.owner,
        repo: ref.repo,
        check_run_id: mine.id,
        status: report.status,
        ...(report.conclusion ? { conclusion: report.conclusion } : {}),
        output,
        details_url: link,
      });
    } else {
      await octokit.rest.checks.create({
        owner: ref.owner,
        repo: ref.repo,
        name: report.name,
        head_sha: sha,
        status: report.status,
        ...(report.conclusion ? { conclusion: report.conclusion } : {}),
        output,
        details_url: link,
        external_id: workflowIdFor(ref),
      });
    }
  }
}

function commitState(report: StageReport): 'pending' | 'success' | 'failure' | 'error' {
  if (report.status !== 'completed') return 'pending';
  if (report.conclusion === 'success' || report.conclusion === 'skipped') return 'success';
  return report.conclusion === 'failure' ? 'failure' : 'error';
}

async function syncStatuses(
  octokit: Octokit,
  ref: ChangeRef,
  sha: string,
  reports: StageReport[],
  link: string,
): Promise<void> {
  const combined = await octokit.rest.repos.getCombinedStatusForRef({
    owner: ref.owner,
    repo: ref.repo,
    ref: sha,
    per_page: 100,
  });
  for (const report of reports) {
    const state = commitState(report);
    const description = report.title.slice(0, 140);
    const current = combined.data.statuses.find((s) => s.context === report.name);
    if (current && current.state === state && current.description === description) continue;
    await octokit.rest.repos.createCommitStatus({
      owner: ref.owner,
      repo: ref.repo,
      sha,
      state,
      context: report.name,
      description,
      target_url: link,
    });
  }
}

interface DesiredDeploymentStatus {
  state: 'in_progress' | 'success' | 'failure';
  description: string;
}

function desiredDeploymentStatus(env: EnvironmentStatus, sha: string): DesiredDeploymentStatus | undefined {
  const short = sha.slice(0, 7);
  switch (env.state) {
    case 'deploying':
      return { state: 'in_progress', description: `deploying ${short}` };
    case 'verifying':
      return { state: 'in_progress', description: `verifying ${short}` };
    case 'deployed':
      return { state: 'success', description: `deployed ${short}` };
    case 'failed':
      return { state: 'failure', description: `${short} failed` };
    default:
      return undefined;
  }
}

/** The change's GitHub deployment of `sha` to `env`, created when there is none yet. */
async function deploymentFor(
  octokit: Octokit,
  ref: ChangeRef,
  status: ChangeStatus,
  env: EnvironmentStatus,
): Promise<{ id: number }> {
  const sha = status.headSha;
  const list = await octokit.rest.repos.listDeployments({
    owner: ref.owner,
    repo: ref.repo,
    sha,
    environment: env.name,
    per_page: 100,
  });
  const found = list.data.find((d) => (d.payload as { change?: string } | null)?.change === status.change);
  if (found) return found;
  const created = await octokit.rest.repos.createDeployment({
    owner: ref.owner,
    repo: ref.repo,
    ref: sha,
    environment: env.name,
    task: 'deploy',
    auto_merge: false,
    required_contexts: [],
    payload: { change: status.change, idempotencyKey: `${status.change}@${env.name}@${sha}` },
    description: `foureyes: ${status.change} to ${env.name}`,
    production_environment: env.name === status.environments.at(-1)?.name,
    transient_environment: false,
  });
  if (!('id' in created.data))
    throw new Error(`GitHub did not create the deployment: ${created.data.message ?? 'no reason given'}`);
  return created.data;
}

async function syncDeployments(octokit: Octokit, ref: ChangeRef, status: ChangeStatus, link: string): Promise<void> {
  for (const env of status.environments) {
    const desired = desiredDeploymentStatus(env, status.headSha);
    if (!desired) continue;
    const deployment = await deploymentFor(octokit, ref, status, env);
    const statuses = await octokit.rest.repos.listDeploymentStatuses({
      owner: ref.owner,
      repo: ref.repo,
      deployment_id: deployment.id,
      per_page: 1,
    });
    const latest = statuses.data[0];
    if (latest && latest.state === desired.state && latest.description === desired.description) continue;
    await octokit.rest.repos.createDeploymentStatus({
      owner: ref.owner,
      repo: ref.repo,
      deployment_id: deployment.id,
      state: desired.state,
      description: desired.description,
      log_url: link,
      auto_inactive: true,
    });
  }
}

async function syncComment(github: () => GitHubClients, octokit: Octokit, ref: ChangeRef, body: string): Promise<void> {
  const self = (await github().selfLogin(ref.owner, ref.repo)).toLowerCase();
  const comments = await octokit.paginate(octokit.rest.issues.listComments, {
    owner: ref.owner,
    repo: ref.repo,
    issue_number: ref.number,
    per_page: 100,
  });
  // Our own comment only: anyone can paste the marker into a comment of theirs.
  const ours = comments.find((c) => c.body?.startsWith(SUMMARY_MARKER) && c.user?.login.toLowerCase() === self);
  if (ours) {
    if (ours.body === body) return;
    await octokit.rest.issues.updateComment({ owner: ref.owner, repo: ref.repo, comment_id: ours.id, body });
  } else await octokit.rest.issues.createComment({ owner: ref.owner, repo: ref.repo, issue_number: ref.number, body });
}

function reportingActivities(getConfig: () => FoureyesConfig, github: () => GitHubClients) {
  return {
    syncGitHub: wrap(async ({ status }: { status: ChangeStatus }): Promise<void> => {
      if (!status.headSha) return;
      const ref = parseChangeRef(status.change);
      const policy = policyFor(getConfig(), `${ref.owner}/${ref.repo}`, []);
      const link = runUrl(status, policy.temporalUiUrl, policy.namespace);
      const gh = github();
      const octokit = await gh.forRepo(ref.owner, ref.repo);
      const reports = stageReports(status);
      if (gh.mode === 'app') await syncCheckRuns(github, octokit, ref, status.headSha, reports, link);
      else await syncStatuses(octokit, ref, status.headSha, reports, link);
      await syncDeployments(octokit, ref, status, link);
      await syncComment(github, octokit, ref, renderSummary(status, link));
    }),
  };
}

// --- reviews: do the approving GitHub reviews still stand? -----------------------------------

interface ReviewVerdict {
  ok: boolean;
  reason: string;
}

interface ReviewOnGitHub {
  id: number;
  state: string;
  user?: { login: string } | null;
  commit_id?: string | null;
}

function listReviews(octokit: Octokit, ref: ChangeRef): Promise<ReviewOnGitHub[]> {
  return octokit.paginate(octokit.rest.pulls.listReviews, {
    owner: ref.owner,
    repo: ref.repo,
    pull_number: ref.number,
    per_page: 100,
  });
}

/** Whether every review of `reviewIds` is on the pull request and still approves `sha`. */
function reviewsStand(reviews: ReviewOnGitHub[], reviewIds: string[], sha: string): ReviewVerdict {
  for (const id of reviewIds) {
    const review = reviews.find((r) => String(r.id) === id);
    if (!review) return { ok: false, reason: `review ${id} is not on the pull request` };
    if (review.state !== 'APPROVED')
      return {
        ok: false,
        reason: `review ${id} by ${review.user?.login ?? 'unknown'} is ${review.state}, not APPROVED`,
      };
    if (review.commit_id !== sha)
      return {
        ok: false,
        reason: `review ${id} approves ${String(review.commit_id).slice(0, 7)}, not ${sha.slice(0, 7)}`,
      };
  }
  return { ok: true, reason: `${reviewIds.length} review(s) still approve ${sha.slice(0, 7)}` };
}

interface ReviewsInput {
  change: string;
  sha: string;
  reviewIds: string[];
}

function reviewActivities(getConfig: () => FoureyesConfig, approvalKeys: string[], github: () => GitHubClients) {
  return {
    confirmReviews: wrap(async ({ change, sha, reviewIds }: ReviewsInput): Promise<ReviewVerdict> => {
      const ref = parseChangeRef(change);
      const octokit = await github().forRepo(ref.owner, ref.repo);
      const pr = await octokit.rest.pulls.get({ owner: ref.owner, repo: ref.repo, pull_number: ref.number });
      if (pr.data.head.sha !== sha)
        return {
          ok: false,
          reason: `the pull request's head is now ${pr.data.head.sha.slice(0, 7)}, not ${sha.slice(0, 7)}`,
        };
      if (pr.data.state !== 'open') return { ok: false, reason: `the pull request is ${pr.data.state}` };
      return reviewsStand(await listReviews(octokit, ref), reviewIds, sha);
    }),

    confirmDelivery: wrap(async ({ change, sha, reviewIds }: ReviewsInput): Promise<DeliveryConfirmation> => {
      const ref = parseChangeRef(change);
      const policy = policyFor(getConfig(), `${ref.owner}/${ref.repo}`, approvalKeys);
      const octokit = await github().forRepo(ref.owner, ref.repo);
      const pr = await octokit.rest.pulls.get({ owner: ref.owner, repo: ref.repo, pull_number: ref.number });
      const pull = {
        state: pr.data.state === 'open' ? ('open' as const) : ('closed' as const),
        headSha: pr.data.head.sha,
        baseRef: pr.data.base.ref,
      };
      if (reviewIds.length === 0)
        return { policy, pull, reviews: { ok: true, reason: 'no approval came through a GitHub review' } };
      return { policy, pull, reviews: reviewsStand(await listReviews(octokit, ref), reviewIds, sha) };
    }),
  };
}

// --- pull request: look-ups, compare, merge ---------------------------------------------------

async function merge(octokit: Octokit, ref: ChangeRef, sha: string): Promise<{ merged: boolean; reason: string }> {
  try {
    const merged = await octokit.rest.pulls.merge({
      owner: ref.owner,
      repo: ref.repo,
      pull_number: ref.number,
      sha,
      merge_method: 'merge',
    });
    return { merged: merged.data.merged, reason: `merged ${sha.slice(0, 7)} as ${merged.data.sha.slice(0, 7)}` };
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status === 409) return { merged: false, reason: `not merged: the head moved away from ${sha.slice(0, 7)}` };
    if (status === 405 || status === 422)
      return {
        merged: false,
        reason: `not merged: GitHub says the pull request is not mergeable (${(error as Error).message.split('\n')[0]})`,
      };
    throw error;
  }
}

function pullRequestActivities(getConfig: () => FoureyesConfig, github: () => GitHubClients) {
  return {
    /** GitHub's compare of `base...head` (the lane asks whether a head is older than what runs). */
    compareCommits: wrap(
      async ({ repo, base, head }: { repo: string; base: string; head: string }): Promise<CommitComparison> => {
        const [owner, name] = repo.split('/') as [string, string];
        const octokit = await github().forRepo(owner, name);
        const compared = await octokit.rest.repos.compareCommitsWithBasehead({
          owner,
          repo: name,
          basehead: `${base}...${head}`,
          per_page: 1,
        });
        return { status: compared.data.status, aheadBy: compared.data.ahead_by, behindBy: compared.data.behind_by };
      },
    ),

    lookUpPullRequest: wrap(async ({ change }: { change: string }): Promise<PullRequestFacts> => {
      const ref = parseChangeRef(change);
      const octokit = await github().forRepo(ref.owner, ref.repo);
      return fetchPullRequest(octokit, ref.owner, ref.repo, ref.number);
    }),

    lookUpPullRequestChanges: wrap(
      async ({
        change,
      }: {
        change: string;
        kind: string;
        headSha: string;
        beforeSha?: string;
      }): Promise<{ commits: CommitInfo[]; changedFiles: string[] }> => {
        const ref = parseChangeRef(change);
        const octokit = await github().forRepo(ref.owner, ref.repo);
        return fetchPullRequestChanges(octokit, ref.owner, ref.repo, ref.number);
      },
    ),

    mergePullRequest: wrap(
      async ({ change, sha }: { change: string; sha: string }): Promise<{ merged: boolean; reason: string }> => {
        const ref = parseChangeRef(change);
        const policy = policyFor(getConfig(), `${ref.owner}/${ref.repo}`, []);
        if (!policy.merge)
          return { merged: false, reason: 'merge after production is off for this repository (repositories[].merge)' };
        const octokit = await github().forRepo(ref.owner, ref.repo);
        const pr = await octokit.rest.pulls.get({ owner: ref.owner, repo: ref.repo, pull_number: ref.number });
        if (pr.data.merged)
          return {
            merged: pr.data.merge_commit_sha !== null && pr.data.head.sha === sha,
            reason: `already merged (head ${pr.data.head.sha.slice(0, 7)})`,
          };
        return merge(octokit, ref, sha);
      },
    ),
  };
}

export function createGitHubActivities(
  getConfig: () => FoureyesConfig,
  env: NodeJS.ProcessEnv,
  approvalKeys: string[] = [],
  github: () => GitHubClients = lazyGitHubClients(env),
) {
  return {
    ...reportingActivities(getConfig, github),
    ...reviewActivities(getConfig, approvalKeys, github),
    ...pullRequestActivities(getConfig, github),
  };
}
