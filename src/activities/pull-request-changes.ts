// A pull request as GitHub's REST API shows it: its head, base, commits and changed files. `pull_request`
// webhooks carry none of the lists; the orchestrator reads them itself (activities `lookUpPullRequest`, and
// `lookUpPullRequestChanges` for runs started before core v2), so what the workflow decides on never comes from
// an event. GitHub lists at most 250 commits and 3000 files: a pull request with more is reported incomplete
// (the `commits` and `changed_files` counts say how many there are), never silently cut.
import type { Octokit } from '@octokit/rest';
import type { CommitInfo, PullRequestFacts } from '../shared/types.ts';

/** Commits considered per pull request (GitHub lists at most 250) and files (at most 3000). */
const MAX_COMMITS = 250;
const MAX_FILES = 3000;

/** Every commit of the pull request as the API lists it now (a superset of the event's, never fewer people). */
export async function fetchCommits(
  octokit: Octokit,
  owner: string,
  repo: string,
  number: number,
): Promise<CommitInfo[]> {
  const out: CommitInfo[] = [];
  for await (const page of octokit.paginate.iterator(octokit.rest.pulls.listCommits, {
    owner,
    repo,
    pull_number: number,
    per_page: 100,
  })) {
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

export async function fetchChangedFiles(
  octokit: Octokit,
  owner: string,
  repo: string,
  number: number,
): Promise<string[]> {
  return (await listChangedFiles(octokit, owner, repo, number)).names;
}

/** The changed files' names (a rename moves policy too: both names count) and how many entries GitHub listed. */
async function listChangedFiles(
  octokit: Octokit,
  owner: string,
  repo: string,
  number: number,
): Promise<{ names: string[]; listed: number }> {
  const names: string[] = [];
  let listed = 0;
  for await (const page of octokit.paginate.iterator(octokit.rest.pulls.listFiles, {
    owner,
    repo,
    pull_number: number,
    per_page: 100,
  })) {
    for (const f of page.data) {
      listed++;
      names.push(f.filename);
      if (f.previous_filename) names.push(f.previous_filename);
    }
    if (listed >= MAX_FILES) break;
  }
  return { names, listed };
}

/** Both look-ups at once. */
export async function fetchPullRequestChanges(
  octokit: Octokit,
  owner: string,
  repo: string,
  number: number,
): Promise<{ commits: CommitInfo[]; changedFiles: string[] }> {
  const [commits, changedFiles] = await Promise.all([
    fetchCommits(octokit, owner, repo, number),
    fetchChangedFiles(octokit, owner, repo, number),
  ]);
  return { commits, changedFiles };
}

function identity(login: string | undefined, email: string | null | undefined, name: string | null | undefined) {
  return { ...(login ? { login } : {}), ...(email ? { email } : {}), ...(name ? { name } : {}) };
}

/** The pull request now: state, head, base, and every commit and file of it (or why not all could be read). */
export async function fetchPullRequest(
  octokit: Octokit,
  owner: string,
  repo: string,
  number: number,
): Promise<PullRequestFacts> {
  const { data: pr } = await octokit.rest.pulls.get({ owner, repo, pull_number: number });
  const [commits, files] = await Promise.all([
    fetchCommits(octokit, owner, repo, number),
    listChangedFiles(octokit, owner, repo, number),
  ]);
  const missing: string[] = [];
  if (typeof pr.commits === 'number' && commits.length < pr.commits)
    missing.push(`GitHub lists only ${commits.length} of its ${pr.commits} commits`);
  if (typeof pr.changed_files === 'number' && files.listed < pr.changed_files)
    missing.push(`GitHub lists only ${files.listed} of its ${pr.changed_files} changed files`);
  return {
    state: pr.state === 'open' ? 'open' : 'closed',
    merged: pr.merged ?? false,
    title: pr.title,
    author: pr.user?.login ?? '',
    headRef: pr.head.ref,
    head: {
      sha: pr.head.sha,
      baseRef: pr.base.ref,
      commits,
      files: files.names,
      ...(missing.length > 0 ? { incomplete: `the pull request is too large: ${missing.join(' and ')}` } : {}),
    },
  };
}
