// The orchestrator's proactive Teams card end to end over real HTTP: the Teams stand-in installs the app
// (a signed conversationUpdate to the gateway's /teams/messages, which stores the signed reference in
// Temporal), then plays Entra ID (client-credentials token) and the Bot Connector (post / update activity,
// bearer token checked). The real changeWorkflow and orchestrator zone run on the shared Temporal dev server;
// reviewers click the posted card's own buttons through the gateway's real Teams route.
import type { Client, WorkflowHandle } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BotConnectorTokens, teamsBotSettings } from '../../src/activities/teams-connector.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import { signTeamsConversation } from '../../src/shared/teams-conversation.ts';
import type { ChangeStatus } from '../../src/shared/types.ts';
import { startTeamsStandin, type PostedMessage, type TeamsStandin } from '../../src/dev/teams-standin/server.ts';
import { pullRequestSignal, statusQuery } from '../../src/workflows/definitions.ts';
import { teamsConversationSignal, teamsConversationsWorkflowId } from '../../src/workflows/teams-conversations.ts';
import { changeStatus } from '../../src/client/read-change.ts';
import { startFoureyes } from '../helpers/foureyes-process.ts';
import { encodeHistory } from '../workflows/harness.ts';
import {
  deployZoneDouble,
  pullRequestEvent,
  startGatewayStack,
  threePeopleConfig,
  type GatewayStack,
} from '../helpers/gateway-stack.ts';

const sam = { aadObjectId: '5a3d0c1e-0000-4000-8000-00000000b001', name: 'Sam' };
const alex = { aadObjectId: '5a3d0c1e-0000-4000-8000-00000000b002', name: 'Alex' };
const jo = { aadObjectId: '5a3d0c1e-0000-4000-8000-00000000b003', name: 'Jo' };
const APP_PASSWORD = `app-password-${randomBytes(12).toString('hex')}`;

let stack: GatewayStack;
let teams: TeamsStandin;
let client: Client;
let conversationId: string;

