// What the gateway's end-to-end tests stand on: the GitHub stand-in (users, acme/shop), the configuration
// pointing at its git remote, the gateway in this process on a real port, and the real orchestrator zone
// (the bundled changeWorkflow) and checks zone on the shared Temporal dev server, each test file on its own
// task queue. stop() ends what it started, terminating the changes the file tracked.
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import type { FoureyesConfig } from '../../src/config/schema.ts';
import { createGateway } from '../../src/gateway/app.ts';
import { startGitHubStandin, type RunningStandin } from '../../src/dev/github-standin/index.ts';
import { generateSigningKey, signEvent, type SigningKey } from '../../src/shared/approval-signature.ts';
import { zoneQueue } from '../../src/shared/task-queues.ts';
import type {
  ChangeStatus,
  DeployInput,
  DeployReport,
  PullRequestEvent,
  VerifyReport,
} from '../../src/shared/types.ts';
import { pullRequestSignal, statusQuery } from '../../src/workflows/definitions.ts';
import { ZONES } from '../../src/workers/zones.ts';
import { guardCallers } from '../../src/activities/caller-guard.ts';
import { deployZoneQueues, testClient, testWorker, uniquePullNumberBase, uniqueQueue } from './temporal.ts';

/**
 * The configuration the gateway tests share: sam-dev develops; alex-reviewer and jo-platform (team platform)
 * review; staging needs one approval, production one from platform. `channels` adds each person's chat
 * identity (e.g. `slack: U0SAMDEV1`), `production` more approval settings, `repository` more repository lines.
 */
export function threePeopleConfig(
  remote: string,
  options: {
    channels?: Partial<Record<'sam-dev' | 'alex-reviewer' | 'jo-platform', string>>;
    production?: string;
    repository?: string[];
  } = {},
): string {
  const person = (login: 'sam-dev' | 'alex-reviewer' | 'jo-platform') => {
    const channel = options.channels?.[login];
    return `  - { github: ${login}, ${channel ? `${channel}, ` : ''}emails: [${login.split('-')[0]}@example.com] }`;
  };
  return `
people:
${person('sam-dev')}
${person('alex-reviewer')}
${person('jo-platform')}
teams:
  platform: [jo-platform, alex-reviewer]
environments:
  - name: staging
    deploy: { run: "true", timeout: 60s }
    approval: { required: 1, expiry: 1h }
  - name: production
    deploy: { run: "true", timeout: 60s }
    approval: { required: 1, eligible: [team:platform], expiry: 1h${options.production ? `, ${options.production}` : ''} }
repositories:
  - name: acme/shop
    remote: ${JSON.stringify(remote)}
    checks: [{ name: unit, run: "true", timeout: 60s }]
${(options.repository ?? [])
  .map(
    (line) => `    ${line}
`,
  )
  .join('')}`;
}

export interface GatewayStackOptions {
  /** Names the temp dir and the task queue. */
  name: string;
  /** The configuration, given the stand-in's git remote of acme/shop. */
  configYaml: (remote: string) => string;
  /** GitHub logins to create; `sam-dev` gets the e-mail sam@example.com. */
  users: string[];
  /** Files of acme/shop's first commit. */
  repoFiles?: Record<string, string>;
  /** acme/shop is private: only its collaborators (`standin.setCollaborator`) can see it, as on GitHub. */
  privateRepo?: boolean;
  /** More repositories on the stand-in, with nothing in them. */
  otherRepos?: string[];
  /** The gateway's environment beyond the signing key, the task queue and GITHUB_API_URL. */
  gatewayEnv?: (stack: GatewayStack) => NodeJS.ProcessEnv;
  /** Runs once the gateway listens, before the workers start (channel stand-ins that need its URL); returns orchestrator environment. */
  beforeWorkers?: (stack: GatewayStack) => Promise<NodeJS.ProcessEnv>;
  /** The orchestrator's environment beyond the approval public key and GITHUB_API_URL. */
  orchestratorEnv?: (stack: GatewayStack) => NodeJS.ProcessEnv;
  /** Activities of a deploy zone double; without them no deploy worker runs. */
  deployActivities?: object;
}

