// Orchestrator activity: announce a break-glass change (declared, or its review overdue) in Slack.
// Best effort per channel: one channel not configured or failing never stops the others.
import type { AnnounceEmergencyInput, AnnounceEmergencyResult } from '../shared/emergency.ts';

export function emergencyText(input: AnnounceEmergencyInput): string {
  const e = input.emergency;
  const head = `${input.change} @ ${e.sha.slice(0, 7)}`;
  return input.kind === 'declared'
    ? `:rotating_light: EMERGENCY change ${head} is being deployed without approval (${e.environments.join(', ')}), declared by ${e.declaredBy}: ${e.reason}. Retroactive review due ${e.reviewDueAt}: ${input.url}`
    : `:rotating_light: OVERDUE: the emergency change ${head} declared by ${e.declaredBy} was not reviewed by ${e.reviewDueAt}. An eligible person who took no part in it approves ${e.sha.slice(0, 7)}: ${input.url}`;
}

export function createEmergencyAnnounceActivities(env: NodeJS.ProcessEnv) {
  return {
    async announceEmergency(input: AnnounceEmergencyInput): Promise<AnnounceEmergencyResult> {
      const text = emergencyText(input);
      const slack = await postSlack(env, text);
      const teams = { posted: false, reason: 'not implemented yet' };
      const github = { posted: false, reason: 'not implemented yet' };
      return { summary: `slack: ${slack.posted ? 'posted' : slack.reason}`, slack, teams, github };
    },
  };
}

async function postSlack(env: NodeJS.ProcessEnv, text: string): Promise<{ posted: boolean; reason?: string }> {
  const token = env.SLACK_BOT_TOKEN;
  const channel = env.SLACK_CHANNEL;
  if (!token || !channel) return { posted: false, reason: 'Slack is not configured' };
  const apiUrl = (env.SLACK_API_URL || 'https://slack.com/api').replace(/\/+$/, '');
  const response = await fetch(`${apiUrl}/chat.postMessage`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ channel, text, unfurl_links: false, unfurl_media: false, parse: 'none' }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await response.json().catch(() => ({}))) as { ok?: boolean; error?: string };
  return body.ok ? { posted: true } : { posted: false, reason: `Slack: ${String(body.error ?? response.status)}` };
}
