// The orchestrator's activities for workflow tests: the real loadPolicy and beginChange (it reads the change's
// runs from the Temporal dev server) over a test configuration, and answers at once for what would reach GitHub
// or Slack. What GitHub says about a pull request comes from a GitHub model kept in files (so an orchestrator in
// a process of its own answers the same): the test writes it as it opens and pushes. No vitest imports: a child
// process (fixtures/) uses it.
import { ApplicationFailure } from '@temporalio/activity';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createChangeHistoryActivities } from '../../src/activities/change-history.ts';
import { createLaneActivities } from '../../src/activities/lanes.ts';
import { policyFor, createPolicyActivities } from '../../src/activities/policy.ts';
import { createRollbackActivities } from '../../src/activities/rollbacks.ts';
import type { FoureyesConfig } from '../../src/config/schema.ts';
import type { CommitComparison } from '../../src/shared/lane.ts';
import type { PullRequestFacts } from '../../src/shared/types.ts';

/** Pull requests as "GitHub" shows them to the orchestrator's look-ups, one file per change. */
export class GitHubModel {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private file(change: string): string {
    return join(this.dir, `${encodeURIComponent(change)}.json`);
  }

  set(change: string, facts: PullRequestFacts): void {
    writeFileSync(this.file(change), JSON.stringify(facts));
    const repo = change.split('#')[0] as string;
    const known = this.commitsOf(repo);
    if (!known.includes(facts.head.sha))
      writeFileSync(this.commitsFile(repo), JSON.stringify([...known, facts.head.sha]));
  }

  private commitsFile(repo: string): string {
    return join(this.dir, `commits-${encodeURIComponent(repo.toLowerCase())}.json`);
  }

  /** The heads any pull request of `repo` has shown: the commits GitHub's compare of that repository finds. */
  private commitsOf(repo: string): string[] {
    try {
      return JSON.parse(readFileSync(this.commitsFile(repo), 'utf8')) as string[];
    } catch {
      return [];
    }
  }

  /** The next `n` compares answer 502, as GitHub does now and then. */
  failCompares(n: number): void {
    writeFileSync(join(this.dir, 'compare-failures.json'), JSON.stringify(n));
  }

  private takeCompareFailure(): boolean {
    const file = join(this.dir, 'compare-failures.json');
    let left = 0;
    try {
      left = JSON.parse(readFileSync(file, 'utf8')) as number;
    } catch {
      return false;
    }
    if (left <= 0) return false;
    writeFileSync(file, JSON.stringify(left - 1));
    return true;
  }

  /** `child` is a descendant of `parent` (and so of every ancestor of `parent`), as GitHub's compare sees it. */
  descend(child: string, parent: string): void {
    writeFileSync(join(this.dir, `ancestry-${child}.json`), JSON.stringify([parent, ...this.ancestors(parent)]));
  }

  ancestors(sha: string): string[] {
    try {
      return JSON.parse(readFileSync(join(this.dir, `ancestry-${sha}.json`), 'utf8')) as string[];
    } catch {
      return [];
    }
  }

  /** GitHub's compare of base...head in `repo`, over the ancestry the test wrote. */
  compare(repo: string, base: string, head: string): CommitComparison {
    if (this.takeCompareFailure())
      throw ApplicationFailure.retryable(
        `GitHub API GET /repos/${repo}/compare answered 502: Bad Gateway`,
        'GitHubHttp502',
      );
    const known = this.commitsOf(repo);
    for (const sha of [base, head])
      if (!known.includes(sha))
        throw ApplicationFailure.nonRetryable(
          `GitHub API GET /repos/${repo}/compare/${base}...${head} answered 404: No commit found for SHA: ${sha}`,
          'GitHubHttp404',
        );
    if (base === head) return { status: 'identical', aheadBy: 0, behindBy: 0 };
    if (this.ancestors(head).includes(base)) return { status: 'ahead', aheadBy: 1, behindBy: 0 };
    if (this.ancestors(base).includes(head)) return { status: 'behind', aheadBy: 0, behindBy: 1 };
    return { status: 'diverged', aheadBy: 1, behindBy: 1 };
  }

  get(change: string): PullRequestFacts {
    try {
      return JSON.parse(readFileSync(this.file(change), 'utf8')) as PullRequestFacts;
    } catch {
      throw ApplicationFailure.nonRetryable(
        `GitHub API GET /repos/${change.replace('#', '/pulls/')} answered 404: Not Found`,
        'GitHubHttp404',
      );
    }
  }
}

/** `approvalKeys`: one key, or the list itself, which a test may change (a key rotated out). */
export function orchestratorDoubles(config: FoureyesConfig, approvalKeys: string | string[], github: GitHubModel) {
  const keys = Array.isArray(approvalKeys) ? approvalKeys : [approvalKeys];
  return {
    ...createPolicyActivities(() => config, keys),
    ...createChangeHistoryActivities(() => config, keys),
    ...createLaneActivities(process.env, { compareCommits: async (i) => github.compare(i.repo, i.base, i.head) }),
    ...createRollbackActivities(() => config, keys),
    async compareCommits(input: { repo: string; base: string; head: string }): Promise<CommitComparison> {
      return github.compare(input.repo, input.base, input.head);
    },
    async syncGitHub() {},
    async confirmReviews() {
      return { ok: true, reason: 'reviews stand' };
    },
    async lookUpPullRequest(input: { change: string }): Promise<PullRequestFacts> {
      return github.get(input.change);
    },
    /** Runs started before core v2 read commits and files only. */
    async lookUpPullRequestChanges(input: { change: string }) {
      const facts = github.get(input.change);
      return { commits: facts.head.commits, changedFiles: facts.head.files };
    },
    async confirmDelivery(input: { change: string; sha: string }) {
      const facts = github.get(input.change);
      return {
        policy: policyFor(config, input.change.split('#')[0] as string, keys),
        pull: { state: facts.state, headSha: facts.head.sha, baseRef: facts.head.baseRef },
        reviews: { ok: true, reason: 'reviews stand' },
      };
    },
    async notifySlack() {
      return { posted: true };
    },
    // Teams is not configured here: the card tracker asks once per head and stops.
    async syncTeamsCard() {
      return { configured: false };
    },
    async mergePullRequest(input: { sha: string }) {
      return { merged: true, reason: `merged ${input.sha.slice(0, 7)}` };
    },
  };
}
