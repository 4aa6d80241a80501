// A change-delivery stack on the shared Temporal dev server for workflow tests: the real workflow bundle,
// the real loadPolicy and beginChange over a test configuration, a GitHub model for the orchestrator's
// look-ups, and recording doubles for checks, GitHub reporting and the deployer. Events are signed by the
// test's gateway key, as the gateway signs them.
import { Context } from '@temporalio/activity';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardCallers } from '../../src/activities/caller-guard.ts';
import { createLaneActivities } from '../../src/activities/lanes.ts';
import { DEPLOY_HEARTBEAT_THROTTLE } from '../../src/workers/zones.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { FoureyesConfig } from '../../src/config/schema.ts';
import { generateSigningKey, signClaim, signEvent, type SigningKey } from '../../src/shared/approval-signature.ts';
import { deployQueue, zoneQueue } from '../../src/shared/task-queues.ts';
import type {
  ApprovalClaim,
  ApprovalOutcome,
  ChangeStatus,
  CommitInfo,
  DeployInput,
  DeployReport,
  PullRequestEvent,
  PullRequestFacts,
  VerifyReport,
} from '../../src/shared/types.ts';
import {
  approvalUpdate,
  emergencyUpdate,
  pullRequestClosedSignal,
  pullRequestSignal,
  statusQuery,
  type ChangeWorkflowInput,
} from '../../src/workflows/definitions.ts';
import type { changeWorkflow, ChangeResult } from '../../src/workflows/change.ts';
import {
  signEmergency,
  type AnnounceEmergencyInput,
  type EmergencyClaim,
  type EmergencyOutcome,
} from '../../src/shared/emergency.ts';
import { GitHubModel, orchestratorDoubles } from './orchestrator-doubles.ts';
import { testClient, testWorker, uniqueQueue } from '../helpers/temporal.ts';

export const CONFIG = `
people:
  - { github: sam-dev, emails: [sam@example.com] }
  - { github: alex-reviewer, emails: [alex@example.com] }
  - { github: jo-platform, emails: [jo@example.com] }
  - { github: kim-qa, emails: [kim@example.com] }
  - { github: pat-peer, emails: [pat@example.com] }
  - { github: lee-ops, emails: [lee@example.com] }
teams:
  platform: [jo-platform, alex-reviewer, kim-qa]
environments:
  - name: staging
    deploy: { run: "true", timeout: 60s }
    verify: { run: "true", timeout: 30s }
    approval: { required: 1, expiry: 1h }
  - name: production
    deploy: { run: "true", timeout: 60s }
    approval: { required: 1, eligible: [team:platform], expiry: 1h }
  - name: dual
    deploy: { run: "true", timeout: 60s }
    approval: { required: 2, expiry: 1h }
  - name: quick
    deploy: { run: "true", timeout: 60s }
    approval: { required: 2, expiry: 2s }
repositories:
  - { name: acme/shop, remote: /nonexistent, environments: [staging, production], merge: true, policyOwners: [jo-platform] }
  - { name: acme/dual, remote: /nonexistent, environments: [dual] }
  - { name: acme/quick, remote: /nonexistent, environments: [quick] }
  - { name: acme/busy, remote: /nonexistent, environments: [staging] }
`;

export interface Calls {
  checks: string[];
  /** Each deploy the deploy zone was asked to run, with when (ms) it was. */
  deploy: Array<DeployInput & { at: number; endedAt?: number }>;
  verify: DeployInput[];
  revoke: Array<{ change: string; environment: string; rollback?: string }>;
  merge: Array<{ change: string; sha: string }>;
  sync: number;
  /** Approval requests posted to chat: change@sha. */
  slack: string[];
  /** Each confirmation just before a deploy: what GitHub showed as the head of `change` when read (ms). */
  confirm: Array<{ change: string; sha: string; head: string; readAt: number; at: number }>;
  /** Break-glass announcements (declared, overdue), as the orchestrator was asked to post them. */
  announce: AnnounceEmergencyInput[];
}

