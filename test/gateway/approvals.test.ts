// Approvals through every channel but GitHub reviews, end to end over real HTTP: the gateway (in this
// process, on a real port) signs what Slack or a GitHub token authenticated; the real changeWorkflow
// (bundled, on the shared Temporal dev server) verifies and decides; the real checks zone fetches the head
// from the GitHub stand-in's git remote. Slack and GitHub are the local stand-ins, signing as they do.
import type { Client, WorkflowHandle } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningStandin } from '../../src/dev/github-standin/index.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import type { ApprovalOutcome, ChangeStatus, PullRequestEvent, SignedApproval } from '../../src/shared/types.ts';
import { startSlackStandin, type SlackStandin } from '../../src/dev/slack-standin/server.ts';
import { approvalSignal, approvalUpdate, pullRequestSignal, statusQuery } from '../../src/workflows/definitions.ts';
import { pullRequestEvent, startGatewayStack, threePeopleConfig, type GatewayStack } from '../helpers/gateway-stack.ts';

const SLACK_SECRET = randomBytes(20).toString('hex');
const sam = { id: 'U0SAMDEV1', name: 'sam' };
const alex = { id: 'U0ALEXRV1', name: 'alex' };
const jo = { id: 'U0JOPLAT1', name: 'jo' };

let stack: GatewayStack;
let github: RunningStandin;
let slack: SlackStandin;
let gatewayUrl: string;
let client: Client;
let taskQueue: string;
let tokens: Record<string, string>;

function configYaml(remote: string): string {
  return threePeopleConfig(remote, {
    channels: { 'sam-dev': 'slack: U0SAMDEV1', 'alex-reviewer': 'slack: U0ALEXRV1', 'jo-platform': 'slack: U0JOPLAT1' },
    production: 'confirm: true',
  });
}

