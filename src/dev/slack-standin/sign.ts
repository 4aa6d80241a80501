// Slack's request signing, as Slack does it (https://api.slack.com/authentication/verifying-requests-from-slack):
// X-Slack-Signature = "v0=" + hex(HMAC-SHA256(signing secret, "v0:" + timestamp + ":" + raw body)).
// This is the stand-in's side (the sender); the gateway verifies with @slack/bolt.
import { createHmac } from 'node:crypto';

export function slackSignature(signingSecret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', signingSecret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export function signedSlackHeaders(
  signingSecret: string,
  body: string,
  timestamp = Math.floor(Date.now() / 1000),
): Record<string, string> {
  return {
    'content-type': 'application/x-www-form-urlencoded',
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': slackSignature(signingSecret, timestamp, body),
    'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
  };
}