export interface Stack {
  client: Client;
  taskQueue: string;
  /** The gateway's signing key (a test may replace it, to rotate keys). */
  key: SigningKey;
  /** The configuration the orchestrator reads at each look-up (a test may change it). */
  config: FoureyesConfig;
  /** The gateway keys the policy trusts, as the orchestrator reads them (a test may change the list). */
  trustedKeys: string[];
  /** What the orchestrator's look-ups read as GitHub's pull requests. */
  github: GitHubModel;
  calls: Calls;
  /** Checks of these SHAs fail. */
  failingShas: Set<string>;
  /** Deploys of these changes run until cancelled. */
  hangingDeploys: Set<string>;
  /** Deploys of these changes take this long (ms). */
  slowDeploys: Map<string, number>;
  /**
   * Deploys of these changes run and fail (exit 3, output below): `result` as the deploy zone answers now,
   * `thrown` as it answered before failed commands were results (a DeployFailed failure carrying the report).
   */
  failingDeploys: Map<string, 'result' | 'thrown'>;
  stop(): Promise<void>;
}

/**
 * `workflowCache: 0` runs the orchestrator as production does by default (each task and query replays).
 * `repositories` adds entries (YAML flow maps) to CONFIG's, for a test that must be alone in a repository.
 * `productionHeartbeats`: the deploy workers throttle heartbeats as the deploy zone's worker does (otherwise every
 * 200 ms, which makes a terminated change's deploy stop at once). `laneReclaimGraceMs`: how long a lane this stack
 * starts waits after reclaiming a holder (default 2 s, ample for 200 ms heartbeats). `config` appends top-level
 * YAML to CONFIG, e.g. `emergency: { allowed: [lee-ops], window: 1h, reviewWithin: 2h }`.
 */
