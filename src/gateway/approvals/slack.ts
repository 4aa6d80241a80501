// The Slack channel: a request counts as Slack's only with a valid `v0` signature (HMAC of
// `v0:timestamp:rawBody` with the app's signing secret, checked by @slack/bolt's verifySlackRequest) and a
// timestamp within five minutes of now in either direction. The Slack user maps to a person in
// foureyes.yaml (`people[].slack`); the name Slack sends is never used as an identity.
import { verifySlackRequest } from '@slack/bolt';
import type { FoureyesConfig } from '../../config/schema.ts';
import { HttpError } from '../http.ts';
import { ChannelRefusal, type AuthenticatedPerson, type ChannelRequest } from './channel.ts';

export const SLACK_WINDOW_SECONDS = 5 * 60;

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Throws HttpError(401) unless Slack signed exactly these bytes within the window. */
export function verifySlackSignature(
  request: Pick<ChannelRequest, 'headers' | 'rawBody'>,
  signingSecret: string | undefined,
  nowMs = Date.now(),
): void {
  if (!signingSecret)
    throw new HttpError(
      503,
      'Slack is not configured on this gateway: set SLACK_SIGNING_SECRET to the Slack app signing secret',
    );
  const signature = one(request.headers['x-slack-signature']);
  const timestampText = one(request.headers['x-slack-request-timestamp']);
  if (!signature || !timestampText)
    throw new HttpError(401, 'not a Slack request: X-Slack-Signature and X-Slack-Request-Timestamp are required');
  if (!/^\d{1,12}$/.test(timestampText)) throw new HttpError(401, 'invalid X-Slack-Request-Timestamp');
  const timestamp = Number(timestampText);
  const nowSec = Math.floor(nowMs / 1000);
  // verifySlackRequest refuses stale timestamps; a timestamp from the future is refused here as well.
  if (timestamp > nowSec + SLACK_WINDOW_SECONDS)
    throw new HttpError(401, 'Slack request timestamp is in the future; check the clock');
  if (timestamp < nowSec - SLACK_WINDOW_SECONDS)
    throw new HttpError(401, 'Slack request is older than five minutes (replayed or delayed)');
  try {
    verifySlackRequest({
      signingSecret,
      body: request.rawBody.toString('utf8'),
      headers: { 'x-slack-signature': signature, 'x-slack-request-timestamp': timestamp },
      nowMilliseconds: nowMs,
    });
  } catch {
    // Bolt's message is generic enough, but keep ours fixed: no detail helps a forger.
    throw new HttpError(401, 'invalid Slack request signature');
  }
}

/** Maps a verified Slack user to the person in foureyes.yaml, or refuses with a message for the user. */
export function slackPerson(
  config: FoureyesConfig,
  userId: string,
  teamId: string | undefined,
  userName?: string,
): AuthenticatedPerson {
  const person = config.people.find((p) => p.slack === userId);
  if (!person) {
    throw new ChannelRefusal(
      `your Slack user ${userId} is not listed in foureyes.yaml, so foureyes cannot tell who you are; ask a foureyes administrator to add \`slack: ${userId}\` to your entry under people`,
    );
  }
  return {
    person: person.github,
    evidence: {
      slackUser: userId,
      ...(teamId ? { slackTeam: teamId } : {}),
      ...(userName ? { slackUserName: userName.slice(0, 80) } : {}),
    },
  };
}

export type SlashCommand =
  | { kind: 'approve' | 'reject'; change: string; environment?: string; comment?: string }
  | { kind: 'status'; change: string }
  | { kind: 'help'; problem?: string };

export const SLASH_USAGE =
  'usage: `/foureyes approve owner/repo#12 [environment] [comment]`, `/foureyes reject owner/repo#12 [comment]`, `/foureyes status owner/repo#12`';

/** `/foureyes approve acme/shop#12 production looks good` → approve, change, environment, comment. */
export function parseSlashCommand(text: string, environments: readonly string[]): SlashCommand {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [verb, change, ...rest] = words;
  if (!verb || verb === 'help') return { kind: 'help' };
  if (verb !== 'approve' && verb !== 'reject' && verb !== 'status')
    return { kind: 'help', problem: `unknown subcommand "${verb.slice(0, 30)}"` };
  if (!change) return { kind: 'help', problem: `\`${verb}\` needs a change such as acme/shop#12` };
  if (verb === 'status') return { kind: 'status', change };
  let environment: string | undefined;
  if (rest[0] && environments.includes(rest[0])) environment = rest.shift();
  const comment = rest.join(' ').slice(0, 2000);
  return { kind: verb, change, ...(environment ? { environment } : {}), ...(comment ? { comment } : {}) };
}
