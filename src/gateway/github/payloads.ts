// The parts of GitHub's webhook payloads the gateway reads, validated (a payload that does not fit is a 400
// with the field that is wrong), and the pull request events built from them. A `pull_request` webhook
// carries neither the commits nor the files of the pull request: the event goes to the workflow without
// them and the orchestrator looks them up (src/activities/pull-request-changes.ts), off the acknowledgement
// path. Only a review that starts a change still reads them here (`pullRequestEvent`).
import { z } from 'zod';
import type { Octokit } from '@octokit/rest';
import type { PullRequestEvent } from '../../shared/types.ts';
import { fetchPullRequestChanges } from '../../activities/pull-request-changes.ts';

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
  // `edited`: what changed; foureyes acts on a retargeted base only.
  changes: z.object({ base: z.object({ ref: z.object({ from: z.string() }).optional() }).optional() }).optional(),
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

type EventInput = {
  kind: PullRequestEvent['kind'];
  deliveryId: string;
  pr: PullRequestJson;
  sender?: string;
  before?: string;
};

/** The webhook's facts only: no `commits`, so the workflow looks them (and the files) up itself. */
export function pullRequestFacts(input: EventInput): PullRequestEvent {
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
  };
}

/** The webhook's facts plus the commits and files from the API (a review that starts a change). */
export async function pullRequestEvent(
  octokit: Octokit,
  input: EventInput & { owner: string; repo: string },
): Promise<PullRequestEvent> {
  const { commits, changedFiles } = await fetchPullRequestChanges(octokit, input.owner, input.repo, input.pr.number);
  return { ...pullRequestFacts(input), commits, changedFiles };
}
