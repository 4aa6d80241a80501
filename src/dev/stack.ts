// The whole local stack as `foureyes up` runs it: Temporal dev server, OpenBao dev server (bootstrapped),
// the three workers of the trust zones as separate processes with separate credentials, and the gateway.
// Tests start it the same way, on free ports.
import { Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { operatorTokenPath } from '../config/paths.ts';
import { loadConfig } from '../config/load.ts';
import type { FoureyesConfig } from '../config/schema.ts';
import { generateSigningKey, type SigningKey } from '../shared/approval-signature.ts';
import { ensureWorkflowBundle } from '../workers/bundle.ts';
import {
  DEPLOY_ENVIRONMENT_ENV,
  DEPLOYER_AWS_ENV,
  TEAMS_BOT_ENV,
  ZONES,
  zoneTaskQueue,
  type Zone,
} from '../workers/zones.ts';
import {
  bootstrapDeployers,
  startOpenBao,
  VaultAdmin,
  type DeployerBootstrap,
  type DeployerCredentials,
  type OpenBaoServer,
} from './openbao.ts';
import { projectRoot } from './paths.ts';
import {
  cleanUpOrphans,
  describeHolder,
  freePort,
  pidFileName,
  portInUse,
  startProcess,
  waitUntil,
  type ManagedProcess,
} from './process.ts';
import { startTemporalServer, type TemporalServer } from './temporal-server.ts';
import { ensureTool } from './tools.ts';
import { UNSAFE_NO_SANDBOX_ENV } from '../activities/sandbox.ts';
import { connectWebhook, startOfflineGitHub, type OfflineGitHub } from './github-standin/offline.ts';
import { connectGitHub, githubZoneEnv } from './github-env.ts';

export interface StackOptions {
  dataDir: string;
  configFile: string;
  /** Fixed ports for `foureyes up`; free ports when absent (tests). */
  temporalPort?: number;
  uiPort?: number;
  baoPort?: number;
  gatewayPort?: number;
  headless?: boolean;
  /** Child output on the console: all of it (`--verbose`), only error lines ('problems'), or none. */
  echo?: boolean | 'problems';
  log?: (line: string) => void;
  /** Extra environment for the gateway and orchestrator (e.g. GITHUB_API_URL of a stand-in). */
  githubEnv?: Record<string, string>;
  /**
   * Offline mode: start the GitHub stand-in and wire it in. Default: on when neither `githubEnv` nor GitHub
   * credentials (the environment's, or the App `foureyes setup github` stored) are given.
   */
  offlineGitHub?: boolean;
  /** Port of the stand-in in offline mode (free port when absent). */
  githubPort?: number;
  /** Namespace retention in days (the dev server's own default, 24 hours, when absent). */
  retentionDays?: number;
}

export interface Stack {
  config: FoureyesConfig;
  temporal: TemporalServer;
  openbao: OpenBaoServer;
  /** Each environment's deployer AppRole (and the shared one, with FOUREYES_SHARED_DEPLOYER=1). */
  deployers: DeployerBootstrap;
  signingKey: SigningKey;
  gatewayUrl: string;
  /** Reads GET /api/changes/… and /api/environments… (FOUREYES_GATEWAY_TOKEN for the CLI). */
  operatorToken: string;
  /** The orchestrator's and the checks zone's workers, and one deploy worker per environment (`deploy-<env>`). */
  workers: Record<string, ManagedProcess>;
  gateway: ManagedProcess;
  processes: ManagedProcess[];
  stop(): Promise<void>;
  /** The GitHub stand-in in offline mode. */
  github?: OfflineGitHub;
  /** Which GitHub the stack talks to, and how, in one line. */
  githubSummary: string;
}

/**
 * The local gateway's operator token (reads changes, audits and environments without a GitHub token): made
 * once per data folder, readable by its owner only, like the signing keys beside it.
 */
export function loadOrCreateOperatorToken(dataDir: string): { file: string; token: string } {
  const file = operatorTokenPath(dataDir);
  if (existsSync(file)) return { file, token: readFileSync(file, 'utf8').trim() };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('hex');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { file, token };
}

/** The approval signing key pair: generated once per data folder; the private half goes to the gateway only. */
export function loadOrCreateSigningKey(dataDir: string, name = 'approval-signing'): SigningKey {
  const dir = join(dataDir, 'keys');
  const file = join(dir, `${name}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SigningKey;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = generateSigningKey();
  writeFileSync(file, JSON.stringify(key), { mode: 0o600 });
  return key;
}

/** Slack for the orchestrator's "waiting for approval" message, when the operator configured it. */
function slackEnv(): Record<string, string> {
  return Object.fromEntries(
    ['SLACK_BOT_TOKEN', 'SLACK_CHANNEL', 'SLACK_API_URL'].flatMap((k) =>
      process.env[k] ? [[k, process.env[k] as string]] : [],
    ),
  );
}

/** Those of `names` that are set in this process's environment. */
function fromProcessEnv(names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((k) => (process.env[k] ? [[k, process.env[k] as string]] : [])));
}

/** The base environment every child gets: no inherited secrets, only what it needs to run. */
function baseEnv(stack: { temporal: TemporalServer }, options: StackOptions): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    NODE_ENV: process.env.NODE_ENV ?? 'development',
    TEMPORAL_ADDRESS: stack.temporal.address,
    TEMPORAL_NAMESPACE: stack.temporal.namespace,
    FOUREYES_CONFIG: options.configFile,
    FOUREYES_DATA: options.dataDir,
    ...(process.env.FOUREYES_TASK_QUEUE ? { FOUREYES_TASK_QUEUE: process.env.FOUREYES_TASK_QUEUE } : {}),
    // Tracing (src/workers/tracing.ts): the collector's address only; each process names itself foureyes-<component>.
    ...Object.fromEntries(
      ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'].flatMap((k) =>
        process.env[k] ? [[k, process.env[k] as string]] : [],
      ),
    ),
  };
}

export function nodeEntry(script: string): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', 'tsx', join(projectRoot(), script)] };
}

/** A start-up failure the user can act on: one line, no stack. */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** The variable that moves each fixed port of `foureyes up`. */
export const PORT_VARIABLES = {
  temporal: 'FOUREYES_TEMPORAL_PORT',
  ui: 'FOUREYES_UI_PORT',
  bao: 'FOUREYES_BAO_PORT',
  gateway: 'PORT',
} as const;
const PORT_NAMES = { temporal: 'Temporal', ui: 'Temporal UI', bao: 'OpenBao', gateway: 'gateway' } as const;

/** Pid files of the children of `foureyes up` on a data folder (and of `up` itself: up.pid). */
export const pidDir = (dataDir: string) => join(dataDir, 'pids');

/**
 * Before anything starts: stop what an earlier start on this data folder left running (it would hold the
 * ports, and answer health checks for the new stack), then refuse ports that something else holds.
 */
async function preflight(options: StackOptions, log: (line: string) => void): Promise<void> {
  for (const orphan of await cleanUpOrphans(pidDir(options.dataDir), ['up.pid'])) {
    log(`foureyes: stopped ${orphan}, left running by an earlier start on ${options.dataDir}`);
  }
  const fixed: Array<[keyof typeof PORT_VARIABLES, number | undefined]> = [
    ['temporal', options.temporalPort],
    ['ui', options.headless ? undefined : options.uiPort],
    ['bao', options.baoPort],
    ['gateway', options.gatewayPort],
  ];
  const named = new Map<number, keyof typeof PORT_VARIABLES>();
  for (const [what, port] of fixed) {
    if (port === undefined) continue;
    const other = named.get(port);
    // Two servers asked to share a port: the second fails to bind, and the first answers for both.
    if (other)
      throw new StartupError(
        `${PORT_VARIABLES[other]} and ${PORT_VARIABLES[what]} both name port ${port} (${PORT_NAMES[other]} and ${PORT_NAMES[what]}); give each its own port`,
      );
    named.set(port, what);
  }
  for (const [what, port] of fixed) {
    if (port !== undefined && (await portInUse(port))) throw portTaken(what, port);
  }
}

/** A port something else holds: who holds it, and the variable that moves it. */
function portTaken(what: keyof typeof PORT_VARIABLES, port: number): StartupError {
  const holder = describeHolder(port);
  return new StartupError(
    `port ${port} (${PORT_NAMES[what]}) is in use${holder ? ` by ${holder}` : ''}; stop that process, or set ${PORT_VARIABLES[what]} to a free port`,
  );
}

/** What a start has brought up so far (stopped in reverse if a later step fails), and where it writes. */
interface Startup {
  options: StackOptions;
  config: FoureyesConfig;
  log: (line: string) => void;
  logs: string;
  pidFile: (name: string) => string;
  processes: ManagedProcess[];
  github?: OfflineGitHub;
}

type Poller = { queue: string; type: number; proc: ManagedProcess };

export async function startStack(options: StackOptions): Promise<Stack> {
  const log = options.log ?? ((line: string) => console.log(line));
  mkdirSync(options.dataDir, { recursive: true });
  const logs = join(options.dataDir, 'logs');
  mkdirSync(logs, { recursive: true });
  const config = loadConfig(options.configFile);
  await preflight(options, log);
  const pidFile = (name: string) => join(pidDir(options.dataDir), pidFileName(name));
  // Real GitHub credentials are checked before anything starts: a wrong set stops here, naming the variable.
  const realGitHub =
    options.githubEnv || options.offlineGitHub
      ? undefined
      : await connectGitHub(process.env, {
          dataDir: options.dataDir,
          repositories: config.repositories.map((r) => r.name),
          log,
        });
  ensureTool('temporal', log);
  ensureTool('bao', log);
  const up: Startup = { options, config, log, logs, pidFile, processes: [] };
  const stopAll = async () => {
    for (const p of [...up.processes].reverse()) await p.stop();
    await up.github?.stop();
  };
  try {
    const { temporal, openbao, deployers } = await startServers(up);
    const signingKey = loadOrCreateSigningKey(options.dataDir);
    // Audit exports are signed with a key of their own, so the approval key never leaves the gateway's duty.
    const auditKey = loadOrCreateSigningKey(options.dataDir, 'audit-signing');
    const operator = loadOrCreateOperatorToken(options.dataDir);
    const bundle = await ensureWorkflowBundle({ ...process.env, FOUREYES_DATA: options.dataDir }, log);
    const { githubEnv, githubSummary } = await chooseGitHub(up, realGitHub);
    const githubZones = githubZoneEnv(githubEnv);
    const base = {
      ...baseEnv({ temporal }, options),
      FOUREYES_WORKFLOW_BUNDLE: bundle,
      // Checks and deploys fetch from the stand-in's local git repositories (see applyRemoteOverrides).
      ...(up.github ? { FOUREYES_REMOTE_OVERRIDES: JSON.stringify(up.github.remotes) } : {}),
    };
    const orchestratorEnv = {
      FOUREYES_APPROVAL_PUBLIC_KEYS: signingKey.publicKey,
      ...slackEnv(),
      ...fromProcessEnv(TEAMS_BOT_ENV),
      ...githubZones.orchestrator,
    };
    log('foureyes: starting the workers and the gateway …');
    const { workers, pollers } = startWorkers(up, base, workerLaunches(up, base, orchestratorEnv, openbao, deployers));
    const { gateway, gatewayUrl } = await startGateway(up, {
      ...base,
      FOUREYES_APPROVAL_SIGNING_KEY: signingKey.privateKey,
      FOUREYES_AUDIT_SIGNING_KEY: auditKey.privateKey,
      // The file, not the value: the token stays out of the gateway's environment and `ps e`.
      FOUREYES_OPERATOR_TOKENS_FILE: operator.file,
      ...githubZones.gateway,
    });
    if (up.github) connectWebhook(up.github, gatewayUrl);

    log('foureyes: waiting for the workers and the gateway …');
    await waitForPollers(temporal, pollers);
    await waitForGateway(gatewayUrl, gateway, temporal.namespace);
    return {
      config,
      temporal,
      openbao,
      deployers,
      signingKey,
      gatewayUrl,
      operatorToken: operator.token,
      workers,
      gateway,
      processes: up.processes,
      stop: stopAll,
      githubSummary,
      ...(up.github ? { github: up.github } : {}),
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Temporal and OpenBao dev servers, OpenBao bootstrapped with one deployer AppRole per environment. */
async function startServers(
  up: Startup,
): Promise<{ temporal: TemporalServer; openbao: OpenBaoServer; deployers: DeployerBootstrap }> {
  const { options, config, log, logs, pidFile } = up;
  log('foureyes: starting Temporal dev server …');
  const temporal = await startTemporalServer({
    dataDir: options.dataDir,
    namespace: config.temporal.namespace,
    port: options.temporalPort,
    uiPort: options.uiPort,
    headless: options.headless,
    logFile: join(logs, 'temporal.log'),
    echo: options.echo,
    retentionDays: options.retentionDays,
    pidFile: pidFile('temporal'),
  });
  up.processes.push(temporal.process);

  log('foureyes: starting OpenBao dev server …');
  const openbao = await startOpenBao({
    port: options.baoPort,
    logFile: join(logs, 'openbao.log'),
    echo: options.echo,
    pidFile: pidFile('openbao'),
  });
  up.processes.push(openbao.process);
  log('foureyes: bootstrapping OpenBao: policies, token roles and one deployer AppRole per environment …');
  // The shared deployer serves only runs recorded before the per-environment deployers (an upgraded data
  // folder with changes mid-delivery): opt in with FOUREYES_SHARED_DEPLOYER=1 until they have ended.
  const sharedDeployer = process.env.FOUREYES_SHARED_DEPLOYER === '1';
  const deployers = await bootstrapDeployers(new VaultAdmin(openbao.address, openbao.rootToken), config, {
    dataDir: options.dataDir,
    sharedDeployer,
    // The dev stack's workers reach OpenBao on the loopback interface only.
    boundCidrs: ['127.0.0.1/32'],
  });
  return { temporal, openbao, deployers };
}

/** The GitHub the zones talk to: the given or real one, or (offline mode) the stand-in, started here. */
async function chooseGitHub(
  up: Startup,
  realGitHub: { vars: Record<string, string>; summary: string } | undefined,
): Promise<{ githubEnv: Record<string, string>; githubSummary: string }> {
  const { options, log } = up;
  let githubEnv = options.githubEnv ?? realGitHub?.vars;
  let githubSummary = realGitHub?.summary ?? `the GitHub at ${githubEnv?.GITHUB_API_URL ?? 'https://api.github.com'}`;
  if (options.offlineGitHub ?? !githubEnv) {
    log(
      'foureyes: no GitHub credentials: starting the GitHub stand-in (offline mode; act in it with `foureyes sandbox`) …',
    );
    const github = await startOfflineGitHub({
      dataDir: join(options.dataDir, 'github'),
      config: up.config,
      projectRoot: projectRoot(),
      port: options.githubPort,
    });
    up.github = github;
    githubEnv = { ...github.env, ...(options.githubEnv ?? {}) };
    githubSummary = `offline: the GitHub stand-in at ${github.url} (act as people with \`foureyes sandbox\`)`;
  }
  return { githubEnv, githubSummary };
}

/** One worker per zone; one deploy worker per environment, each with that environment's AppRole alone. */
function workerLaunches(
  up: Startup,
  base: Record<string, string>,
  orchestratorEnv: Record<string, string>,
  openbao: OpenBaoServer,
  deployers: DeployerBootstrap,
): Array<{ name: string; zone: Zone; env: Record<string, string> }> {
  const deployEnv = (creds: DeployerCredentials, environment?: string) => ({
    ...base,
    ...fromProcessEnv([UNSAFE_NO_SANDBOX_ENV]),
    ...fromProcessEnv(DEPLOYER_AWS_ENV),
    VAULT_ADDR: openbao.address,
    VAULT_ROLE_ID: creds.roleId,
    VAULT_SECRET_ID: creds.secretId,
    ...(environment ? { [DEPLOY_ENVIRONMENT_ENV]: environment } : {}),
  });
  const zoneEnv: Record<Exclude<Zone, 'deploy'>, Record<string, string>> = {
    orchestrator: { ...base, ...orchestratorEnv },
    checks: { ...base, ...fromProcessEnv([UNSAFE_NO_SANDBOX_ENV]) },
  };
  // The shared deployer too, if kept.
  return [
    { name: 'orchestrator', zone: 'orchestrator', env: zoneEnv.orchestrator },
    { name: 'checks', zone: 'checks', env: zoneEnv.checks },
    ...up.config.environments.map((e) => ({
      name: `deploy-${e.name}`,
      zone: 'deploy' as const,
      env: deployEnv(deployers.environments[e.name] as DeployerCredentials, e.name),
    })),
    ...(deployers.shared ? [{ name: 'deploy', zone: 'deploy' as const, env: deployEnv(deployers.shared) }] : []),
  ];
}

/** Starts each worker with only the variables its zone allows; returns the task queues to wait on. */
function startWorkers(
  up: Startup,
  base: Record<string, string>,
  launches: Array<{ name: string; zone: Zone; env: Record<string, string> }>,
): { workers: Record<string, ManagedProcess>; pollers: Poller[] } {
  const workers: Record<string, ManagedProcess> = {};
  const pollers: Poller[] = [];
  for (const launch of launches) {
    const { zone, name } = launch;
    const allowed = new Set([...Object.keys(base), ...ZONES[zone].allowedEnv]);
    const env = Object.fromEntries(Object.entries(launch.env).filter(([k]) => allowed.has(k)));
    const entry = nodeEntry(`src/workers/${zone === 'deploy' ? 'deployer' : zone}.ts`);
    const proc = startProcess(entry.command, entry.args, {
      name: `worker:${name}`,
      cwd: projectRoot(),
      env,
      logFile: join(up.logs, `worker-${name}.log`),
      echo: up.options.echo,
      pidFile: up.pidFile(`worker-${name}`),
    });
    up.processes.push(proc);
    workers[name] = proc;
    // Workflow task queue (1) for the orchestrator, activity task queue (2) for the others.
    pollers.push({ queue: zoneTaskQueue(zone, env), type: zone === 'orchestrator' ? 1 : 2, proc });
  }
  return { workers, pollers };
}

/** The gateway on its port, with its keys and whatever Slack and Teams settings the operator gave. */
async function startGateway(
  up: Startup,
  env: Record<string, string>,
): Promise<{ gateway: ManagedProcess; gatewayUrl: string }> {
  const gatewayPort = up.options.gatewayPort ?? (await freePort());
  const gatewayEnv = {
    ...env,
    PORT: String(gatewayPort),
    ...(process.env.SLACK_SIGNING_SECRET ? { SLACK_SIGNING_SECRET: process.env.SLACK_SIGNING_SECRET } : {}),
    // Microsoft Teams: the bot registration, its tenant, and (for a stand-in) where the Bot Framework keys are.
    ...Object.fromEntries(
      ['TEAMS_APP_ID', 'TEAMS_TENANT_ID', 'TEAMS_OPENID_METADATA_URL'].flatMap((k) =>
        process.env[k] ? [[k, process.env[k] as string]] : [],
      ),
    ),
  };
  const gatewayEntry = nodeEntry('src/gateway/main.ts');
  const gateway = startProcess(gatewayEntry.command, gatewayEntry.args, {
    name: 'gateway',
    cwd: projectRoot(),
    env: gatewayEnv,
    logFile: join(up.logs, 'gateway.log'),
    echo: up.options.echo,
    pidFile: up.pidFile('gateway'),
  });
  up.processes.push(gateway);
  return { gateway, gatewayUrl: `http://127.0.0.1:${gatewayPort}` };
}

/**
 * Ready means: the gateway started here answers, connected to this stack's namespace. Another server that took
 * the port after the preflight (a Temporal UI answers 200 on every path) is named, not taken for the gateway.
 */
async function waitForGateway(gatewayUrl: string, gateway: ManagedProcess, namespace: string): Promise<void> {
  try {
    await waitUntil(
      'gateway',
      async () => {
        const response = await fetch(`${gatewayUrl}/healthz`);
        return response.ok && ((await response.json()) as { namespace?: unknown }).namespace === namespace;
      },
      { timeoutMs: 60_000, process: gateway },
    );
  } catch (error) {
    const port = Number(new URL(gatewayUrl).port);
    throw (await portInUse(port)) ? portTaken('gateway', port) : error;
  }
}

async function waitForPollers(temporal: TemporalServer, pollers: Poller[]): Promise<void> {
  const connection = await Connection.connect({ address: temporal.address });
  try {
    for (const { queue, type, proc } of pollers) {
      await waitUntil(
        `worker on task queue ${queue}`,
        async () => {
          const result = await connection.workflowService.describeTaskQueue({
            namespace: temporal.namespace,
            taskQueue: { name: queue },
            taskQueueType: type,
          });
          return (result.pollers?.length ?? 0) > 0;
        },
        { timeoutMs: 120_000, process: proc },
      );
    }
  } finally {
    await connection.close();
  }
}

/** `foureyes up` uses the example configuration when the user has not written one yet. */
export function defaultConfigFile(
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = console.log,
): string {
  if (env.FOUREYES_CONFIG) return env.FOUREYES_CONFIG;
  const own = join(process.cwd(), 'foureyes.yaml');
  if (existsSync(own)) return own;
  const example = join(projectRoot(), 'foureyes.example.yaml');
  log(`foureyes: no foureyes.yaml here; using ${example} (copy it to foureyes.yaml to make it yours)`);
  return example;
}
