// GitHub's own example payloads (@octokit/webhooks-examples: github.com and every GitHub Enterprise Server
// version it ships) through the gateway, signed as GitHub signs them. Every example of the events a
// repository or App webhook delivers to foureyes is applied or answered 2xx with the reason it is ignored,
// never a 4xx, a 5xx or a crash; the ones foureyes acts on do what a user expects. The fixtures are used
// as they are: a field foureyes relies on that a real payload lacks is a bug in src/gateway/github/payloads.ts.
import { WorkflowNotFoundError } from '@temporalio/client';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitHubStandin } from '../../src/dev/github-standin/index.ts';
import type { ChangeStatus } from '../../src/shared/types.ts';
import { startGatewayStack, threePeopleConfig, type GatewayStack } from '../helpers/gateway-stack.ts';

const EVENTS = [
  'pull_request',
  'pull_request_review',
  'pull_request_review_comment',
  'push',
  'check_suite',
  'check_run',
  'installation',
  'ping',
];

interface Example {
  source: string;
  event: string;
  index: number;
  payload: Record<string, unknown> & {
    action?: string;
    repository?: { full_name: string };
    pull_request?: { number: number; title: string; user: { login: string }; head: { sha: string } };
  };
}

/** Every example file of the installed package (api.github.com and ghes-*), for the events above. */
function examples(): Example[] {
  const root = dirname(createRequire(import.meta.url).resolve('@octokit/webhooks-examples/package.json'));
  const out: Example[] = [];
  for (const source of readdirSync(root)
    .filter((d) => d === 'api.github.com' || d.startsWith('ghes-'))
    .sort()) {
    const definitions = JSON.parse(readFileSync(join(root, source, 'index.json'), 'utf8')) as Array<{
      name: string;
      examples: Example['payload'][];
    }>;
    for (const d of definitions.filter((x) => EVENTS.includes(x.name)))
      d.examples.forEach((payload, index) => out.push({ source, event: d.name, index, payload }));
  }
  return out;
}

const all = examples();
const SECRET = randomBytes(20).toString('hex');
// The examples' repositories exist only in foureyes.yaml, not on the stand-in: read their status as an operator.
const OPERATOR = randomBytes(32).toString('hex');
let stack: GatewayStack;
const repositories = [...new Set(all.flatMap((e) => (e.payload.repository ? [e.payload.repository.full_name] : [])))];

beforeAll(async () => {
  stack = await startGatewayStack({
    name: 'examples',
    // The examples' repositories are configured (an unconfigured one is a 422 by design, tested elsewhere).
    configYaml: (remote) =>
      `${threePeopleConfig(remote)}${repositories.map((name) => `  - { name: ${name}, remote: ${JSON.stringify(remote)} }\n`).join('')}`,
    users: ['sam-dev', 'alex-reviewer', 'jo-platform', 'foureyes-bot'],
    gatewayEnv: (s) => ({
      GITHUB_WEBHOOK_SECRET: SECRET,
      GITHUB_TOKEN: s.tokens['foureyes-bot'] as string,
      FOUREYES_OPERATOR_TOKENS: OPERATOR,
    }),
    orchestratorEnv: (s) => ({ GITHUB_TOKEN: s.tokens['foureyes-bot'] as string }),
  });
});
afterAll(() => stack?.stop());