export async function startStack(
  options: {
    workflowCache?: number;
    repositories?: string[];
    productionHeartbeats?: boolean;
    laneReclaimGraceMs?: number;
    /** Top-level YAML appended to CONFIG, e.g. `emergency: { allowed: [lee-ops] }`. */
    config?: string;
  } = {},
): Promise<Stack> {
  const extra = (options.repositories ?? []).map((r) => `  - ${r}\n`).join('');
  const config = parseConfig(`${CONFIG}${extra}${options.config ? `${options.config.trim()}\n` : ''}`, 'test.yaml');
  const key = generateSigningKey();
  const taskQueue = uniqueQueue('change');
  const calls: Calls = {
    checks: [],
    deploy: [],
    verify: [],
    revoke: [],
    merge: [],
    sync: 0,
    slack: [],
    confirm: [],
    announce: [],
  };
  const failingShas = new Set<string>();
  const hangingDeploys = new Set<string>();
  const slowDeploys = new Map<string, number>();
  const failingDeploys = new Map<string, 'result' | 'thrown'>();
  const quickHeartbeats = options.productionHeartbeats
    ? DEPLOY_HEARTBEAT_THROTTLE
    : ({ maxHeartbeatThrottleInterval: '200ms', defaultHeartbeatThrottleInterval: '200ms' } as const);

  const github = new GitHubModel(mkdtempSync(join(tmpdir(), 'foureyes-github-model-')));
  const trustedKeys = [key.publicKey];
  const doubles = orchestratorDoubles(config, trustedKeys, github);
  const orchestrator = await testWorker({
    taskQueue,
    workflows: true,
    ...(options.workflowCache !== undefined ? { maxCachedWorkflows: options.workflowCache } : {}),
    activities: {
      ...doubles,
      ...createLaneActivities(
        { FOUREYES_LANE_RECLAIM_GRACE_MS: String(options.laneReclaimGraceMs ?? 2_000) },
        { compareCommits: doubles.compareCommits },
      ),
      async confirmDelivery(input: { change: string; sha: string; reviewIds: string[] }) {
        // GitHub is read synchronously right after `readAt`: nothing of the test runs between the two.
        const readAt = Date.now();
        const confirmation = await doubles.confirmDelivery(input);
        const { change, sha } = input;
        calls.confirm.push({ change, sha, head: confirmation.pull.headSha, readAt, at: Date.now() });
        return confirmation;
      },
      async syncGitHub() {
        calls.sync++;
      },
      async notifySlack(input: { change: string; sha: string }) {
        calls.slack.push(`${input.change}@${input.sha}`);
        return { posted: true };
      },
      // Teams is not configured here: the card tracker asks once per head and stops.
      async syncTeamsCard() {
        return { configured: false };
      },
      async announceEmergency(input: AnnounceEmergencyInput) {
        calls.announce.push(input);
        const posted = { posted: true };
        return { summary: `announced (${input.kind})`, slack: posted, teams: posted, github: posted };
      },
      async mergePullRequest(input: { change: string; sha: string }) {
        calls.merge.push(input);
        return { merged: true, reason: `merged ${input.sha.slice(0, 7)}` };
      },
    },
  });
  const checks = await testWorker({
    taskQueue: zoneQueue(taskQueue, 'checks'),
    activities: {
      async runChecks(input: { change: string; sha: string }) {
        calls.checks.push(input.sha);
        const passed = !failingShas.has(input.sha);
        return {
          sha: input.sha,
          passed,
          durationMs: 1,
          results: [
            {
              name: 'unit',
              passed,
              exitCode: passed ? 0 : 1,
              durationMs: 1,
              timedOut: false,
              outputTail: passed ? 'ok' : 'FAIL: 1 test',
            },
          ],
        };
      },
    },
  });
  const deployDoubles = {
    async deploy(input: DeployInput): Promise<DeployReport> {
      const call: Calls['deploy'][number] = { ...input, at: Date.now() };
      calls.deploy.push(call);
      const slow = slowDeploys.get(input.change);
      if (slow !== undefined) await new Promise((r) => setTimeout(r, slow));
      if (hangingDeploys.has(input.change)) {
        const ctx = Context.current();
        for (;;) {
          ctx.heartbeat();
          if (ctx.cancellationSignal.aborted) {
            // When the deploy really stopped: its worker learnt of the cancellation (or the workflow's end).
            call.endedAt = Date.now();
            throw new CancelledFailure('deploy cancelled');
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      call.endedAt = Date.now();
      const failing = failingDeploys.get(input.change);
      if (failing) {
        const report = {
          environment: input.environment,
          sha: input.sha,
          exitCode: 3,
          durationMs: 1200,
          outputTail: 'applying migration 0042\nerror: migration 0042_orders failed\n',
          leases: [],
        };
        if (failing === 'thrown')
          throw ApplicationFailure.create({
            message: `deploy command for ${input.environment} exited with code 3; last output:\n${report.outputTail}`,
            type: 'DeployFailed',
            nonRetryable: true,
            details: [{ ...report, status: 'failed' }],
          });
        return { ...report, status: 'failed', failure: 'exited with code 3' };
      }
      return {
        environment: input.environment,
        sha: input.sha,
        status: 'deployed',
        exitCode: 0,
        durationMs: 1,
        outputTail: 'deployed',
        leases: [],
      };
    },
    async verify(input: DeployInput): Promise<VerifyReport> {
      calls.verify.push(input);
      return {
        environment: input.environment,
        sha: input.sha,
        passed: true,
        exitCode: 0,
        durationMs: 1,
        outputTail: 'ok',
        leases: [],
      };
    },
    async revokeOutstanding(input: { change: string; environment: string; rollback?: string }) {
      calls.revoke.push(input);
      return [];
    },
  };
  // One deploy worker per environment on its own queue (`<queue>-deploy-<env>`), each with the deploy zone's own
  // caller check for its environment in front of the recording doubles; and the shared queue's, as during an
  // upgrade (runs recorded before the per-environment deployers).
  const deployers = await Promise.all([
    testWorker({
      taskQueue: zoneQueue(taskQueue, 'deploy'),
      ...quickHeartbeats,
      activities: guardCallers(deployDoubles, { zone: 'deploy' }),
    }),
    ...config.environments.map((e) =>
      testWorker({
        taskQueue: deployQueue(taskQueue, e.name),
        ...quickHeartbeats,
        activities: guardCallers(deployDoubles, { zone: 'deploy', environment: e.name }),
      }),
    ),
  ]);
  const workers: Worker[] = [orchestrator, checks, ...deployers];
  const running = workers.map((w) => w.run());
  const client = await testClient();
  return {
    client,
    taskQueue,
    key,
    config,
    trustedKeys,
    github,
    calls,
    failingShas,
    hangingDeploys,
    slowDeploys,
    failingDeploys,
    async stop() {
      for (const w of workers) w.shutdown();
      await Promise.all(running);
      await client.connection.close();
    },
  };
}

let counter = 0;
/** A fresh change reference (unique per test run, so workflow IDs never collide). */
export function newChange(repo = 'acme/shop'): string {
  return `${repo}#${(Date.now() % 1_000_000) * 100 + (counter++ % 100)}`;
}

export function sha(): string {
  return randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '').slice(0, 8);
}

export function commit(
  sha: string,
  author: CommitInfo['author'],
  committer: CommitInfo['committer'] = author,
  message = 'change',
): CommitInfo {
  return { sha, author, committer, message };
}

let delivery = 0;
export function opened(
  head: string,
  author = 'sam-dev',
  commits: CommitInfo[] = [commit(head, { login: author, email: `${author.split('-')[0]}@example.com` })],
): PullRequestEvent {
  return {
    kind: 'opened',
    deliveryId: `d-${++delivery}-${randomUUID()}`,
    headSha: head,
    updatedAt: new Date().toISOString(),
    author,
    title: 'Make checkout faster',
    baseRef: 'main',
    headRef: 'fast',
    commits,
  };
}

export function pushed(
  before: string,
  head: string,
  pusher = 'sam-dev',
  commits: CommitInfo[] = [commit(head, { login: pusher })],
): PullRequestEvent {
  return {
    kind: 'synchronize',
    deliveryId: `d-${++delivery}-${randomUUID()}`,
    headSha: head,
    beforeSha: before,
    pusher,
    updatedAt: new Date().toISOString(),
    author: 'sam-dev',
    title: 'Make checkout faster',
    baseRef: 'main',
    headRef: 'fast',
    commits,
  };
}

export type ChangeHandle = WorkflowHandle<typeof changeWorkflow>;

/** The pull request as GitHub shows it once `event` happened (its commits are then the pull request's). */
export function factsOf(event: PullRequestEvent, state: 'open' | 'closed' = 'open'): PullRequestFacts {
  return {
    state,
    merged: false,
    title: event.title,
    author: event.author,
    headRef: event.headRef,
    head: { sha: event.headSha, baseRef: event.baseRef, commits: event.commits ?? [], files: event.changedFiles ?? [] },
  };
}

/** The event as the gateway forwards it: the webhook's facts only, signed for the change. */
export function signedEvent(stack: Pick<Stack, 'key'>, change: string, event: PullRequestEvent): PullRequestEvent {
  const { commits: _commits, changedFiles: _files, ...facts } = event;
  return signEvent({ ...facts, change, at: new Date().toISOString() }, stack.key);
}

/** Opens the change: GitHub shows the pull request, and the gateway's signed event starts the workflow. */
export async function openChange(
  stack: Pick<Stack, 'client' | 'taskQueue' | 'key' | 'github'>,
  change: string,
  event: PullRequestEvent,
  extra: Partial<ChangeWorkflowInput> = {},
): Promise<ChangeHandle> {
  stack.github.set(change, factsOf(event));
  return stack.client.workflow.signalWithStart<typeof changeWorkflow, [PullRequestEvent]>('changeWorkflow', {
    workflowId: `change:${change}`,
    taskQueue: stack.taskQueue,
    args: [{ change, ...extra }],
    signal: pullRequestSignal,
    signalArgs: [signedEvent(stack, change, event)],
  });
}

/** A push: GitHub shows the new head, and the gateway's signed event reaches the change. */
export async function push(
  stack: Pick<Stack, 'key' | 'github'>,
  handle: ChangeHandle,
  event: PullRequestEvent,
): Promise<void> {
  const change = handle.workflowId.replace(/^change:/, '');
  stack.github.set(change, factsOf(event));
  await handle.signal(pullRequestSignal, signedEvent(stack, change, event));
}

/** A signed event GitHub's state does not follow (a redelivery, an event delivered late). */
export async function deliverOnly(
  stack: Pick<Stack, 'key'>,
  handle: ChangeHandle,
  event: PullRequestEvent,
): Promise<void> {
  await handle.signal(pullRequestSignal, signedEvent(stack, handle.workflowId.replace(/^change:/, ''), event));
}

export async function close(stack: Pick<Stack, 'key'>, handle: ChangeHandle): Promise<void> {
  const change = handle.workflowId.replace(/^change:/, '');
  await handle.signal(
    pullRequestClosedSignal,
    signEvent(
      { deliveryId: randomUUID(), merged: false, closedBy: 'sam-dev', at: new Date().toISOString(), change },
      stack.key,
    ),
  );
}

export function claim(change: string, sha: string, person: string, extra: Partial<ApprovalClaim> = {}): ApprovalClaim {
  return {
    v: 1,
    change,
    sha,
    person,
    channel: 'cli',
    decision: 'approve',
    evidence: { tokenLogin: person },
    at: new Date().toISOString(),
    nonce: randomUUID(),
    ...extra,
  };
}

export async function approve(stack: Stack, handle: ChangeHandle, c: ApprovalClaim): Promise<ApprovalOutcome> {
  return handle.executeUpdate(approvalUpdate, { args: [signClaim(c, stack.key)] });
}

/** A break-glass declaration as the gateway would sign it for `person`. */
export function emergencyClaim(
  change: string,
  sha: string,
  person: string,
  extra: Partial<EmergencyClaim> = {},
): EmergencyClaim {
  return {
    v: 1,
    kind: 'emergency',
    change,
    sha,
    person,
    channel: 'cli',
    evidence: { tokenLogin: person },
    reason: 'checkout is down for every customer',
    at: new Date().toISOString(),
    nonce: randomUUID(),
    ...extra,
  };
}

/** Break-glass as the emergency tests configure it: lee-ops may declare; an hour's window, two to review. */
export const EMERGENCY_CONFIG = 'emergency: { allowed: [lee-ops], window: 1h, reviewWithin: 2h }';

/**
 * A change of acme/shop opened by sam-dev with one commit of theirs, waiting for approval; then lee-ops declares an
 * emergency for staging and the head goes out under it, owing its review.
 */
export async function deployedUnderEmergency(stack: Stack) {
  const change = newChange();
  const first = sha();
  const c1 = commit(first, { login: 'sam-dev', email: 'sam@example.com' });
  const handle = await openChange(stack, change, opened(first, 'sam-dev', [c1]));
  await waitForStatus(handle, (s) => s.stage === 'awaiting-approval' && s.headSha === first, 30_000);
  const declaration = emergencyClaim(change, first, 'lee-ops', { environments: ['staging'] });
  const outcome = await declareEmergency(stack, handle, declaration);
  await waitForStatus(
    handle,
    (s) => s.stage === 'awaiting-approval' && s.emergencies?.[0]?.state === 'review-due',
    30_000,
  );
  return { change, first, c1, handle, declaration, outcome };
}

/** Declares an emergency as the gateway does (or as an insider would, with a `key` of their own). */
export async function declareEmergency(
  stack: Stack,
  handle: ChangeHandle,
  c: EmergencyClaim,
  key: SigningKey = stack.key,
): Promise<EmergencyOutcome> {
  return handle.executeUpdate(emergencyUpdate, { args: [signEmergency(c, key)] });
}

export async function status(handle: ChangeHandle): Promise<ChangeStatus> {
  return handle.query(statusQuery);
}

/** Polls the status query until `predicate` holds (the workflow reacts asynchronously to signals). */
export async function waitForStatus(
  handle: ChangeHandle,
  predicate: (s: ChangeStatus) => boolean,
  timeoutMs = 20_000,
): Promise<ChangeStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ChangeStatus | undefined;
  for (;;) {
    try {
      last = await status(handle);
      if (predicate(last)) return last;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `status never matched; last: stage=${last?.stage} waitingFor=${last?.waitingFor}\n${JSON.stringify(last?.timeline, null, 1)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function result(handle: ChangeHandle): Promise<ChangeResult> {
  return (await handle.result()) as ChangeResult;
}

/** Saves the latest run of a lane (FOUREYES_WRITE_HISTORIES=1) for replay.test.ts. */
export async function saveLaneHistory(stack: Stack, lane: string, name: string): Promise<void> {
  if (process.env.FOUREYES_WRITE_HISTORIES !== '1') return;
  const handle = stack.client.workflow.getHandle(lane);
  const { runId } = await handle.describe();
  writeFileSync(
    join(import.meta.dirname, 'histories', `${name}.json`),
    encodeHistory(lane, runId, await handle.fetchHistory()),
  );
}

/** With FOUREYES_WRITE_HISTORIES=1, keeps this run's history (every run of it) for the replay test. */
export async function saveHistory(stack: Stack, handle: ChangeHandle, name: string): Promise<void> {
  if (process.env.FOUREYES_WRITE_HISTORIES !== '1') return;
  const dir = join(import.meta.dirname, 'histories');
  mkdirSync(dir, { recursive: true });
  const runIds = (await status(handle).catch(() => undefined))?.runIds ?? [];
  const all = new Set([...runIds]);
  const latest = await handle.describe();
  all.add(latest.runId);
  let i = 0;
  for (const runId of all) {
    const history = await stack.client.workflow.getHandle(handle.workflowId, runId).fetchHistory();
    writeFileSync(
      join(dir, `${name}${all.size > 1 ? `-run${++i}` : ''}.json`),
      encodeHistory(handle.workflowId, runId, history),
    );
  }
}

// The SDK's proto-JSON helpers trip over two protobufjs copies in node_modules, so a history is kept as
// its protobuf bytes (base64) inside a small JSON envelope.
export const HISTORY_ENCODING = 'temporal.api.history.v1.History;base64';

export function encodeHistory(workflowId: string, runId: string, history: temporal.api.history.v1.IHistory): string {
  const data = Buffer.from(temporal.api.history.v1.History.encode(history).finish()).toString('base64');
  return `${JSON.stringify({ workflowId, runId, encoding: HISTORY_ENCODING, events: history.events?.length ?? 0, data }, null, 1)}\n`;
}

export function decodeHistory(text: string): { workflowId: string; history: temporal.api.history.v1.History } {
  const parsed = JSON.parse(text) as { workflowId: string; encoding: string; data: string };
  if (parsed.encoding !== HISTORY_ENCODING) throw new Error(`unknown history encoding ${parsed.encoding}`);
  return {
    workflowId: parsed.workflowId,
    history: temporal.api.history.v1.History.decode(Buffer.from(parsed.data, 'base64')),
  };
}
