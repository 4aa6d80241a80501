// Orchestrator activity: announce a break-glass change (declared, or its review overdue) in Slack, in the Teams
// conversation where configured, and on the pull request. Best effort per channel: one channel not configured
// or failing never stops the others; each says in its result whether it posted and why not. The activity
// throws (retryably) only when every configured channel failed with a retryable error, so a retry never posts
// twice where a post went through; the pull request comment carries a marker and is not posted again either.
// No token (Slack's, the bot's, GitHub's) appears in a result or an error.
import { ApplicationFailure } from '@temporalio/activity';
import {
  emergencyComment,
  emergencyCommentMarker,
  emergencySlackMessage,
  emergencyTeamsCard,
} from '../presentation/emergency-announcement.ts';
import { parseChangeRef } from '../shared/change-ref.ts';
import type { AnnounceEmergencyInput, AnnounceEmergencyResult } from '../shared/emergency.ts';
import {
  GitHubConfigError,
  hasGitHubCredentials,
  lazyGitHubClients,
  RateLimitedError,
  type GitHubClients,
} from './github-client.ts';
import { postSlackMessage } from './slack.ts';
import { postTeamsCard } from './teams.ts';
import { BotConnectorTokens, teamsBotSettings } from './teams-connector.ts';

type Channel = 'slack' | 'teams' | 'github';
type Outcome = { posted: boolean; reason?: string };
/** A channel's outcome, and whether a failure is worth retrying; undefined = not configured. */
type Attempt = { outcome: Outcome; retryable?: boolean; configured: boolean };

export interface EmergencyAnnounceOptions {
  env: NodeJS.ProcessEnv;
  /** The gateway's public keys: a Teams conversation reference counts only when one of them signed it. */
  trustedKeys: string[];
  /** The orchestrator's GitHub clients (shared with its other GitHub activities); default: from env. */
  github?: () => GitHubClients;
}

/** Whether an error is worth retrying: permanent refusals (bad credentials, unknown channel, 4xx) are not. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof ApplicationFailure) return !error.nonRetryable;
  if (error instanceof GitHubConfigError) return false;
  if (error instanceof RateLimitedError) return true;
  const status = (error as { status?: number }).status;
  return !(typeof status === 'number' && status >= 400 && status < 500 && status !== 408 && status !== 429);
}

/** One line of an error: what failed and how, never a header or a body (Octokit's first line names the call). */
function reasonOf(error: unknown): string {
  const status = (error as { status?: unknown }).status;
  const line = String((error as Error)?.message ?? error).split('\n')[0] ?? '';
  return `${typeof status === 'number' ? `HTTP ${status}: ` : ''}${line}`.slice(0, 300);
}

async function attempt(configured: boolean, reason: string, post: () => Promise<unknown>): Promise<Attempt> {
  if (!configured) return { configured, outcome: { posted: false, reason } };
  try {
    await post();
    return { configured, outcome: { posted: true } };
  } catch (error) {
    return { configured, outcome: { posted: false, reason: reasonOf(error) }, retryable: isRetryable(error) };
  }
}

/** The pull request comment, once per emergency and kind: an earlier attempt's comment is found by its marker. */
async function postComment(github: GitHubClients, input: AnnounceEmergencyInput): Promise<void> {
  const ref = parseChangeRef(input.change);
  const octokit = await github.forRepo(ref.owner, ref.repo);
  const marker = emergencyCommentMarker(input);
  const self = (await github.selfLogin(ref.owner, ref.repo)).toLowerCase();
  const comments = await octokit.paginate(octokit.rest.issues.listComments, {
    owner: ref.owner,
    repo: ref.repo,
    issue_number: ref.number,
    per_page: 100,
  });
  if (comments.some((c) => c.body?.startsWith(marker) && c.user?.login.toLowerCase() === self)) return;
  const body = emergencyComment(input);
  await octokit.rest.issues.createComment({ owner: ref.owner, repo: ref.repo, issue_number: ref.number, body });
}

function summaryOf(attempts: Record<Channel, Attempt>): string {
  return (Object.entries(attempts) as Array<[Channel, Attempt]>)
    .map(([channel, a]) => `${channel}: ${a.outcome.posted ? 'posted' : (a.outcome.reason ?? 'not posted')}`)
    .join('; ');
}

export function createEmergencyAnnounceActivities(options: EmergencyAnnounceOptions) {
  const { env, trustedKeys } = options;
  const github = options.github ?? lazyGitHubClients(env);
  // Read at start so that a half-configured Teams bot refuses to start the orchestrator (as for the approval card).
  const teams = teamsBotSettings(env);
  const tokens = teams ? new BotConnectorTokens(teams) : undefined;

  return {
    async announceEmergency(input: AnnounceEmergencyInput): Promise<AnnounceEmergencyResult> {
      const [slack, teamsPost, gh] = await Promise.all([
        attempt(Boolean(env.SLACK_BOT_TOKEN && env.SLACK_CHANNEL), 'Slack is not configured', () =>
          postSlackMessage(env, emergencySlackMessage(input)),
        ),
        attempt(Boolean(teams && tokens), 'Teams is not configured (TEAMS_CONVERSATION_ID)', async () =>
          teams && tokens ? postTeamsCard(teams, tokens, trustedKeys, emergencyTeamsCard(input)) : undefined,
        ),
        attempt(hasGitHubCredentials(env), 'GitHub is not configured', () => postComment(github(), input)),
      ]);
      const attempts = { slack, teams: teamsPost, github: gh };
      const summary = summaryOf(attempts);
      const configured = Object.values(attempts).filter((a) => a.configured);
      if (configured.length > 0 && configured.every((a) => !a.outcome.posted && a.retryable))
        throw ApplicationFailure.retryable(`could not announce the emergency anywhere: ${summary}`, 'AnnounceFailed');
      return { summary, slack: slack.outcome, teams: teamsPost.outcome, github: gh.outcome };
    },
  };
}
