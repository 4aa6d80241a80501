// The break-glass announcement over real HTTP: the GitHub stand-in as its own process (the pull request
// comment through the orchestrator's authenticated client), the Slack stand-in (chat.postMessage), and the
// Teams stand-in (Entra ID and the Bot Connector) with the real gateway storing the signed conversation
// reference in Temporal, where the activity finds it. Each channel is best effort and independent; untrusted
// text (the reason) is inert everywhere; no token reaches a result or an error.
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmergencyAnnounceActivities } from '../../src/activities/emergency-announce.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createGateway } from '../../src/gateway/app.ts';
import type { StandinComment } from '../../src/dev/github-standin/model.ts';
import { generateSigningKey, type SigningKey } from '../../src/shared/approval-signature.ts';
import {
  emergencyView,
  type AnnounceEmergencyInput,
  type AnnounceEmergencyResult,
  type EmergencyRecord,
} from '../../src/shared/emergency.ts';
import { startSlackStandin, type SlackStandin } from '../../src/dev/slack-standin/server.ts';
import { startTeamsStandin, type PostedMessage, type TeamsStandin } from '../../src/dev/teams-standin/server.ts';
import { teamsConversationsWorkflowId } from '../../src/workflows/teams-conversations.ts';
import { startStandinProcess, type StandinProcess } from '../helpers/github-standin-process.ts';
import { testClient, testWorker, uniqueQueue } from '../helpers/temporal.ts';

const HOSTILE = '<!channel> @octocat [x](http://evil)';
const CHANNEL = 'C0EMERGENCY';
const APP_PASSWORD = `app-password-${randomBytes(12).toString('hex')}`;
const CONFIG = `
people:
  - { github: sam-dev, emails: [sam@example.com] }
  - { github: alex-reviewer, emails: [alex@example.com] }
environments:
  - { name: staging, deploy: { run: "true" } }
  - { name: production, deploy: { run: "true" } }
repositories:
  - { name: acme/shop, remote: /nonexistent }
`;

const work = mkdtempSync(join(tmpdir(), 'foureyes-emergency-announce-'));
let gh: StandinProcess;
let slack: SlackStandin;
let teams: TeamsStandin;
let client: Client;
let worker: Worker;
let running: Promise<void>;
let gateway: Server;
let key: SigningKey;
let taskQueue: string;
let conversationId: string;
let botToken: string;

beforeAll(async () => {
  gh = await startStandinProcess(join(work, 'github'));
  for (const login of ['sam-dev', 'alex-reviewer']) await gh.control('POST', '/users', { login });
  botToken = (await gh.control<{ token: string }>('POST', '/users', { login: 'foureyes-bot' })).token;
  await gh.control('POST', '/repos', { fullName: 'acme/shop' });
  slack = await startSlackStandin({ signingSecret: randomBytes(16).toString('hex') });

  // Teams: the gateway stores the conversation reference the stand-in's install hands it, as in production.
  client = await testClient();
  taskQueue = uniqueQueue('emergency-announce');
  worker = await testWorker({ taskQueue, workflows: true, activities: {} });
  running = worker.run();
  key = generateSigningKey();
  const gatewayEnv: NodeJS.ProcessEnv = {
    FOUREYES_APPROVAL_SIGNING_KEY: key.privateKey,
    FOUREYES_TASK_QUEUE: taskQueue,
  };
  const config = parseConfig(CONFIG, 'test.yaml');
  gateway = createGateway({ client, config: () => config, env: gatewayEnv });
  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  const gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
  teams = await startTeamsStandin({ gatewayUrl, appPassword: APP_PASSWORD });
  Object.assign(gatewayEnv, {
    TEAMS_APP_ID: teams.appId,
    TEAMS_TENANT_ID: teams.tenantId,
    TEAMS_OPENID_METADATA_URL: teams.openIdMetadataUrl,
  });
  const installed = await teams.install();
  expect(installed.reply.status).toBe(200);
  conversationId = installed.conversationId;
});