async function deliver(example: Example): Promise<{ status: number; body: Record<string, unknown> }> {
  const text = JSON.stringify(example.payload);
  const res = await fetch(`${stack.gatewayUrl}/webhooks/github`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': example.event,
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': GitHubStandin.sign(text, SECRET),
    },
    body: text,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const workflowId = (e: Example) => `change:${e.payload.repository?.full_name}#${e.payload.pull_request?.number}`;

/** Ends the example's change, if any, so that each example is judged on its own. */
async function fresh(e: Example): Promise<void> {
  if (!e.payload.pull_request) return;
  const handle = stack.client.workflow.getHandle(workflowId(e));
  await handle.terminate('next example').catch((error: unknown) => {
    if (!(error instanceof WorkflowNotFoundError) && !/already completed/i.test(String(error))) throw error;
  });
}

async function statusOf(e: Example, ok: (s: ChangeStatus) => boolean): Promise<ChangeStatus> {
  const [owner, repo] = (e.payload.repository?.full_name ?? '').split('/');
  let last: ChangeStatus | undefined;
  for (let i = 0; i < 150; i++) {
    const res = await fetch(`${stack.gatewayUrl}/api/changes/${owner}/${repo}/${e.payload.pull_request?.number}`, {
      headers: { authorization: `Bearer ${OPERATOR}` },
    });
    if (res.ok) last = (await res.json()) as ChangeStatus;
    if (last && ok(last)) return last;
    await sleep(200);
  }
  throw new Error(`${e.source} ${e.event}[${e.index}]: status never matched; last ${JSON.stringify(last)}`);
}

const label = (e: Example) => `${e.source} ${e.event}${e.payload.action ? `.${e.payload.action}` : ''} [${e.index}]`;
const opened = all.find(
  (e) => e.source === 'api.github.com' && e.event === 'pull_request' && e.payload.action === 'opened',
) as Example;

describe("GitHub's example webhook payloads", () => {
  it('covers every listed event in every example file of the package', () => {
    expect(new Set(all.map((e) => e.event))).toEqual(new Set(EVENTS));
    expect(new Set(all.map((e) => e.source))).toContain('api.github.com');
    expect(all.length).toBeGreaterThan(100);
  });

  it('answers every example 2xx: applied, or ignored with the reason, never 4xx/5xx', async () => {
    const answers: string[] = [];
    for (const example of all) {
      await fresh(example);
      const { status, body } = await deliver(example);
      answers.push(`${label(example)}: ${status} ${JSON.stringify(body)}`);
      expect(status, label(example) + JSON.stringify(body)).toBeGreaterThanOrEqual(200);
      expect(status, label(example) + JSON.stringify(body)).toBeLessThan(300);
      const outcome = body.accepted ?? body.ignored ?? body.pong;
      expect(outcome, `${label(example)}: ${JSON.stringify(body)}`).toBeTruthy();
      if (typeof body.ignored === 'string') expect(body.ignored.length, label(example)).toBeGreaterThan(10);
    }
    // What foureyes acts on is accepted; the rest is ignored, each with why.
    const accepted = answers.filter((a) => a.includes('"accepted"'));
    expect(accepted.length).toBeGreaterThanOrEqual(
      all.filter(
        (e) => e.event === 'pull_request' && ['opened', 'reopened', 'synchronize'].includes(String(e.payload.action)),
      ).length,
    );
    for (const e of ['push', 'check_suite', 'check_run', 'installation', 'pull_request_review_comment'])
      expect(answers.filter((a) => a.includes(` ${e}`) && a.includes('"accepted"'))).toEqual([]);
  });

  it('starts a change from each opened, reopened and synchronize example with its head SHA, author and title', async () => {
    for (const example of all.filter(
      (e) => e.event === 'pull_request' && ['opened', 'reopened', 'synchronize'].includes(String(e.payload.action)),
    )) {
      await fresh(example);
      const { status, body } = await deliver(example);
      expect([status, body.accepted, body.action], label(example)).toEqual([
        202,
        'pull_request',
        example.payload.action,
      ]);
      const pr = example.payload.pull_request as NonNullable<Example['payload']['pull_request']>;
      const s = await statusOf(example, (x) => x.headSha === pr.head.sha);
      expect([s.change, s.headSha, s.author.toLowerCase(), s.title], label(example)).toEqual([
        `${example.payload.repository?.full_name}#${pr.number}`,
        pr.head.sha,
        pr.user.login.toLowerCase(),
        pr.title,
      ]);
      expect(s.initiators, label(example)).toContain(pr.user.login.toLowerCase());
      // The example repository does not exist for this token: the change says so, naming the repository.
      const entry = s.timeline.find((t) => t.kind === 'commits-unknown');
      expect(entry?.summary, label(example)).toContain(
        `GITHUB_TOKEN cannot see ${example.payload.repository?.full_name} (GitHub answers 404)`,
      );
    }
  });

  it('a closed example ends the change it closes; a dismissed review of a running change is applied', async () => {
    const closed = all.filter((e) => e.event === 'pull_request' && e.payload.action === 'closed');
    const dismissed = all.filter((e) => e.event === 'pull_request_review' && e.payload.action === 'dismissed');
    expect(closed.length).toBeGreaterThan(0);
    for (const example of [...closed, ...dismissed]) {
      await fresh(opened);
      expect((await deliver(opened)).status).toBe(202);
      await statusOf(opened, (s) => s.headSha !== '');
      const { status, body } = await deliver(example);
      expect(status, label(example)).toBe(202);
      if (example.event === 'pull_request') {
        expect(body, label(example)).toMatchObject({ accepted: 'pull_request', action: 'closed' });
        const handle = stack.client.workflow.getHandle(workflowId(example));
        await expect.poll(async () => (await handle.describe()).status.name, { timeout: 30_000 }).not.toBe('RUNNING');
      } else expect(body, label(example)).toMatchObject({ accepted: 'pull_request_review', decision: 'dismiss' });
    }
  });
});
