// The Microsoft Teams channel end to end over real HTTP: the Teams stand-in publishes OpenID metadata and a
// JWKS from its own RSA key and sends Action.Execute invokes with Bot Framework-style JWTs; the gateway (in
// this process, on a real port) verifies them with jose and signs the claim; the real changeWorkflow on the
// shared Temporal dev server decides; the real checks zone fetches the head from the GitHub stand-in.
import type { Client, WorkflowHandle } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.ts';
import { verifyTeamsRequest } from '../../../src/gateway/approvals/teams.ts';
import type { RunningStandin } from '../../../src/dev/github-standin/index.ts';
import type { ChangeStatus, PullRequestEvent } from '../../../src/shared/types.ts';
import { startTeamsStandin, type TeamsReply, type TeamsStandin } from '../../../src/dev/teams-standin/server.ts';
import { pullRequestSignal, statusQuery } from '../../../src/workflows/definitions.ts';
import { startGatewayStack, threePeopleConfig, type GatewayStack } from '../../helpers/gateway-stack.ts';

const sam = { aadObjectId: '5a3d0c1e-0000-4000-8000-00000000a001', name: 'Sam' };
const alex = { aadObjectId: '5a3d0c1e-0000-4000-8000-00000000a002', name: 'Alex' };
const jo = { aadObjectId: '5A3D0C1E-0000-4000-8000-00000000A003', name: 'Jo' };
const stranger = { aadObjectId: '5a3d0c1e-0000-4000-8000-00000000ffff', name: 'Mallory' };

let stack: GatewayStack;
let github: RunningStandin;
let teams: TeamsStandin;
let client: Client;
let taskQueue: string;

function configYaml(remote: string): string {
  // jo's object ID in lower case: the gateway matches Entra IDs case-insensitively.
  return threePeopleConfig(remote, {
    channels: {
      'sam-dev': `teams: ${sam.aadObjectId}`,
      'alex-reviewer': `teams: ${alex.aadObjectId}`,
      'jo-platform': `teams: ${jo.aadObjectId.toLowerCase()}`,
    },
    production: 'confirm: true',
  });
}