afterAll(async () => {
  await client?.workflow
    .getHandle(teamsConversationsWorkflowId(taskQueue))
    .terminate('test over')
    .catch(() => undefined);
  await teams?.close();
  await new Promise<void>((resolve) => (gateway ? gateway.close(() => resolve()) : resolve()));
  gateway?.closeAllConnections();
  worker?.shutdown();
  await running;
  await client?.connection.close();
  await slack?.close();
  await gh?.stop();
  rmSync(work, { recursive: true, force: true });
});

const slackEnv = () => ({ SLACK_BOT_TOKEN: slack.botToken, SLACK_CHANNEL: CHANNEL, SLACK_API_URL: slack.apiUrl });
const githubEnv = () => ({ GITHUB_TOKEN: botToken, GITHUB_API_URL: gh.apiUrl });
const teamsEnv = () => ({
  TEAMS_CONVERSATION_ID: conversationId,
  TEAMS_APP_ID: teams.appId,
  TEAMS_TENANT_ID: teams.tenantId,
  TEAMS_APP_PASSWORD: APP_PASSWORD,
  TEAMS_LOGIN_URL: teams.loginUrl,
});

async function openPull(): Promise<{ number: number; headSha: string }> {
  return gh.control('POST', '/repos/acme/shop/pulls', {
    author: 'sam-dev',
    title: 'Hotfix checkout',
    commits: [{ message: 'fix the outage' }],
    deliver: false,
  });
}

function announcement(pull: { number: number; headSha: string }, kind: 'declared' | 'overdue'): AnnounceEmergencyInput {
  const now = Date.now();
  const record: EmergencyRecord = {
    id: `nonce-${randomBytes(6).toString('hex')}`,
    sha: pull.headSha,
    declaredBy: 'alex-reviewer',
    channel: 'cli',
    reason: `checkout is down ${HOSTILE}`,
    declaredAt: new Date(now).toISOString(),
    windowEndsAt: new Date(now + 3_600_000).toISOString(),
    reviewDueAt: '2026-12-05T09:30:00.000Z',
    environments: ['staging', 'production'],
    keyId: 'k',
    signature: 's',
    usedFor: ['production'],
    ...(kind === 'overdue' ? { overdueAt: new Date(now).toISOString() } : {}),
  };
  return {
    kind,
    change: `acme/shop#${pull.number}`,
    title: 'Hotfix checkout',
    emergency: emergencyView(record, now),
    url: 'http://ui.example:8233/namespaces/default/workflows/change%3Aacme%2Fshop%231/run',
  };
}

function announce(env: NodeJS.ProcessEnv, input: AnnounceEmergencyInput): Promise<AnnounceEmergencyResult> {
  const activities = createEmergencyAnnounceActivities({ env, trustedKeys: [key.publicKey] });
  return new MockActivityEnvironment({ taskQueue }, { client }).run(activities.announceEmergency, input);
}

async function commentsOn(number: number): Promise<StandinComment[]> {
  const state = await gh.control<{ comments: StandinComment[] }>('GET', '/state');
  return state.comments.filter((c) => c.repo === 'acme/shop' && c.issue === number);
}

const slackMessagesFor = (change: string) =>
  slack.messages.filter((m) => m.channel === CHANNEL && JSON.stringify(m.raw).includes(change));

/** The text of a Teams card: its TextRuns (plain text by schema), and its TextBlocks (markdown). */
function teamsText(m: PostedMessage): { runs: string; blocks: string } {
  const body = m.card.body ?? [];
  const runs = body.flatMap((b) =>
    b.type === 'RichTextBlock' ? (b.inlines as Array<{ text: string }>).map((i) => i.text) : [],
  );
  const blocks = body.filter((b) => b.type === 'TextBlock').map((b) => String(b.text));
  return { runs: runs.join(''), blocks: blocks.join('\n') };
}

/** A local port nothing listens on (Slack down). */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

async function secrets(): Promise<string[]> {
  return [slack.botToken, APP_PASSWORD, ...teams.issuedTokens(), ...(await gh.control<string[]>('GET', '/tokens'))];
}

