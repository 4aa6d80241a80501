// Orchestrator activity: post "waiting for approval" to Slack with Approve / Reject buttons (Block Kit).
// chat.postMessage at SLACK_API_URL (default https://slack.com/api) with SLACK_BOT_TOKEN into SLACK_CHANNEL.
// Not configured = nothing posted (Slack is optional); a Slack error is retried by Temporal, except
// permanent ones (bad token, unknown channel). The token never appears in errors or results.
import { ApplicationFailure } from '@temporalio/activity';
import { approvalRequestBlocks, type ApprovalRequestMessage } from '../shared/slack-format.ts';

export type NotifySlackInput = ApprovalRequestMessage;

export interface NotifySlackResult {
  posted: boolean;
  /** Why nothing was posted (not configured). */
  reason?: string;
  channel?: string;
  /** Slack's message timestamp: the thread approval outcomes go to. */
  ts?: string;
}

const PERMANENT = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'invalid_blocks',
  'missing_scope',
]);

/** Slack's chat.postMessage settings, or undefined when Slack is not configured (it is optional). */
function slackSettings(env: NodeJS.ProcessEnv): { token: string; channel: string; apiUrl: string } | undefined {
  const token = env.SLACK_BOT_TOKEN;
  const channel = env.SLACK_CHANNEL;
  if (!token || !channel) return undefined;
  return { token, channel, apiUrl: (env.SLACK_API_URL || 'https://slack.com/api').replace(/\/+$/, '') };
}

export const SLACK_NOT_CONFIGURED = 'Slack is not configured (SLACK_BOT_TOKEN and SLACK_CHANNEL)';

/**
 * Posts one message (text and Block Kit blocks) into SLACK_CHANNEL. Throws a retryable error for an outage or
 * a rate limit and a non-retryable ApplicationFailure for a permanent refusal; never with the token in it.
 */
export async function postSlackMessage(
  env: NodeJS.ProcessEnv,
  message: { text: string; blocks: unknown[] },
): Promise<NotifySlackResult> {
  const settings = slackSettings(env);
  if (!settings) return { posted: false, reason: SLACK_NOT_CONFIGURED };
  const { token, channel, apiUrl } = settings;
  let response: Response;
  try {
    response = await fetch(`${apiUrl}/chat.postMessage`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
      // unfurl off: a PR title cannot make Slack fetch a URL; parse none: no automatic @-linking.
      body: JSON.stringify({ channel, ...message, unfurl_links: false, unfurl_media: false, parse: 'none' }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    throw new Error(`Slack chat.postMessage at ${apiUrl} unreachable: ${(error as Error).name}`);
  }
  if (response.status === 429) throw new Error('Slack rate limit (429); retrying');
  if (!response.ok) throw new Error(`Slack chat.postMessage answered HTTP ${response.status}`);
  const body = (await response.json().catch(() => ({}))) as {
    ok?: boolean;
    error?: string;
    ts?: string;
    channel?: string;
  };
  if (!body.ok) {
    const error = String(body.error ?? 'unknown_error').slice(0, 60);
    if (PERMANENT.has(error))
      throw ApplicationFailure.nonRetryable(`Slack refused chat.postMessage: ${error}`, 'SlackError');
    throw new Error(`Slack refused chat.postMessage: ${error}`);
  }
  return { posted: true, channel: body.channel ?? channel, ...(body.ts ? { ts: body.ts } : {}) };
}

export function createSlackActivities(env: NodeJS.ProcessEnv) {
  return {
    async notifySlack(input: NotifySlackInput): Promise<NotifySlackResult> {
      return postSlackMessage(env, approvalRequestBlocks(input));
    },
  };
}
