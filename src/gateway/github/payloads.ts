// The parts of GitHub's webhook payloads the gateway reads, validated (a payload that does not fit is a 400
// with the field that is wrong), and the REST look-ups that complete them: the commits and the files of the
// pull request, which `pull_request` webhooks do not carry.
import { z } from 'zod';
import type { Octokit } from '@octokit/rest';
import type { CommitInfo, PullRequestEvent } from '../../shared/types.ts';

const user = z.object({ login: z.string().min(1).max(100) });
const sha = z.string().regex(/^[0-9a-f]{40}$/, 'expected a 40-character commit SHA');

export const repositorySchema = z.object({ full_name: z.string().min(3).max(200), name: z.string(), owner: user });

export const pullRequestSchema = z.object({
  number: z.number().int().positive(),
  title: z.string().max(1024),
  state: z.string(),
  user,
  updated_at: z.string(),
  merged: z.boolean().nullish(),
  head: z.object({ ref: z.string(), sha }),
  base: z.object({ ref: z.string() }),
});

export const pullRequestPayload = z.object({
  action: z.string(),
  number: z.number().int().positive().optional(),
  before: sha.optional(),
  after: sha.optional(),
  pull_request: pullRequestSchema,
  repository: repositorySchema,
  sender: user,
});

export const reviewPayload = z.object({
  action: z.string(),
  review: z.object({
    id: z.number().int().positive(),
    user,
    // The webhook spells states in lower case (`approved`), the REST API in upper case (`APPROVED`).
    state: z.string().transform((s) => s.toLowerCase()),
    commit_id: sha,
    body: z.string().nullish(),
    submitted_at: z.string().nullish(),
  }),
  pull_request: pullRequestSchema,
  repository: repositorySchema,
  sender: user,
});

export type PullRequestPayload = z.output<typeof pullRequestPayload>;
export type ReviewPayload = z.output<typeof reviewPayload>;
export type PullRequestJson = z.output<typeof pullRequestSchema>;

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

function identity(login: string | undefined, email: string | null | undefined, name: string | null | undefined) {
  return { ...(login ? { login } : {}), ...(email ? { email } : {}), ...(name ? { name } : {}) };
}

/** The workflow's view of a pull request event: the webhook's facts plus the commits and files from the API. */
export async function pullRequestEvent(
  octokit: Octokit,
  input: { kind: PullRequestEvent['kind']; deliveryId: string; owner: string; repo: string; pr: PullRequestJson; sender?: string; before?: string },
): Promise<PullRequestEvent> {
  const [commits, changedFiles] = await Promise.all([fetchCommits(octokit, input.owner, input.repo, input.pr.number), fetchChangedFiles(octokit, input.owner, input.repo, input.pr.number)]);
  return {
    kind: input.kind,
    deliveryId: input.deliveryId,
    headSha: input.pr.head.sha,
    ...(input.before ? { beforeSha: input.before } : {}),
    updatedAt: input.pr.updated_at,
    author: input.pr.user.login,
    title: input.pr.title,
    baseRef: input.pr.base.ref,
    headRef: input.pr.head.ref,
    ...(input.sender ? { pusher: input.sender } : {}),
    commits,
    changedFiles,
  };
}