beforeAll(async () => {
  stack = await startGatewayStack({
    name: 'approvals',
    configYaml,
    users: ['sam-dev', 'alex-reviewer', 'jo-platform', 'foureyes-bot'],
    gatewayEnv: () => ({ SLACK_SIGNING_SECRET: SLACK_SECRET }),
    // The real orchestrator zone reports to the GitHub stand-in with a bot token of its own and posts
    // approval requests to the Slack stand-in.
    orchestratorEnv: (s) => ({ GITHUB_TOKEN: s.tokens['foureyes-bot'] }),
    beforeWorkers: async (s) => {
      slack = await startSlackStandin({ signingSecret: SLACK_SECRET, gatewayUrl: s.gatewayUrl });
      s.onStop(() => slack.close());
      return { SLACK_BOT_TOKEN: slack.botToken, SLACK_API_URL: slack.apiUrl, SLACK_CHANNEL: 'C0DEPLOYS' };
    },
  });
  ({ github, gatewayUrl, client, taskQueue, tokens } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

/** Sam opens a pull request on the GitHub stand-in; the change starts as the webhook would start it. */
async function openChange(
  title = 'Speed up checkout',
): Promise<{ change: string; number: number; head: string; handle: WorkflowHandle }> {
  const { pull } = await github.standin.openPullRequest({
    repo: 'acme/shop',
    author: 'sam-dev',
    title,
    commits: [{ message: 'faster checkout', author: 'sam-dev' }],
    deliver: false,
  });
  const change = `acme/shop#${pull.number}`;
  const handle = await client.workflow.signalWithStart('changeWorkflow', {
    workflowId: `change:${change}`,
    taskQueue,
    args: [{ change }],
    signal: pullRequestSignal,
    signalArgs: [stack.signed(change, pullEvent('opened', pull.number))],
  });
  stack.track(handle);
  await waitForStage(handle, 'awaiting-approval');
  return { change, number: pull.number, head: pull.headSha, handle };
}

function pullEvent(kind: 'opened' | 'synchronize', number: number, beforeSha?: string): PullRequestEvent {
  return pullRequestEvent(github, number, kind, beforeSha ? { before: beforeSha, pusher: 'sam-dev' } : undefined);
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

async function postApproval(
  number: number,
  token: string | undefined,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${gatewayUrl}/api/changes/acme/shop/${number}/approvals`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    ms: Math.round(performance.now() - started),
  };
}

function runCli(args: string[], token: string): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/foureyes.js', 'approve', ...args, '--gateway', gatewayUrl],
      {
        cwd: join(import.meta.dirname, '..', '..'),
        env: { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_TOKEN: token },
        timeout: 60_000,
      },
      (error, stdout, stderr) =>
        resolve({
          code: error ? Number((error as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr,
          ms: Math.round(performance.now() - started),
        }),
    );
  });
}

describe('Slack request signatures', () => {
  const now = () => Math.floor(Date.now() / 1000);

  it('accepts a request signed the way Slack signs it', async () => {
    const reply = await slack.command(alex, 'status acme/shop#999999');
    expect(reply.status).toBe(200);
    expect(String(reply.body?.text)).toContain('no change acme/shop#999999');
  });

  it('refuses stale, future, wrongly signed and unsigned requests with 401', async () => {
    const stale = await slack.command(alex, 'status acme/shop#1', { timestamp: now() - 6 * 60 });
    const future = await slack.command(alex, 'status acme/shop#1', { timestamp: now() + 6 * 60 });
    const forged = await slack.command(alex, 'status acme/shop#1', { signingSecret: 'not-the-secret' });
    const garbage = await slack.command(alex, 'status acme/shop#1', { signature: 'v0=deadbeef' });
    const buttonForged = await slack.click(
      alex,
      { blocks: [{ elements: [{ action_id: 'foureyes_reject', value: '{}' }] }] },
      'foureyes_reject',
      { signingSecret: 'nope' },
    );
    const unsigned = await fetch(`${gatewayUrl}/slack/commands`, { method: 'POST', body: 'text=status' });
    expect([stale.status, future.status, forged.status, garbage.status, buttonForged.status, unsigned.status]).toEqual([
      401, 401, 401, 401, 401, 401,
    ]);
    expect(String(stale.body?.error)).toMatch(/older than five minutes/);
    expect(String(future.body?.error)).toMatch(/future/);
    // Nothing reached the forger's response_url.
    expect(slack.responses.filter((r) => r.id === buttonForged.responseUrlId)).toEqual([]);
  });
});

describe('approvals', () => {
  it('refuses an unknown Slack user with a message, and records nothing', async () => {
    const { change, handle } = await openChange();
    const reply = await slack.command({ id: 'U0STRANGER', name: 'mallory' }, `approve ${change}`);
    expect(reply.status).toBe(200);
    expect(String(reply.body?.text)).toMatch(/refused: your Slack user U0STRANGER is not listed in foureyes.yaml/);
    expect((await handle.query(statusQuery)).approvals).toEqual([]);
  });

  it('counts a CLI approval with a colleague token, refuses the author token with the reason', async () => {
    const { change, handle } = await openChange();
    const author = await runCli([change], tokens['sam-dev'] as string);
    console.log(
      `CLI approval by the author: exit ${author.code}, ${/answered in \d+ ms/.exec(author.stdout)?.[0]}, ${author.ms} ms with process start`,
    );
    expect(author.code).not.toBe(0);
    expect(author.stdout).toMatch(/REFUSED: sam-dev is an initiator/);
    expect(author.stdout).toMatch(/— refused: sam-dev is an initiator/);
    expect(author.stdout).toContain(`${change}  Speed up checkout`);

    const colleague = await runCli(
      [change, '--env', 'staging', '--comment', 'looks right'],
      tokens['alex-reviewer'] as string,
    );
    console.log(
      `CLI approval by a colleague: exit ${colleague.code}, ${/answered in \d+ ms/.exec(colleague.stdout)?.[0]}, ${colleague.ms} ms with process start`,
    );
    expect(colleague.stderr).toBe('');
    expect(colleague.code).toBe(0);
    expect(colleague.stdout).toMatch(/approval of .* was accepted for staging/);
    const status = await handle.query(statusQuery);
    const records = status.approvals.map((a) => [a.claim.person, a.claim.channel, a.counted]);
    expect(records).toEqual([
      ['sam-dev', 'cli', false],
      ['alex-reviewer', 'cli', true],
    ]);
    expect(status.approvals[1]?.claim.evidence).toMatchObject({ githubLogin: 'alex-reviewer' });
    expect(status.approvals[1]?.claim.comment).toBe('looks right');
  });

  it('API: 401 without or with a bad token, 400 naming the field, 404 for an unknown change; answers within a second', async () => {
    const { number, head } = await openChange();
    expect((await postApproval(number, undefined, { sha: head })).status).toBe(401);
    expect((await postApproval(number, 'ghp_not_a_token', { sha: head })).status).toBe(401);
    // Every approval names the commit the person saw.
    const noSha = await postApproval(number, tokens['jo-platform'], {});
    expect(noSha.status).toBe(400);
    expect(noSha.body).toMatchObject({
      field: 'sha',
      error: expect.stringMatching(/^missing field sha: name the commit you reviewed/),
    });
    const badDecision = await postApproval(number, tokens['jo-platform'], { sha: head, decision: 'maybe' });
    expect(badDecision.status).toBe(400);
    expect(badDecision.body.field).toBe('decision');
    const impersonation = await postApproval(number, tokens['sam-dev'], { sha: head, person: 'jo-platform' });
    expect(impersonation.status).toBe(400);
    expect(String(impersonation.body.error)).toMatch(/person.*taken from the token/);
    expect((await postApproval(999_998, tokens['jo-platform'], { sha: head })).status).toBe(404);

    const answer = await postApproval(number, tokens['jo-platform'], { sha: head, environment: 'production' });
    console.log(`API approval answered in ${answer.ms} ms`);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ counted: true, environments: ['production'], stage: 'awaiting-approval' });
  });

  it('Slack: the waiting message has safe text and buttons; a click counts and the outcome reaches the thread', async () => {
    const { change, head, handle } = await openChange('<!channel> @here fix & <@U0JOPLAT1> *bold*');
    // The workflow itself posts the request when the change starts waiting for approval, once per head.
    const message = await slack.waitForMessage(
      (m) => JSON.stringify(m.raw).includes(change) && JSON.stringify(m.raw).includes(head.slice(0, 12)),
    );
    const everything = JSON.stringify(message.raw);
    expect(everything).not.toMatch(/<!channel>|<@U0JOPLAT1>|[^\\]@here/);
    expect(everything).toContain('&lt;!channel&gt;');
    const buttons = (
      message.blocks?.find((b) => b.type === 'actions') as { elements: Array<{ action_id: string; confirm?: unknown }> }
    ).elements;
    expect(buttons.map((b) => [b.action_id, Boolean(b.confirm)])).toEqual([
      ['foureyes_approve:staging', false],
      ['foureyes_approve:production', true],
      ['foureyes_reject', false],
    ]);

    // The author's click is refused, in the thread, with the reason.
    const refused = await slack.click(sam, message, 'foureyes_approve:staging');
    expect(refused.status).toBe(200);
    expect(String((await slack.waitForResponse(refused.responseUrlId)).body.text)).toMatch(/refused/);

    const started = performance.now();
    const click = await slack.click(alex, message, 'foureyes_approve:staging');
    const answer = await slack.waitForResponse(click.responseUrlId);
    console.log(
      `Slack button: acknowledged in ${click.elapsedMs} ms, outcome in the thread after ${Math.round(performance.now() - started)} ms`,
    );
    expect(click.status).toBe(200);
    expect(answer.body).toMatchObject({ thread_ts: message.ts, replace_original: false });
    expect(String(answer.body.text)).toMatch(/alex-reviewer's approval of .* counted/);
    const after = await handle.query(statusQuery);
    expect(
      after.approvals.map((a) => [a.claim.person, a.claim.channel, a.counted, a.claim.evidence.slackUser]),
    ).toEqual([
      ['sam-dev', 'slack', false, 'U0SAMDEV1'],
      ['alex-reviewer', 'slack', true, 'U0ALEXRV1'],
    ]);
  });

  it('Slack: /foureyes approve for production asks for a confirmation first, then counts', async () => {
    const { change, handle } = await openChange();
    const ask = await slack.command(jo, `approve ${change} production ship it`);
    expect(ask.status).toBe(200);
    // The command names no commit: it records nothing and offers a button pinned to the head, with the confirmation.
    expect(String(ask.body?.text)).toMatch(/press the button below to approve .* the commit shown here/);
    expect((await handle.query(statusQuery)).approvals).toEqual([]);
    const blocks = ask.body?.blocks as Array<{ elements?: Array<{ confirm?: unknown }> }>;
    expect(blocks.find((b) => b.elements)?.elements?.[0]?.confirm).toBeDefined();
    const click = await slack.click(jo, { blocks }, 'foureyes_approve:pinned');
    const answer = await slack.waitForResponse(click.responseUrlId);
    expect(String(answer.body.text)).toMatch(/jo-platform's approval .* for production counted/);

    // Staging asks for no confirmation, but the command still names no commit: a button, and the comment with it.
    const staging = await slack.command(alex, `approve ${change} staging fine by me`);
    console.log(`Slack slash command answered in ${staging.elapsedMs} ms`);
    expect(staging.body).toMatchObject({ response_type: 'ephemeral' });
    const stagingBlocks = staging.body?.blocks as Array<{ elements?: Array<{ confirm?: unknown }> }>;
    expect(stagingBlocks.find((b) => b.elements)?.elements?.[0]?.confirm).toBeUndefined();
    const stagingClick = await slack.click(alex, { blocks: stagingBlocks }, 'foureyes_approve:pinned');
    expect(String((await slack.waitForResponse(stagingClick.responseUrlId)).body.text)).toMatch(
      /alex-reviewer's approval .* for staging counted/,
    );
    expect(
      (await handle.query(statusQuery)).approvals.find((a) => a.claim.person === 'alex-reviewer')?.claim.comment,
    ).toBe('fine by me');
  });

  it('a forged signal sent straight to Temporal is refused, visible in status and history', async () => {
    const { change, head, handle } = await openChange();
    const forged: SignedApproval = {
      claim: {
        v: 1,
        change,
        sha: head,
        person: 'alex-reviewer',
        channel: 'slack',
        decision: 'approve',
        evidence: { slackUser: 'U0ALEXRV1' },
        at: new Date().toISOString(),
        nonce: 'forged-1',
      },
      signature: 'bad',
    };
    await handle.signal(approvalSignal, forged);
    // A real-looking but wrong signature (signed by another key) is refused the same way, and answered.
    const other = generateSigningKey();
    const { signClaim } = await import('../../src/shared/approval-signature.ts');
    const outcome: ApprovalOutcome = await handle.executeUpdate(approvalUpdate, {
      args: [signClaim({ ...forged.claim, nonce: 'forged-2' }, other)],
    });
    expect(outcome.counted).toBe(false);
    const status = await handle.query(statusQuery);
    expect(status.approvals.map((a) => [a.claim.nonce, a.counted])).toEqual([
      ['forged-1', false],
      ['forged-2', false],
    ]);
    expect(status.approvals[0]?.reason).toMatch(/signature/i);
    expect(status.stage).toBe('awaiting-approval');
    const history = await handle.fetchHistory();
    const signaled =
      history.events?.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'approval') ?? [];
    expect(signaled).toHaveLength(1);
    expect(JSON.stringify(status.timeline)).toMatch(/approve-refused/);
  });

  it('a replayed, validly signed approval for an older SHA is refused', async () => {
    const { number, head, handle } = await openChange();
    const first = await postApproval(number, tokens['jo-platform'], { sha: head, environment: 'production' });
    expect(first.body.counted).toBe(true);
    // Sam pushes: the approval of the old head is void.
    const { before } = await github.standin.pushCommits({
      repo: 'acme/shop',
      number,
      pusher: 'sam-dev',
      commits: [{ message: 'one more thing', author: 'sam-dev' }],
      deliver: false,
    });
    expect(before).toBe(head);
    await handle.signal(
      pullRequestSignal,
      stack.signed(`acme/shop#${number}`, pullEvent('synchronize', number, before)),
    );
    await waitForStage(handle, 'awaiting-approval');
    // An operator with read access to history takes the gateway's signed claim out of it and replays it.
    const history = await handle.fetchHistory();
    const accepted = history.events?.find(
      (e) => e.workflowExecutionUpdateAcceptedEventAttributes,
    )?.workflowExecutionUpdateAcceptedEventAttributes;
    const payload = accepted?.acceptedRequest?.input?.args?.payloads?.[0]?.data;
    const signed = JSON.parse(Buffer.from(payload as Uint8Array).toString('utf8')) as SignedApproval;
    expect(signed.claim.sha).toBe(head);
    const replayed: ApprovalOutcome = await handle.executeUpdate(approvalUpdate, { args: [signed] });
    expect(replayed.counted).toBe(false);
    expect(replayed.reason).toMatch(/replay|head|superseded|older|not the current/i);
    await handle.signal(approvalSignal, signed);
    const status = await handle.query(statusQuery);
    expect(status.approvals.filter((a) => a.claim.nonce === signed.claim.nonce).map((a) => a.counted)).toEqual([
      true,
      false,
      false,
    ]);
    expect(status.environments.find((e) => e.name === 'production')?.approvedBy).toEqual([]);
  });
});