beforeAll(async () => {
  stack = await startGatewayStack({
    name: 'teams',
    configYaml,
    users: ['foureyes-bot', 'sam-dev', 'alex-reviewer', 'jo-platform'],
    orchestratorEnv: (s) => ({ GITHUB_TOKEN: s.tokens['foureyes-bot'] }),
    // The stand-in needs the gateway's URL and the gateway needs the stand-in's metadata URL: the gateway
    // reads its env per request, so it is filled in once both listen.
    beforeWorkers: async (s) => {
      teams = await startTeamsStandin({ gatewayUrl: s.gatewayUrl });
      s.onStop(() => teams.close());
      Object.assign(s.gatewayEnv, {
        TEAMS_APP_ID: teams.appId,
        TEAMS_TENANT_ID: teams.tenantId,
        TEAMS_OPENID_METADATA_URL: teams.openIdMetadataUrl,
      });
      return {};
    },
  });
  ({ github, client, taskQueue } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

/** Sam opens a pull request on the GitHub stand-in; the change starts as the webhook would start it. */
async function openChange(
  title = 'Speed up checkout',
): Promise<{ change: string; head: string; handle: WorkflowHandle }> {
  const { pull } = await github.standin.openPullRequest({
    repo: 'acme/shop',
    author: 'sam-dev',
    title,
    commits: [{ message: 'faster checkout', author: 'sam-dev' }],
    deliver: false,
  });
  const change = `acme/shop#${pull.number}`;
  const commits = github.standin.pullCommits(pull).map((c) => ({
    sha: c.sha,
    author: { email: c.author.email, name: c.author.name },
    committer: { email: c.committer.email, name: c.committer.name },
    message: c.message,
  }));
  const event: PullRequestEvent = {
    kind: 'opened',
    deliveryId: randomBytes(8).toString('hex'),
    headSha: pull.headSha,
    updatedAt: pull.updatedAt,
    author: pull.author,
    title: pull.title,
    baseRef: pull.baseRef,
    headRef: pull.headRef,
    commits,
  };
  const handle = await client.workflow.signalWithStart('changeWorkflow', {
    workflowId: `change:${change}`,
    taskQueue,
    args: [{ change }],
    signal: pullRequestSignal,
    signalArgs: [stack.signed(change, event)],
  });
  stack.track(handle);
  await waitForStage(handle, 'awaiting-approval');
  return { change, head: pull.headSha, handle };
}

async function waitForStage(handle: WorkflowHandle, stage: string, timeoutMs = 30_000): Promise<ChangeStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status?.stage === stage) return status;
    if (Date.now() > deadline)
      throw new Error(`stage never became ${stage}; last: ${status?.stage} (${status?.waitingFor})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** All plain text on a card, and all TextBlock text (which Teams would read as markdown). */
function cardText(reply: TeamsReply): { runs: string; blocks: string[] } {
  const body = reply.card?.body ?? [];
  const runs = body
    .flatMap((b) => (b.type === 'RichTextBlock' ? (b.inlines as Array<{ text: string }>).map((i) => i.text) : []))
    .join('');
  const blocks = body.filter((b) => b.type === 'TextBlock').map((b) => String(b.text));
  return { runs, blocks };
}

describe('Teams approvals (Action.Execute)', () => {
  it("counts a colleague's approval and says so on the card; refuses the author with the reason", async () => {
    const { change, head, handle } = await openChange();
    const author = await teams.execute(sam, { change, sha: head, environment: 'staging', decision: 'approve' });
    expect(author.status).toBe(200);
    expect(author.body).toMatchObject({ statusCode: 200, type: 'application/vnd.microsoft.card.adaptive' });
    expect(cardText(author).runs).toMatch(/^Refused: sam-dev's approval of .* was refused: sam-dev is an initiator/);

    const colleague = await teams.execute(alex, { change, sha: head, environment: 'staging', decision: 'approve' });
    console.log(
      `Teams Action.Execute answered with the outcome card in ${colleague.elapsedMs} ms (author's refusal: ${author.elapsedMs} ms, includes the first JWKS fetch)`,
    );
    expect(colleague.status).toBe(200);
    expect(cardText(colleague).runs).toMatch(
      new RegExp(
        `^Accepted: alex-reviewer's approval of ${change} at ${head.slice(0, 12)} for staging counted \\(staging\\)`,
      ),
    );
    const status = await handle.query(statusQuery);
    expect(status.approvals.map((a) => [a.claim.person, a.claim.channel, a.counted, a.claim.evidence])).toEqual([
      ['sam-dev', 'teams', false, { teamsUser: sam.aadObjectId, teamsTenant: teams.tenantId }],
      ['alex-reviewer', 'teams', true, { teamsUser: alex.aadObjectId, teamsTenant: teams.tenantId }],
    ]);
  });

  it('refuses an unknown Teams user with what to ask for, and records nothing', async () => {
    const { change, head, handle } = await openChange();
    const reply = await teams.execute(stranger, { change, sha: head, decision: 'approve', environment: 'staging' });
    expect(reply.status).toBe(200);
    expect(cardText(reply).runs).toContain(
      `Refused: your Teams user ${stranger.aadObjectId} is not listed in foureyes.yaml`,
    );
    expect(cardText(reply).runs).toContain(`teams: ${stranger.aadObjectId}`);
    expect((await handle.query(statusQuery)).approvals).toEqual([]);
  });

  it('production asks for confirmation first (plain-text title), then counts the confirmed click', async () => {
    const hostile = '**urgent** [click](https://evil.example) <at>Alex</at> _fix_';
    const { change, head, handle } = await openChange(hostile);
    const ask = await teams.execute(jo, { change, sha: head, environment: 'production', decision: 'approve' });
    expect(ask.status).toBe(200);
    const { runs, blocks } = cardText(ask);
    expect(runs).toContain(`Confirm: approve ${change} at ${head.slice(0, 12)} for production?`);
    // The untrusted title is only in a TextRun (plain text by the schema), never in a TextBlock.
    expect(runs).toContain(hostile);
    expect(blocks.join('\n')).not.toContain('evil.example');
    expect((await handle.query(statusQuery)).approvals).toEqual([]);
    const button = ask.card?.actions?.[0] as { type: string; data: Record<string, unknown> };
    expect(button).toMatchObject({
      type: 'Action.Execute',
      data: { change, sha: head, environment: 'production', decision: 'approve', confirmed: true },
    });

    const confirmed = await teams.execute(jo, button.data);
    expect(cardText(confirmed).runs).toMatch(/^Accepted: jo-platform's approval of .* for production counted/);
    const status = await handle.query(statusQuery);
    expect(status.approvals.map((a) => [a.claim.person, a.claim.channel, a.claim.environment, a.counted])).toEqual([
      ['jo-platform', 'teams', 'production', true],
    ]);
    // Upper-case object id from Teams matched the lower-case one in foureyes.yaml, and is recorded lower case.
    expect(status.approvals[0]?.claim.evidence.teamsUser).toBe(jo.aadObjectId.toLowerCase());
  });

  it('a message-extension search returns the waiting card for the head; its buttons count (production via confirmation)', async () => {
    const { change, head, handle } = await openChange('Add <at>Jo</at> **retry**');
    const found = await teams.search(alex, ` ${change} `);
    expect(found.status).toBe(200);
    const result = found.body?.composeExtension as {
      type: string;
      attachments: Array<{
        contentType: string;
        content: NonNullable<TeamsReply['card']>;
        preview: { content: { title: string } };
      }>;
    };
    expect(result.type).toBe('result');
    const attachment = result.attachments[0];
    expect(attachment?.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(attachment?.preview.content.title).toBe(`${change} at ${head.slice(0, 12)}`);
    const waitingCard = attachment?.content as NonNullable<TeamsReply['card']>;
    const { runs, blocks } = cardText({ status: 200, body: undefined, card: waitingCard, elapsedMs: 0 });
    expect(runs).toContain('Add <at>Jo</at> **retry**');
    expect(blocks.join('')).not.toContain('retry');
    const buttons = (waitingCard.actions ?? []) as Array<{ title: string; data: Record<string, unknown> }>;
    expect(buttons.map((b) => [b.title, b.data.environment ?? null, b.data.decision, b.data.sha])).toEqual([
      ['Approve staging', 'staging', 'approve', head],
      ['Approve production', 'production', 'approve', head],
      ['Reject', null, 'reject', head],
    ]);

    const staging = await teams.execute(alex, buttons[0]?.data as Record<string, unknown>);
    expect(cardText(staging).runs).toMatch(/^Accepted: alex-reviewer's approval .* for staging counted/);
    const ask = await teams.execute(jo, buttons[1]?.data as Record<string, unknown>);
    expect(cardText(ask).runs).toMatch(/^Confirm: /);
    expect((await handle.query(statusQuery)).approvals.map((a) => [a.claim.person, a.claim.environment])).toEqual([
      ['alex-reviewer', 'staging'],
    ]);

    const strangerSearch = await teams.search(stranger, change);
    expect(strangerSearch.body).toMatchObject({
      composeExtension: { type: 'message', text: expect.stringMatching(/^refused: your Teams user/) },
    });
    const unknown = await teams.search(alex, 'acme/shop#999996');
    expect(unknown.body).toMatchObject({
      composeExtension: { type: 'message', text: expect.stringMatching(/no open change acme\/shop#999996/) },
    });
    const empty = await teams.search(alex, '');
    expect(empty.body).toMatchObject({
      composeExtension: { type: 'message', text: expect.stringMatching(/type a change/) },
    });
    expect((await teams.search(alex, change, { audience: 'other-bot' })).status).toBe(401);
  });

  it('a rejection needs no confirmation and is recorded', async () => {
    const { change, head, handle } = await openChange();
    const reply = await teams.execute(jo, { change, sha: head, environment: 'production', decision: 'reject' });
    expect(cardText(reply).runs).toMatch(/jo-platform's rejection of/);
    expect((await handle.query(statusQuery)).approvals.map((a) => [a.claim.person, a.claim.decision])).toEqual([
      ['jo-platform', 'reject'],
    ]);
  });

  it('refuses a button that does not name a change and commit, and an unknown change', async () => {
    const bad = await teams.execute(alex, { change: 'acme/shop#1', decision: 'approve' });
    expect(cardText(bad).runs).toMatch(/does not name a change and commit; nothing was recorded/);
    const unknown = await teams.execute(alex, {
      change: 'acme/shop#999997',
      sha: 'a'.repeat(40),
      environment: 'staging',
      decision: 'approve',
    });
    expect(cardText(unknown).runs).toMatch(/no open change acme\/shop#999997/);
  });
});

describe('Teams request authentication', () => {
  it('another key, expired, wrong audience, wrong issuer, wrong tenant, serviceUrl mismatch, no token: each 401, nothing recorded', async () => {
    const { change, head, handle } = await openChange();
    const data = { change, sha: head, environment: 'staging', decision: 'approve' };
    const cases = {
      forgedSameKid: await teams.execute(alex, data, { forgedKey: 'published-kid' }),
      forgedUnknownKid: await teams.execute(alex, data, { forgedKey: 'unknown-kid' }),
      expired: await teams.execute(alex, data, { expiresIn: -6 * 60 }),
      notYetValid: await teams.execute(alex, data, { notBefore: 6 * 60 }),
      wrongAudience: await teams.execute(alex, data, { audience: 'another-bot-app-id' }),
      wrongIssuer: await teams.execute(alex, data, { issuer: 'https://sts.windows.net/evil/' }),
      wrongTenant: await teams.execute(alex, data, { tenantId: '00000000-0000-4000-8000-000000000bad' }),
      serviceUrlMismatch: await teams.execute(alex, data, { tokenServiceUrl: 'https://smba.trafficmanager.net/emea/' }),
      noToken: await teams.execute(alex, data, { noToken: true }),
    };
    const statuses = Object.fromEntries(Object.entries(cases).map(([name, r]) => [name, r.status]));
    expect(statuses).toEqual(Object.fromEntries(Object.keys(cases).map((name) => [name, 401])));
    const reasons = Object.fromEntries(Object.entries(cases).map(([name, r]) => [name, String(r.body?.error)]));
    console.log(`Teams 401 reasons: ${JSON.stringify(reasons)}`);
    expect(reasons.forgedSameKid).toMatch(/signature/);
    expect(reasons.forgedUnknownKid).toMatch(/key the Bot Framework does not publish/);
    expect(reasons.expired).toMatch(/expired/);
    expect(reasons.notYetValid).toMatch(/not valid yet/);
    expect(reasons.wrongAudience).toMatch(/audience/);
    expect(reasons.wrongIssuer).toMatch(/issued/);
    expect(reasons.wrongTenant).toMatch(/tenant/);
    expect(reasons.serviceUrlMismatch).toMatch(/serviceUrl/);
    expect(reasons.noToken).toMatch(/Bearer/);
    expect((await handle.query(statusQuery)).approvals).toEqual([]);
  });

  it('accepts up to five minutes of clock skew on exp', async () => {
    const reply = await teams.send(alex, { type: 'message', text: 'hello' }, { expiresIn: -4 * 60 });
    expect(reply.status).toBe(200);
  });

  it('fetches the JWKS again when a token names an unknown kid (key rotation), and otherwise uses the cached keys', async () => {
    const env = {
      TEAMS_APP_ID: teams.appId,
      TEAMS_TENANT_ID: teams.tenantId,
      TEAMS_OPENID_METADATA_URL: teams.openIdMetadataUrl,
    };
    // Cooldown 0 so the refetch is not held back by the 30 s the gateway uses against kid floods.
    const verify = async () =>
      (
        await verifyTeamsRequest(await teams.signedRequest(alex, { type: 'message', text: 'hi' }), env, {
          keyRefreshCooldownMs: 0,
        })
      ).activity.type;
    const start = teams.jwksFetches;
    expect(await verify()).toBe('message');
    expect(teams.jwksFetches).toBe(start + 1);
    expect(await verify()).toBe('message');
    expect(teams.jwksFetches).toBe(start + 1);
    await teams.rotateKey();
    expect(await verify()).toBe('message');
    expect(teams.jwksFetches).toBe(start + 2);
    // A key the Bot Framework endorses only for another channel does not speak for Teams.
    await teams.rotateKey(['skype']);
    await expect(verify()).rejects.toMatchObject({
      status: 401,
      message: expect.stringMatching(/not endorsed for the msteams channel/),
    });
    await teams.rotateKey();
  });
});

describe('Teams configuration', () => {
  const minimal = (people: string) =>
    `people:\n${people}\nenvironments:\n  - { name: staging, deploy: { run: "true" } }\nrepositories:\n  - { name: acme/shop, remote: /tmp/none.git }\n`;

  it('people[].teams must be an Entra ID object id, one person per id', () => {
    expect(() => parseConfig(minimal('  - { github: sam-dev, teams: "sam@example.com" }'), 't.yaml')).toThrow(
      /people\[0\]\.teams.*Entra ID/s,
    );
    expect(() =>
      parseConfig(
        minimal(
          `  - { github: sam-dev, teams: ${sam.aadObjectId} }\n  - { github: alex-reviewer, teams: ${sam.aadObjectId.toUpperCase()} }`,
        ),
        't.yaml',
      ),
    ).toThrow(/people\[1\]\.teams: Teams user .* is already people\[0\]/);
  });

  it('a gateway without TEAMS_APP_ID / TEAMS_TENANT_ID answers 503 and names the variables', async () => {
    const request = await teams.signedRequest(alex, { type: 'message' });
    await expect(verifyTeamsRequest(request, {})).rejects.toMatchObject({
      status: 503,
      message: expect.stringMatching(/TEAMS_APP_ID.*TEAMS_TENANT_ID/),
    });
  });
});