describe('announceEmergency', () => {
  it('declared: one Slack message, one Teams card and one pull request comment with the same facts, the reason inert', async () => {
    const pull = await openPull();
    const input = announcement(pull, 'declared');
    const result = await announce({ ...slackEnv(), ...githubEnv(), ...teamsEnv() }, input);
    expect(result).toEqual({
      summary: 'slack: posted; teams: posted; github: posted',
      slack: { posted: true },
      teams: { posted: true },
      github: { posted: true },
    });

    const [message, ...more] = slackMessagesFor(input.change);
    expect(more).toHaveLength(0);
    expect(message?.raw).toMatchObject({ unfurl_links: false, unfurl_media: false, parse: 'none' });
    const blocks = JSON.stringify(message?.blocks);
    expect(message?.blocks?.[0]).toMatchObject({ type: 'header' });
    expect(blocks).toContain('EMERGENCY change acme/shop#');
    expect(blocks).toContain('Declared by: alex-reviewer (via cli)');
    expect(blocks).toContain('Review due: 2026-12-05T09:30:00.000Z');
    expect(blocks).toContain('checkout is down &lt;!channel&gt; @\u200boctocat [x](http://evil)');
    expect(blocks).toContain(`foureyes approve ${input.change} --sha ${pull.headSha}`);
    for (const raw of [blocks, message?.text ?? '']) {
      expect(raw).not.toContain('<!channel>');
      expect(raw).not.toMatch(/@octocat/);
      expect(raw).not.toContain('<http://evil');
    }

    const [comment, ...others] = await commentsOn(pull.number);
    expect(others).toHaveLength(0);
    expect(comment?.user).toBe('foureyes-bot');
    const body = comment?.body ?? '';
    expect(body).toMatch(/^<!-- foureyes:emergency:nonce-[0-9a-f]+:declared -->\n### 🚨 EMERGENCY change/);
    expect(body).toContain('being deployed without approval');
    expect(body).toContain('**Declared by:** alex&#45;reviewer &#40;via cli&#41; at ');
    expect(body).toContain('**Environments:** staging, production');
    expect(body).toContain('**Review due:** 2026&#45;12&#45;05T09&#58;30&#58;00&#46;000Z');
    expect(body).toContain('checkout is down &#60;&#33;channel&#62; &#64;octocat &#91;x&#93;&#40;http&#58;//evil&#41;');
    expect(body).toContain(`\`foureyes approve ${input.change} --sha ${pull.headSha}\``);
    expect(body).toContain('approving pull request review at that commit');
    expect(body).not.toMatch(/@octocat|\[x\]\(|<!channel>|http:\/\/evil/);

    const [card, ...moreCards] = teams.messages(conversationId).filter((m) => teamsText(m).runs.includes(input.change));
    expect(moreCards).toHaveLength(0);
    const text = teamsText(card as PostedMessage);
    expect(text.runs).toContain('EMERGENCY change');
    expect(text.runs).toContain('Declared by: alex-reviewer (via cli)');
    expect(text.runs).toContain(`Reason: checkout is down ${HOSTILE}`);
    expect(text.runs).toContain('Review due: 2026-12-05T09:30:00.000Z');
    // The reason only ever in a TextRun (plain text by schema); no mention entities.
    expect(text.blocks).not.toContain('evil');
    expect(JSON.stringify(card?.card)).not.toContain('msteams');

    const all = JSON.stringify(result);
    for (const secret of await secrets()) expect(all).not.toContain(secret);
  });

  it('overdue: says the review is overdue and the audit records a finding, in Slack and on the pull request', async () => {
    const pull = await openPull();
    const input = announcement(pull, 'overdue');
    const result = await announce({ ...slackEnv(), ...githubEnv() }, input);
    expect(result.summary).toBe(
      'slack: posted; teams: Teams is not configured (TEAMS_CONVERSATION_ID); github: posted',
    );
    const [comment] = await commentsOn(pull.number);
    expect(comment?.body).toMatch(/^<!-- foureyes:emergency:nonce-[0-9a-f]+:overdue -->/);
    expect(comment?.body).toContain('retroactive review OVERDUE');
    expect(comment?.body).toContain('the audit records a finding');
    expect(comment?.body).toContain('**Review was due:**');
    expect(JSON.stringify(slackMessagesFor(input.change)[0]?.blocks)).toContain('the audit records a finding');
  });

  it('Slack not configured: says so, and the pull request still gets its comment (once, even when asked again)', async () => {
    const pull = await openPull();
    const input = announcement(pull, 'declared');
    const result = await announce(githubEnv(), input);
    expect(result.slack).toEqual({ posted: false, reason: 'Slack is not configured' });
    expect(result.github).toEqual({ posted: true });
    expect(slackMessagesFor(input.change)).toHaveLength(0);
    // A retry after a lost answer finds the comment by its marker and does not post it twice.
    await announce(githubEnv(), input);
    expect(await commentsOn(pull.number)).toHaveLength(1);
  });

  it('Slack refusing the token (invalid_auth): Slack not posted with the reason, GitHub posted, no token anywhere', async () => {
    const pull = await openPull();
    const input = announcement(pull, 'declared');
    const wrong = `xoxb-wrong-${randomBytes(8).toString('hex')}`;
    const result = await announce({ ...slackEnv(), SLACK_BOT_TOKEN: wrong, ...githubEnv() }, input);
    expect(result.slack).toEqual({ posted: false, reason: 'Slack refused chat.postMessage: invalid_auth' });
    expect(result.github).toEqual({ posted: true });
    expect(result.summary).toContain('slack: Slack refused chat.postMessage: invalid_auth');
    expect(await commentsOn(pull.number)).toHaveLength(1);
    const all = JSON.stringify(result);
    for (const secret of [wrong, ...(await secrets())]) expect(all).not.toContain(secret);
  });

  it('a Teams outage: Teams not posted with the reason, Slack and the pull request still posted', async () => {
    const pull = await openPull();
    const input = announcement(pull, 'declared');
    teams.connectorOutage = 503;
    const result = await announce({ ...slackEnv(), ...githubEnv(), ...teamsEnv() }, input).finally(() => {
      teams.connectorOutage = undefined;
    });
    expect(result.teams.posted).toBe(false);
    expect(result.teams.reason).toMatch(/^Teams: the Bot Connector did not post the message \(HTTP 503\)/);
    expect(result.slack).toEqual({ posted: true });
    expect(result.github).toEqual({ posted: true });
    expect(slackMessagesFor(input.change)).toHaveLength(1);
    expect(await commentsOn(pull.number)).toHaveLength(1);
  });

  it('every configured channel failing for now: a retryable error naming each, without a token', async () => {
    const pull = await openPull();
    await gh.control('POST', '/faults', {
      method: 'POST',
      path: `/repos/acme/shop/issues/${pull.number}/comments`,
      status: 503,
      count: 10,
    });
    const closed = await closedPortUrl();
    const error = await announce(
      { ...slackEnv(), SLACK_API_URL: closed, ...githubEnv() },
      announcement(pull, 'declared'),
    ).then(
      () => undefined,
      (e: unknown) => e as Error & { nonRetryable?: boolean; type?: string },
    );
    await gh.control('DELETE', '/faults');
    expect(error?.message).toMatch(
      /^could not announce the emergency anywhere: slack: Slack chat\.postMessage at http:\/\/127\.0\.0\.1:\d+ unreachable: TypeError; teams: Teams is not configured \(TEAMS_CONVERSATION_ID\); github: HTTP 503/,
    );
    expect(error?.nonRetryable).toBe(false);
    for (const secret of await secrets())
      expect(JSON.stringify({ m: error?.message, s: error?.stack })).not.toContain(secret);

    // A permanent refusal in one of them is not worth a retry: the result says why, nothing is thrown.
    const result = await announce(
      { ...slackEnv(), SLACK_CHANNEL: '', GITHUB_TOKEN: 'ghp_not-a-token', GITHUB_API_URL: gh.apiUrl },
      announcement(pull, 'declared'),
    );
    expect(result.github.posted).toBe(false);
    expect(result.github.reason).toContain('refused GITHUB_TOKEN');
    expect(JSON.stringify(result)).not.toContain('ghp_not-a-token');
  });
});