export interface GatewayStack {
  dataDir: string;
  github: RunningStandin;
  /** Personal access tokens of the users, by login. */
  tokens: Record<string, string>;
  config: FoureyesConfig;
  key: SigningKey;
  taskQueue: string;
  client: Client;
  gateway: Server;
  gatewayUrl: string;
  /** The gateway's environment; the gateway reads it per request, so later changes apply. */
  gatewayEnv: NodeJS.ProcessEnv;
  /** Another gateway on the same client, config and environment (a restart). */
  startGateway(): Promise<Server>;
  /** Terminated by stop(). */
  track(handle: WorkflowHandle): WorkflowHandle;
  /** A pull request event as the gateway forwards it: without commits, signed with the gateway's key for `change`. */
  signed(change: string, event: PullRequestEvent): PullRequestEvent;
  /** Stops the orchestrator worker and starts it again with more environment (e.g. rotated keys). */
  restartOrchestrator(env: NodeJS.ProcessEnv): Promise<void>;
  /** Closed by stop(), before the gateway. */
  onStop(close: () => Promise<void>): void;
  stop(): Promise<void>;
}

export async function startGatewayStack(options: GatewayStackOptions): Promise<GatewayStack> {
  const dataDir = mkdtempSync(join(tmpdir(), `foureyes-${options.name}-`));
  const github = await startGitHubStandin({ dataDir: join(dataDir, 'github') });
  const tokens: Record<string, string> = {};
  for (const login of options.users)
    tokens[login] = github.standin.addUser({ login, email: `${login.split('-')[0]}@example.com` }).token;
  github.standin.createRepo({
    fullName: 'acme/shop',
    firstPullNumber: uniquePullNumberBase(),
    ...(options.repoFiles ? { files: options.repoFiles } : {}),
    ...(options.privateRepo ? { private: true } : {}),
  });
  for (const fullName of options.otherRepos ?? [])
    github.standin.createRepo({ fullName, firstPullNumber: uniquePullNumberBase() });
  const config = parseConfig(options.configYaml(github.standin.remoteOf('acme/shop')), 'test.yaml');
  const key = generateSigningKey();
  const taskQueue = uniqueQueue(options.name);
  const client = await testClient();
  const handles: WorkflowHandle[] = [];
  const closers: Array<() => Promise<void>> = [];
  const workers: Worker[] = [];
  const running: Array<Promise<void>> = [];
  let orchestrator: Worker;
  let orchestratorEnv: NodeJS.ProcessEnv = {};

  const stack: GatewayStack = {
    dataDir,
    github,
    tokens,
    config,
    key,
    taskQueue,
    client,
    gateway: undefined as unknown as Server,
    gatewayUrl: '',
    gatewayEnv: {
      FOUREYES_APPROVAL_SIGNING_KEY: key.privateKey,
      GITHUB_API_URL: github.url,
      FOUREYES_TASK_QUEUE: taskQueue,
    },
    async startGateway() {
      const server = createGateway({ client, config: () => config, env: stack.gatewayEnv });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return server;
    },
    track(handle) {
      handles.push(handle);
      return handle;
    },
    signed(change, event) {
      const { commits: _commits, changedFiles: _files, ...facts } = event;
      return signEvent({ ...facts, change, at: new Date().toISOString() }, key);
    },
    async restartOrchestrator(env) {
      const index = workers.indexOf(orchestrator);
      orchestrator.shutdown();
      await running[index];
      orchestratorEnv = { ...orchestratorEnv, ...env };
      orchestrator = await testWorker({
        taskQueue,
        workflows: true,
        activities: await ZONES.orchestrator.createActivities(() => config, orchestratorEnv),
      });
      workers[index] = orchestrator;
      running[index] = orchestrator.run();
    },
    onStop(close) {
      closers.push(close);
    },
    async stop() {
      await Promise.all(handles.map((h) => h.terminate('test over').catch(() => undefined)));
      for (const close of closers) await close();
      const gateway = stack.gateway as Server | undefined;
      await new Promise<void>((resolve) => (gateway ? gateway.close(() => resolve()) : resolve()));
      gateway?.closeAllConnections();
      for (const w of workers) w.shutdown();
      await Promise.all(running);
      await client.connection.close();
      await github.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  Object.assign(stack.gatewayEnv, options.gatewayEnv?.(stack));
  stack.gateway = await stack.startGateway();
  stack.gatewayUrl = `http://127.0.0.1:${(stack.gateway.address() as AddressInfo).port}`;
  const channelEnv = (await options.beforeWorkers?.(stack)) ?? {};
  orchestratorEnv = {
    FOUREYES_APPROVAL_PUBLIC_KEYS: key.publicKey,
    GITHUB_API_URL: github.url,
    ...options.orchestratorEnv?.(stack),
    ...channelEnv,
  };
  orchestrator = await testWorker({
    taskQueue,
    workflows: true,
    activities: await ZONES.orchestrator.createActivities(() => config, orchestratorEnv),
  });
  workers.push(
    orchestrator,
    await testWorker({
      taskQueue: zoneQueue(taskQueue, 'checks'),
      activities: await ZONES.checks.createActivities(() => config, {}),
    }),
  );
  const deployActivities = options.deployActivities;
  if (deployActivities)
    workers.push(
      // Each environment's deployer on its own queue, and the shared queue's for runs recorded before them.
      ...(await Promise.all(
        deployZoneQueues(taskQueue, config.environments).map(({ taskQueue: queue, environment }) =>
          testWorker({
            taskQueue: queue,
            activities: guardCallers(deployActivities, { zone: 'deploy', ...(environment ? { environment } : {}) }),
          }),
        ),
      )),
    );
  running.push(...workers.map((w) => w.run()));
  return stack;
}

/** The pull request event the gateway would signal for the stand-in's pull request as it is now (with its commits). */
export function pullRequestEvent(
  github: RunningStandin,
  number: number,
  kind: 'opened' | 'synchronize',
  pushed?: { before: string; pusher: string },
): PullRequestEvent {
  const pull = github.standin.requirePull('acme/shop', number);
  const commits = github.standin.pullCommits(pull).map((c) => ({
    sha: c.sha,
    author: { email: c.author.email, name: c.author.name },
    committer: { email: c.committer.email, name: c.committer.name },
    message: c.message,
  }));
  return {
    kind,
    deliveryId: randomBytes(8).toString('hex'),
    headSha: pull.headSha,
    ...(pushed ? { beforeSha: pushed.before, pusher: pushed.pusher } : {}),
    updatedAt: pull.updatedAt,
    author: pull.author,
    title: pull.title,
    baseRef: pull.baseRef,
    headRef: pull.headRef,
    commits,
  };
}

/** The deploy zone's double for gateway tests: every deploy succeeds at once and is recorded in `deployed`. */
export function deployZoneDouble(deployed: DeployInput[] = []) {
  return {
    async deploy(input: DeployInput): Promise<DeployReport> {
      deployed.push(input);
      return {
        environment: input.environment,
        sha: input.sha,
        status: 'deployed',
        exitCode: 0,
        durationMs: 1,
        outputTail: '',
        leases: [],
      };
    },
    async verify(input: DeployInput): Promise<VerifyReport> {
      return {
        environment: input.environment,
        sha: input.sha,
        passed: true,
        exitCode: 0,
        durationMs: 1,
        outputTail: '',
        leases: [],
      };
    },
    async revokeOutstanding() {
      return [];
    },
  };
}

/** Polls the change's status query until it reaches `stage`. */
export async function waitForStage(handle: WorkflowHandle, stage: string, timeoutMs = 30_000): Promise<ChangeStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await handle.query(statusQuery).catch(() => undefined);
    if (status?.stage === stage) return status;
    if (Date.now() > deadline)
      throw new Error(`stage never became ${stage}; last: ${status?.stage} (${status?.waitingFor})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** sam-dev opens a pull request on the stand-in; the change starts as the webhook would start it, tracked by `stack`. */
export async function openTrackedChange(
  stack: GatewayStack,
  title = 'Speed up checkout',
): Promise<{ change: string; number: number; head: string; handle: WorkflowHandle }> {
  const { pull } = await stack.github.standin.openPullRequest({
    repo: 'acme/shop',
    author: 'sam-dev',
    title,
    commits: [{ message: title, author: 'sam-dev' }],
    deliver: false,
  });
  const change = `acme/shop#${pull.number}`;
  const handle = await stack.client.workflow.signalWithStart('changeWorkflow', {
    workflowId: `change:${change}`,
    taskQueue: stack.taskQueue,
    args: [{ change }],
    signal: pullRequestSignal,
    signalArgs: [stack.signed(change, pullRequestEvent(stack.github, pull.number, 'opened'))],
  });
  stack.track(handle);
  await waitForStage(handle, 'awaiting-approval');
  return { change, number: pull.number, head: pull.headSha, handle };
}

/** `node bin/foureyes.js <command> …args --gateway <url>` as someone holding `token` (GITHUB_TOKEN). */
export function runFoureyesCli(
  command: string,
  args: string[],
  token: string,
  gatewayUrl: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/foureyes.js', command, ...args, '--gateway', gatewayUrl],
      {
        cwd: join(import.meta.dirname, '..', '..'),
        env: { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_TOKEN: token },
        timeout: 60_000,
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