beforeAll(async () => {
  stack = await startGatewayStack({
    name: 'teams-card',
    configYaml: (remote) =>
      threePeopleConfig(remote, {
        channels: {
          'sam-dev': `teams: ${sam.aadObjectId}`,
          'alex-reviewer': `teams: ${alex.aadObjectId}`,
          'jo-platform': `teams: ${jo.aadObjectId}`,
        },
        production: 'confirm: true',
      }),
    users: ['foureyes-bot', 'sam-dev', 'alex-reviewer', 'jo-platform'],
    orchestratorEnv: (s) => ({ GITHUB_TOKEN: s.tokens['foureyes-bot'] }),
    deployActivities: deployZoneDouble(),
    beforeWorkers: async (s) => {
      teams = await startTeamsStandin({ gatewayUrl: s.gatewayUrl, appPassword: APP_PASSWORD });
      s.onStop(() => teams.close());
      Object.assign(s.gatewayEnv, {
        TEAMS_APP_ID: teams.appId,
        TEAMS_TENANT_ID: teams.tenantId,
        TEAMS_OPENID_METADATA_URL: teams.openIdMetadataUrl,
      });
      // An administrator adds the app to the team: Teams tells the bot, the gateway keeps the reference.
      const installed = await teams.install();
      expect(installed.reply.status).toBe(200);
      conversationId = installed.conversationId;
      return {
        TEAMS_CONVERSATION_ID: conversationId,
        TEAMS_APP_ID: teams.appId,
        TEAMS_TENANT_ID: teams.tenantId,
        TEAMS_APP_PASSWORD: APP_PASSWORD,
        TEAMS_LOGIN_URL: teams.loginUrl,
      };
    },
  });
  ({ client } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

async function openChange(
  title = 'Speed up checkout',
): Promise<{ number: number; change: string; head: string; handle: WorkflowHandle }> {
  const { pull } = await stack.github.standin.openPullRequest({
    repo: 'acme/shop',
    author: 'sam-dev',
    title,
    commits: [{ message: 'faster checkout', author: 'sam-dev' }],
    deliver: false,
  });
  const change = `acme/shop#${pull.number}`;
  const handle = await client.workflow.signalWithStart('changeWorkflow', {
    workflowId: `change:${change}`,
    taskQueue: stack.taskQueue,
    args: [{ change }],
    signal: pullRequestSignal,
    signalArgs: [stack.signed(change, pullRequestEvent(stack.github, pull.number, 'opened'))],
  });
  stack.track(handle);
  return { number: pull.number, change, head: pull.headSha, handle };
}

/** Plain text of a card (every TextRun), and the TextBlocks Teams would read as markdown. */
function textOf(card: PostedMessage['card']): { runs: string; blocks: string } {
  const body = card.body ?? [];
  return {
    runs: body
      .flatMap((b) => (b.type === 'RichTextBlock' ? (b.inlines as Array<{ text: string }>).map((i) => i.text) : []))
      .join(''),
    blocks: body
      .filter((b) => b.type === 'TextBlock')
      .map((b) => String(b.text))
      .join('\n'),
  };
}

type Button = { title: string; data: Record<string, unknown> };
/** The buttons of the card as it is now (the stand-in's message changes with every update). */
const buttons = (m: PostedMessage) => structuredClone((m.card.actions ?? []) as Button[]);

async function eventually<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** The card for `sha` in the conversation once its text matches `pattern`. */
function cardFor(sha: string, pattern: RegExp, timeoutMs?: number): Promise<PostedMessage> {
  return eventually(
    `the card for ${sha.slice(0, 12)} to show ${pattern}`,
    () =>
      teams
        .messages(conversationId)
        .find((m) => textOf(m.card).runs.includes(sha.slice(0, 12)) && pattern.test(textOf(m.card).runs)),
    timeoutMs,
  );
}

describe('the proactive Teams approval card', () => {
  it('is posted when the change waits, and the same message follows the clicks on it to delivered', async () => {
    const title = '**urgent** [click](https://evil.example) <at>Alex</at>';
    const { change, head, handle } = await openChange(title);
    const posted = await cardFor(
      head,
      /Waiting for approval: staging \(0\/1\), production \(0\/1, asks for confirmation\)/,
    );
    const [approveStaging, approveProduction] = buttons(posted);
    expect(textOf(posted.card).runs).toContain(title);
    expect(textOf(posted.card).blocks).not.toContain('evil.example');
    expect(buttons(posted).map((b) => [b.title, b.data.environment ?? null, b.data.sha])).toEqual([
      ['Approve staging', 'staging', head],
      ['Approve production', 'production', head],
      ['Reject', null, head],
    ]);

    // The author clicks Approve on the posted card: refused, and the card says so.
    const own = await teams.execute(sam, approveStaging?.data as Record<string, unknown>);
    expect(own.status).toBe(200);
    await cardFor(head, /Refused attempt: sam-dev via teams: sam-dev is an initiator/);

    const started = Date.now();
    await teams.execute(alex, approveStaging?.data as Record<string, unknown>);
    const approved = await cardFor(head, /Approved by staging: alex-reviewer/);
    console.log(
      `Teams card updated with the approval ${Date.now() - started} ms after the click (message ${approved.id}, version ${approved.versions})`,
    );
    expect(approved.id).toBe(posted.id);

    // Production asks for confirmation; the confirmed click counts; the pipeline delivers.
    const ask = await teams.execute(jo, approveProduction?.data as Record<string, unknown>);
    const confirm = (ask.card?.actions?.[0] as Button | undefined)?.data;
    expect(confirm).toMatchObject({ sha: head, environment: 'production', confirmed: true });
    await teams.execute(jo, confirm as Record<string, unknown>);
    const delivered = await cardFor(
      head,
      new RegExp(`Delivered: ${head.slice(0, 12)} is deployed to staging, production`),
    );
    expect(delivered.id).toBe(posted.id);
    expect(buttons(delivered)).toEqual([]);
    expect(textOf(delivered.card).runs).toMatch(/Approved by staging: alex-reviewer; production: jo-platform/);
    expect(teams.messages(conversationId).filter((m) => textOf(m.card).runs.includes(change))).toHaveLength(1);
    expect((await handle.query(statusQuery)).stage).toBe('delivered');

    // Neither the app password nor a Bot Connector token is in the change's history.
    const events = await handle.fetchHistory();
    const history = JSON.stringify(events.events);
    for (const secret of [APP_PASSWORD, ...teams.issuedTokens()]) expect(history).not.toContain(secret);
    // The replay test keeps this path (patch teams-approval-card, syncTeamsCard) replaying.
    if (process.env.FOUREYES_WRITE_HISTORIES === '1')
      writeFileSync(
        join(import.meta.dirname, '../workflows/histories/teams-card.json'),
        encodeHistory(handle.workflowId, (await handle.describe()).runId, events),
      );
    expect(teams.refusedConnectorCalls).toBe(0);
  });

  it('says "voided by a push" on the old card and posts a new one for the new head', async () => {
    const { number, head, handle } = await openChange();
    const first = await cardFor(head, /Waiting for approval/);
    const { pull, before } = await stack.github.standin.pushCommits({
      repo: 'acme/shop',
      number,
      pusher: 'sam-dev',
      commits: [{ message: 'one more', author: 'sam-dev' }],
      deliver: false,
    });
    await handle.signal(
      pullRequestSignal,
      stack.signed(
        `acme/shop#${number}`,
        pullRequestEvent(stack.github, number, 'synchronize', { before, pusher: 'sam-dev' }),
      ),
    );
    const voided = await cardFor(
      head,
      new RegExp(
        `Voided by a push: sam-dev pushed ${pull.headSha.slice(0, 12)}, so approvals of ${head.slice(0, 12)} no longer count`,
      ),
    );
    expect(voided.id).toBe(first.id);
    expect(buttons(voided)).toEqual([]);
    const second = await cardFor(pull.headSha, /Waiting for approval/);
    expect(second.id).not.toBe(first.id);
    expect(buttons(second).every((b) => b.data.sha === pull.headSha)).toBe(true);
  });

  it('a Teams outage holds nothing up: status shows the retry, the card arrives once Teams is back', async () => {
    teams.connectorOutage = 503;
    let change: string;
    let head: string;
    let handle: WorkflowHandle;
    try {
      ({ change, head, handle } = await openChange());
      const retrying = await eventually('syncTeamsCard to show as retrying', async () => {
        const status: ChangeStatus = await changeStatus(handle);
        return status.retrying?.find((r) => r.activity === 'syncTeamsCard');
      });
      expect(retrying.lastFailure).toMatch(
        /Teams: the Bot Connector did not post the approval card \(HTTP 503\); retrying/,
      );
      // Approvals through the gateway do not need the Bot Connector: the change moves on.
      const reply = await teams.execute(alex, { change, sha: head, environment: 'staging', decision: 'approve' });
      expect(reply.card?.body?.length).toBeGreaterThan(0);
      expect((await handle.query(statusQuery)).approvals.map((a) => a.counted)).toEqual([true]);
    } finally {
      teams.connectorOutage = undefined;
    }
    const card = await cardFor(head, /Approved by staging: alex-reviewer/, 60_000);
    expect(buttons(card).map((b) => b.title)).toEqual(['Approve production', 'Reject']);
  });

  it('never sends the bot token to a conversation reference the gateway did not sign (planted through Temporal)', async () => {
    // An insider who can signal workflows plants a newer reference for the configured conversation that points
    // at a server of theirs: once unsigned, once signed with a key of their own.
    const seen: string[] = [];
    const attacker = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'stolen' }));
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    try {
      const serviceUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`;
      const reference = {
        v: 1 as const,
        conversationId,
        serviceUrl,
        tenantId: teams.tenantId,
        botId: `28:${teams.appId}`,
        installed: true,
        at: new Date(Date.now() + 86_400_000).toISOString(),
      };
      const registry = client.workflow.getHandle(teamsConversationsWorkflowId(stack.taskQueue));
      await registry.signal(teamsConversationSignal, {
        reference,
        signature: '00'.repeat(64),
        keyId: stack.key.publicKey,
      });
      await registry.signal(teamsConversationSignal, signTeamsConversation(reference, generateSigningKey()));
      const { head } = await openChange();
      await cardFor(head, /Waiting for approval/);
      expect(seen).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => attacker.close(() => resolve()));
    }
  });
});

describe('the bot credential', () => {
  const openssl = (dir: string, name: string) => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, `${name}.key`),
        '-out',
        join(dir, `${name}.pem`),
        '-days',
        '1',
        '-subj',
        `/CN=${name}`,
      ],
      { stdio: 'ignore' },
    );
    return {
      TEAMS_APP_CERTIFICATE_FILE: join(dir, `${name}.pem`),
      TEAMS_APP_PRIVATE_KEY_FILE: join(dir, `${name}.key`),
    };
  };

  it('a certificate gets a token; another certificate, a wrong password and an unknown tenant are refused for good, naming what to check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'foureyes-teams-cert-'));
    const registered = openssl(dir, 'foureyes-bot');
    const other = openssl(dir, 'someone-else');
    const standin = await startTeamsStandin({
      gatewayUrl: stack.gatewayUrl,
      botCertificatePem: readFileSync(registered.TEAMS_APP_CERTIFICATE_FILE, 'utf8'),
      appPassword: APP_PASSWORD,
    });
    try {
      const base = {
        TEAMS_CONVERSATION_ID: '19:x@thread.tacv2',
        TEAMS_APP_ID: standin.appId,
        TEAMS_TENANT_ID: standin.tenantId,
        TEAMS_LOGIN_URL: standin.loginUrl,
      };
      const tokens = (env: NodeJS.ProcessEnv) =>
        new BotConnectorTokens(teamsBotSettings(env) as NonNullable<ReturnType<typeof teamsBotSettings>>);
      expect(await tokens({ ...base, ...registered }).token()).toMatch(/^[\w-]{20,}$/);
      expect(standin.tokenRequests).toBe(1);
      const refusals = await Promise.allSettled([
        tokens({ ...base, ...other }).token(),
        tokens({ ...base, TEAMS_APP_PASSWORD: 'wrong' }).token(),
        tokens({
          ...base,
          TEAMS_APP_PASSWORD: APP_PASSWORD,
          TEAMS_TENANT_ID: '00000000-0000-4000-8000-000000000bad',
        }).token(),
      ]);
      for (const refusal of refusals) {
        expect(refusal).toMatchObject({
          status: 'rejected',
          reason: {
            type: 'TeamsConfigError',
            nonRetryable: true,
            message: expect.stringMatching(
              /Entra ID refused the bot's token request \((invalid_client|invalid_request)\).*check TEAMS_APP_ID/,
            ),
          },
        });
        expect(String((refusal as PromiseRejectedResult).reason.message)).not.toContain(APP_PASSWORD);
      }
    } finally {
      await standin.close();
    }
  });

  it('an orchestrator with TEAMS_CONVERSATION_ID but no bot credential refuses to start and names the variables', async () => {
    const orchestrator = startFoureyes(['worker', 'orchestrator'], {
      TEAMS_CONVERSATION_ID: '19:abc@thread.tacv2',
      TEAMS_TENANT_ID: teams.tenantId,
      FOUREYES_TASK_QUEUE: `teams-start-${randomBytes(4).toString('hex')}`,
    });
    expect(await orchestrator.exited).toBe(1);
    expect(orchestrator.output()).toMatch(
      /TEAMS_CONVERSATION_ID is set, .* but TEAMS_APP_ID, TEAMS_APP_PASSWORD \(or TEAMS_APP_CERTIFICATE_FILE and TEAMS_APP_PRIVATE_KEY_FILE\) are not set/,
    );
    expect(orchestrator.output()).not.toMatch(/at .*\.ts:\d+/);
  });
});
