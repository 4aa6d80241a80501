// The commits and changed files of a pull request as GitHub's REST API lists them. `pull_request` webhooks
// carry neither; the orchestrator looks them up (activity `lookUpPullRequestChanges`) for events the gateway
// recorded without them, and the gateway still uses them when a review starts a change.
import type { Octokit } from '@octokit/rest';
import type { CommitInfo } from '../shared/types.ts';

/** Commits considered per pull request (GitHub lists at most 250) and files (at most 3000). */
const MAX_COMMITS = 250;
const MAX_FILES = 3000;

/** Every commit of the pull request as the API lists it now (a superset of the event's, never fewer people). */
export async function fetchCommits(octokit: Octokit, owner: string, repo: string, number: number): Promise<CommitInfo[]> {
  const out: CommitInfo[] = [];
  for await (const page of octokit.paginate.iterator(octokit.rest.pulls.listCommits, { owner, repo, pull_number: number, per_page: 100 })) {
    for (const c of page.data) {
      out.push({
        sha: c.sha,
        author: identity(c.author?.login, c.commit.author?.email, c.commit.author?.name),
        committer: identity(c.committer?.login, c.commit.committer?.email, c.commit.committer?.name),
        message: c.commit.message,
      });
    }
    if (out.length >= MAX_COMMITS) break;
  }
  return out;
}

export async function fetchChangedFiles(octokit: Octokit, owner: string, repo: string, number: number): Promise<string[]> {
  const out: string[] = [];
  for await (const page of octokit.paginate.iterator(octokit.rest.pulls.listFiles, { owner, repo, pull_number: number, per_page: 100 })) {
    for (const f of page.data) {
      out.push(f.filename);
      // A rename moves policy too: both names count.
      if (f.previous_filename) out.push(f.previous_filename);
    }
    if (out.length >= MAX_FILES) break;
  }
  return out;
}

/** Both look-ups at once. */
export async function fetchPullRequestChanges(octokit: Octokit, owner: string, repo: string, number: number): Promise<{ commits: CommitInfo[]; changedFiles: string[] }> {
  const [commits, changedFiles] = await Promise.all([fetchCommits(octokit, owner, repo, number), fetchChangedFiles(octokit, owner, repo, number)]);
  return { commits, changedFiles };
}

function identity(login: string | undefined, email: string | null | undefined, name: string | null | undefined) {
  return { ...(login ? { login } : {}), ...(email ? { email } : {}), ...(name ? { name } : {}) };
}
