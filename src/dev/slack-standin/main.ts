// Runs the Slack stand-in on its own for the sandbox: `node --import tsx src/dev/slack-standin/main.ts`.
// SLACK_SIGNING_SECRET must match the gateway's; FOUREYES_GATEWAY_URL is where it sends commands.
// Type `approve owner/repo#12` (anything after `/foureyes`) with `as U0ALEXRV1 ` in front to pick the user.
import { createInterface } from 'node:readline';
import { startSlackStandin } from './server.ts';

const signingSecret = process.env.SLACK_SIGNING_SECRET;
if (!signingSecret) {
  console.error('slack-standin: set SLACK_SIGNING_SECRET to the secret the gateway verifies with');
  process.exit(2);
}
const standin = await startSlackStandin({
  signingSecret,
  gatewayUrl: process.env.FOUREYES_GATEWAY_URL ?? 'http://127.0.0.1:3000',
  ...(process.env.SLACK_BOT_TOKEN ? { botToken: process.env.SLACK_BOT_TOKEN } : {}),
  port: Number(process.env.SLACK_STANDIN_PORT ?? 0),
});
console.log(`slack-standin: SLACK_API_URL=${standin.apiUrl}`);
console.log('slack-standin: type "as <SlackUserId> approve owner/repo#12 [env] [comment]"; Ctrl-D to stop');
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  const match = /^as\s+(\S+)\s+(.+)$/.exec(line.trim());
  if (!match) {
    console.log('expected: as <SlackUserId> <subcommand ...>');
    continue;
  }
  const reply = await standin.command({ id: match[1] as string, name: match[1] as string }, match[2] as string);
  console.log(`${reply.status} (${reply.elapsedMs} ms) ${reply.body ? String(reply.body.text) : reply.text}`);
}
await standin.close();
