// The deployer's activities (task queue `foureyes-deploy-<env>`, one worker per environment, the only zone with a
// Vault credential):
// lease -> run the environment's deploy command in a working copy of the approved SHA -> revoke.
//
// Only identifiers cross the history boundary: the workflow passes change, environment, SHA and the
// idempotency key; the command, the lease kind and the repository remote come from the trusted
// configuration the worker was started with. Leased values live in this process and in the command's
// environment only (in its sandbox); its output is redacted line by line before it is logged or reported.
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvironmentConfig, FoureyesConfig, RepositoryConfig, StepCommandConfig } from '../config/schema.ts';
import { parseChangeRef, repoFullName } from '../shared/change-ref.ts';
import type { DeployInput, DeployReport, LeaseRecord, VerifyReport } from '../shared/types.ts';
import type { DeployActivities } from './interfaces.ts';
import { AwsUnavailableError } from './aws-leases.ts';
import { deployedMarkerPath, LeaseFieldError, LeaseManager, sanitizeRecord, type IssuedLease } from './leases.ts';
import { redactCredentialUrls } from './redact.ts';
import { COMMIT_SHA, runSandboxed } from './sandbox.ts';
import { appRoleFromEnv, DeployerVault, VaultRequestError, VaultUnavailableError } from './vault-client.ts';

/** Characters of output kept for the report and error messages. */
const TAIL_CHARS = 4000;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Heartbeat details: identifiers only, so that a retried attempt can revoke what this one leased. */
export interface DeployHeartbeat {
  step: 'deploy' | 'verify';
  phase: 'recovering' | 'fetching' | 'leasing' | 'running' | 'revoking';
  leases: LeaseRecord[];
}

interface Target {
  env: EnvironmentConfig;
  repo: RepositoryConfig;
}

export interface CommandResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
  outputTail: string;
}

function resolveTarget(config: FoureyesConfig, input: { change: string; environment: string }): Target {
  let repoName: string;
  try {
    repoName = repoFullName(parseChangeRef(input.change));
  } catch (error) {
    throw ApplicationFailure.nonRetryable((error as Error).message, 'InvalidInput');
  }
  const repo = config.repositories.find((r) => r.name.toLowerCase() === repoName.toLowerCase());
  if (!repo)
    throw ApplicationFailure.nonRetryable(
      `repository ${repoName} is not configured in foureyes.yaml`,
      'UnknownRepository',
    );
  const env = config.environments.find((e) => e.name === input.environment);
  const allowed = repo.environments ?? config.environments.map((e) => e.name);
  if (!env || !allowed.includes(input.environment)) {
    throw ApplicationFailure.nonRetryable(
      `environment ${input.environment} is not configured for ${repoName} in foureyes.yaml`,
      'UnknownEnvironment',
    );
  }
  return { env, repo };
}

/** Turn infrastructure errors into failures that say what the activity waits for. */
function asFailure(error: unknown, what: string): unknown {
  if (error instanceof ApplicationFailure || error instanceof CancelledFailure) return error;
  if (error instanceof AwsUnavailableError)
    return ApplicationFailure.retryable(`${what}: ${error.message}`, 'AwsUnavailable');
  if (error instanceof VaultUnavailableError)
    return ApplicationFailure.retryable(`${what}: ${error.message}`, 'VaultUnavailable');
  if (error instanceof VaultRequestError)
    return ApplicationFailure.nonRetryable(
      `${what}: ${error.message} (check the deployer's and the environment's policies)`,
      'VaultDenied',
    );
  if (error instanceof LeaseFieldError)
    return ApplicationFailure.nonRetryable(`${what}: ${error.message}`, 'LeaseMisconfigured');
  return error;
}

async function git(args: string[], cwd: string, signal: AbortSignal): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd,
      signal,
      env: {
        PATH: process.env.PATH ?? DEFAULT_PATH,
        HOME: cwd,
        GIT_TERMINAL_PROMPT: '0',
        GIT_CONFIG_NOSYSTEM: '1',
        LANG: 'C',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-2000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/** A working copy of exactly `sha` from the repository's configured remote. */
export async function checkoutSha(remote: string, sha: string, signal: AbortSignal): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'foureyes-deploy-'));
  try {
    const steps: string[][] = [
      ['init', '-q', '.'],
      ['fetch', '-q', '--depth', '1', '--no-tags', '--', remote, sha],
      ['checkout', '-q', '--detach', 'FETCH_HEAD'],
    ];
    for (const args of steps) {
      const result = await git(args, dir, signal);
      if (result.code !== 0) {
        const detail = result.output.trim().split('\n').slice(-3).join(' | ');
        const missing = /not our ref|couldn't find remote ref|no such remote ref|unadvertised object/i.test(
          result.output,
        );
        // The remote may carry credentials (https://user:token@host/...): never into a message or history.
        const message = redactCredentialUrls(
          `git ${args[0]} of ${sha} from ${remote} failed (exit ${result.code}): ${detail}`,
        );
        throw missing
          ? ApplicationFailure.nonRetryable(message, 'ShaNotFound')
          : ApplicationFailure.retryable(
              `${message}; waiting for the repository remote to be reachable`,
              'GitUnavailable',
            );
      }
    }
    const head = await git(['rev-parse', 'HEAD'], dir, signal);
    if (head.output.trim() !== sha)
      throw ApplicationFailure.nonRetryable(`working copy is at ${head.output.trim()}, expected ${sha}`, 'ShaMismatch');
    return dir;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Runs `sh -c <run>` in the sandbox every untrusted command runs in (sandbox.ts), seeing the working copy
 * of the approved SHA and exactly `env` (its lease's values), never this worker's environ, AppRole secret
 * or Vault token. Output is redacted line by line and handed to `onLine`. Timeout, cancellation and the
 * death of this worker process (SIGKILL included) kill the whole sandbox, so a crashed attempt's command
 * cannot race the retried one.
 */
export async function runCommand(options: {
  run: string;
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  secrets: readonly string[];
  signal: AbortSignal;
  onLine: (line: string) => void;
  network?: boolean;
  writable?: readonly string[];
  sandbox?: FoureyesConfig['sandbox'];
}): Promise<CommandResult> {
  const result = await runSandboxed({
    run: options.run,
    checkout: options.cwd,
    env: options.env,
    network: options.network ?? true,
    timeoutMs: options.timeoutMs,
    tailChars: TAIL_CHARS,
    secrets: options.secrets,
    signal: options.signal,
    onLine: options.onLine,
    readOnly: options.sandbox?.readOnly ?? [],
    writable: options.writable ?? [],
    ...(options.sandbox ? { maxProcesses: options.sandbox.maxProcesses } : {}),
  });
  return {
    exitCode: result.exitCode,
    signal: result.signal,
    timedOut: result.timedOut,
    cancelled: result.cancelled,
    durationMs: result.durationMs,
    outputTail: result.output,
  };
}

function commandEnv(
  input: DeployInput,
  step: 'deploy' | 'verify',
  lease: IssuedLease | undefined,
): Record<string, string> {
  return {
    PATH: DEFAULT_PATH,
    LANG: 'C.UTF-8',
    FOUREYES_CHANGE: input.change,
    FOUREYES_ENVIRONMENT: input.environment,
    FOUREYES_SHA: input.sha,
    FOUREYES_IDEMPOTENCY_KEY: input.idempotencyKey,
    FOUREYES_STEP: step,
    ...(lease?.env ?? {}),
  };
}

export interface DeployActivityOptions {
  /** Build the Vault client (tests); default: AppRole from the worker's environment. */
  vault?: () => DeployerVault;
}

type Step = 'deploy' | 'verify';

async function recoverOrphans(leases: LeaseManager, input: DeployInput, step: Step): Promise<LeaseRecord[]> {
  const ctx = Context.current();
  const previous = ctx.info.heartbeatDetails as Partial<DeployHeartbeat> | undefined;
  const fromHeartbeat = Array.isArray(previous?.leases) ? previous.leases : [];
  ctx.heartbeat({ step, phase: 'recovering', leases: fromHeartbeat } satisfies DeployHeartbeat);
  const revoked = await leases.revokeOutstanding(input.change, input.environment, fromHeartbeat);
  if (revoked.length > 0) {
    ctx.log.warn(`revoked ${revoked.length} lease(s) left over by an earlier attempt`, {
      change: input.change,
      environment: input.environment,
      leaseIds: revoked.map((r) => r.leaseId),
      failed: revoked.filter((r) => r.revokeError).length,
    });
  }
  return revoked;
}

/** Why a command that ran did not succeed, in words for the report. */
function failureText(result: CommandResult, command: StepCommandConfig): string {
  if (result.timedOut) return `timed out after ${Math.round(command.timeout / 1000)}s and was killed`;
  return result.exitCode === null
    ? `was killed by ${result.signal ?? 'a signal'}`
    : `exited with code ${result.exitCode}`;
}

/**
 * One attempt of a deploy or verify step: the leases it holds, its working copy and its heartbeat, which
 * carries the lease identifiers so that a retried attempt can revoke them.
 */
class StepAttempt {
  readonly what: string;
  private readonly logAttrs: { change: string; environment: string; sha: string; step: Step };
  private records: LeaseRecord[] = [];
  private recovered: LeaseRecord[] = [];
  private lease: IssuedLease | undefined;
  private workdir: string | undefined;
  private phase: DeployHeartbeat['phase'] = 'recovering';
  private revoked = false;
  private readonly heartbeats: ReturnType<typeof setInterval>;

  constructor(
    private readonly ctx: Context,
    private readonly started: number,
    private readonly step: Step,
    private readonly input: DeployInput,
    private readonly config: FoureyesConfig,
    private readonly leases: LeaseManager,
    private readonly vault: () => DeployerVault,
  ) {
    this.what = `${step} of ${input.change} to ${input.environment}`;
    this.logAttrs = { change: input.change, environment: input.environment, sha: input.sha, step };
    const interval = Math.max(200, Math.min(5000, (ctx.info.heartbeatTimeoutMs ?? 15_000) / 3));
    this.heartbeats = setInterval(() => this.beat(), interval);
  }

  private beat(): void {
    this.ctx.heartbeat({ step: this.step, phase: this.phase, leases: this.records } satisfies DeployHeartbeat);
  }

  private report(result: Partial<CommandResult>) {
    return {
      environment: this.input.environment,
      sha: this.input.sha,
      exitCode: result.exitCode ?? null,
      durationMs: Date.now() - this.started,
      outputTail: result.outputTail ?? '',
      leases: [...this.recovered, ...this.records].map(sanitizeRecord),
    };
  }

  /** Revokes what an earlier attempt left; for a deploy, the report of an earlier attempt that deployed. */
  async recover(): Promise<DeployReport | undefined> {
    this.recovered = await recoverOrphans(this.leases, this.input, this.step);
    if (this.step !== 'deploy') return undefined;
    const marker = await this.vault()
      .read<{ data?: { at?: string } }>(deployedMarkerPath(this.config, this.input.idempotencyKey))
      .then(
        (r) => r.data?.data,
        (error: unknown) => {
          if (error instanceof VaultRequestError && error.status === 404) return undefined;
          throw error;
        },
      );
    if (!marker) return undefined;
    this.ctx.log.info(
      `${this.input.change} was already deployed to ${this.input.environment} at ${this.input.sha}; not deploying again`,
      { ...this.logAttrs, deployedAt: marker.at },
    );
    return {
      ...this.report({ exitCode: 0, outputTail: `already deployed at ${marker.at ?? 'an earlier attempt'}` }),
      status: 'already-deployed',
    } satisfies DeployReport;
  }

  notConfigured(): VerifyReport {
    return { ...this.report({ exitCode: null, outputTail: 'no verify command configured' }), passed: true };
  }

  /** The working copy of the SHA and, when `withLease`, the environment's lease. */
  async prepare(remote: string, command: StepCommandConfig, withLease: boolean): Promise<void> {
    this.phase = 'fetching';
    this.beat();
    this.workdir = await checkoutSha(remote, this.input.sha, this.ctx.cancellationSignal);
    if (!withLease) return;
    this.phase = 'leasing';
    this.lease = await this.leases.issue(
      { change: this.input.change, environment: this.input.environment, stepTimeoutMs: command.timeout },
      (issued) => {
        this.records = issued;
        this.beat();
      },
    );
    this.records = this.lease.records;
  }

  private async runConfigured(command: StepCommandConfig): Promise<CommandResult> {
    const { ctx, input, step, logAttrs } = this;
    this.phase = 'running';
    this.beat();
    ctx.log.info(`${step} of ${input.change} to ${input.environment} at ${input.sha}: running the configured command`, {
      ...logAttrs,
      leaseIds: this.records.map((r) => r.leaseId),
    });
    let outputBytes = 0;
    return runCommand({
      run: command.run,
      cwd: this.workdir as string,
      env: commandEnv(input, step, this.lease),
      timeoutMs: command.timeout,
      network: command.network ?? true,
      writable: command.writable,
      sandbox: this.config.sandbox,
      secrets: this.lease?.secrets ?? [],
      signal: ctx.cancellationSignal,
      onLine: (line) => {
        outputBytes += line.length + 1;
        if (outputBytes <= command.outputLimit) ctx.log.info(`[${step} ${input.environment}] ${line}`, logAttrs);
      },
    });
  }

  async execute(command: StepCommandConfig): Promise<DeployReport | VerifyReport> {
    const result = await this.runConfigured(command);
    if (result.cancelled) {
      this.ctx.log.warn(`${this.what} cancelled: command killed`, this.logAttrs);
      throw new CancelledFailure(`${this.what} cancelled; the command's process group was killed`);
    }
    // Revoke before reporting, so that the report (and history) carries the revocation times.
    await this.revokeNow();
    const body = this.report(result);
    if (result.exitCode !== 0 || result.timedOut) {
      // A command that ran and failed is an outcome of the change, not a fault of the pipeline: it is returned,
      // so its exit code, output tail and leases reach status, the pull request and the audit. Only what kept
      // the command from running (OpenBao, the remote, the worker) throws.
      const failure = failureText(result, command);
      this.ctx.log.warn(`${this.step} command for ${this.input.environment} ${failure}`, {
        ...this.logAttrs,
        durationMs: body.durationMs,
      });
      const failed = { ...body, failure, ...(result.timedOut ? { timedOut: true } : {}) };
      return this.step === 'deploy'
        ? ({ ...failed, status: 'failed' } satisfies DeployReport)
        : ({ ...failed, passed: false } satisfies VerifyReport);
    }
    if (this.step === 'verify') return { ...body, passed: true } satisfies VerifyReport;
    await this.writeMarker();
    this.ctx.log.info(`${this.input.change} deployed to ${this.input.environment} at ${this.input.sha}`, {
      ...this.logAttrs,
      durationMs: body.durationMs,
    });
    return { ...body, status: 'deployed' } satisfies DeployReport;
  }

  private async revokeNow(): Promise<void> {
    this.lease = undefined;
    if (this.revoked || this.records.length === 0) return;
    this.revoked = true;
    this.phase = 'revoking';
    const done = await this.leases.revokeAll(this.input.change, this.input.environment, this.records);
    this.records = done;
    const failed = done.filter((r) => r.revokeError);
    if (failed.length > 0)
      this.ctx.log.error(
        `${failed.length} lease(s) could not be revoked now; their TTL ends them, revokeOutstanding retries`,
        { ...this.logAttrs, leaseIds: failed.map((r) => r.leaseId) },
      );
  }

  private async writeMarker(): Promise<void> {
    const di = this.input;
    const data = {
      change: di.change,
      environment: di.environment,
      sha: di.sha,
      idempotencyKey: di.idempotencyKey,
      at: new Date().toISOString(),
    };
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await this.vault().write(deployedMarkerPath(this.config, di.idempotencyKey), { data });
        return;
      } catch (error) {
        if (attempt === 3) {
          // The deploy happened; report it. A retry of this activity would re-run the command, which
          // receives FOUREYES_IDEMPOTENCY_KEY to recognise the repeat.
          this.ctx.log.error(
            `deployed, but the idempotency marker could not be written: ${(error as Error).message}`,
            this.logAttrs,
          );
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
    }
  }

  /** Revoke on every path: success, failure, timeout, cancellation. Synchronous, so that the credentials
   * are dead before the workflow moves on. */
  async finish(): Promise<void> {
    await this.revokeNow();
    clearInterval(this.heartbeats);
    if (this.workdir) await rm(this.workdir, { recursive: true, force: true });
  }
}

async function runStep(
  step: 'deploy',
  input: DeployInput,
  getConfig: () => FoureyesConfig,
  vault: () => DeployerVault,
): Promise<DeployReport>;
async function runStep(
  step: 'verify',
  input: DeployInput,
  getConfig: () => FoureyesConfig,
  vault: () => DeployerVault,
): Promise<VerifyReport>;
async function runStep(
  step: Step,
  input: DeployInput,
  getConfig: () => FoureyesConfig,
  vault: () => DeployerVault,
): Promise<DeployReport | VerifyReport> {
  const ctx = Context.current();
  const started = Date.now();
  const config = getConfig();
  const { env, repo } = resolveTarget(config, input);
  if (!COMMIT_SHA.test(input.sha))
    throw ApplicationFailure.nonRetryable(
      `expected a full commit SHA, got ${JSON.stringify(input.sha.slice(0, 50))}`,
      'InvalidInput',
    );
  const command: StepCommandConfig | undefined = step === 'deploy' ? env.deploy : env.verify;
  const leases = new LeaseManager(vault(), config);
  const attempt = new StepAttempt(ctx, started, step, input, config, leases, vault);
  try {
    try {
      const done = await attempt.recover();
      if (done) return done;
      if (!command) return attempt.notConfigured();
      await attempt.prepare(repo.remote, command, step === 'deploy' || env.verifyWithLease);
    } catch (error) {
      throw asFailure(error, `${attempt.what} is waiting`);
    }
    return await attempt.execute(command);
  } finally {
    await attempt.finish();
  }
}

export function createDeployActivities(
  getConfig: () => FoureyesConfig,
  env: NodeJS.ProcessEnv = process.env,
  options: DeployActivityOptions = {},
): DeployActivities {
  let client: DeployerVault | undefined;
  const vault = (): DeployerVault => {
    if (options.vault) return options.vault();
    if (!client) {
      try {
        client = new DeployerVault(appRoleFromEnv(env, getConfig().vault.namespace));
      } catch (error) {
        throw ApplicationFailure.nonRetryable((error as Error).message, 'NoVaultCredential');
      }
    }
    return client;
  };

  return {
    async deploy(input) {
      return runStep('deploy', input, getConfig, vault);
    },
    async verify(input) {
      return runStep('verify', input, getConfig, vault);
    },
    async revokeOutstanding(input) {
      const config = getConfig();
      resolveTarget(config, { change: input.change, environment: input.environment });
      try {
        const revoked = await new LeaseManager(vault(), config).revokeOutstanding(input.change, input.environment);
        const failed = revoked.filter((r) => r.revokeError);
        if (failed.length > 0)
          throw ApplicationFailure.retryable(
            `${failed.length} lease(s) of ${input.change} in ${input.environment} not revoked yet: ${failed[0]?.revokeError ?? ''}`,
            'RevokeFailed',
          );
        return revoked;
      } catch (error) {
        throw asFailure(error, `revoking the leases of ${input.change} in ${input.environment} is waiting`);
      }
    },
  };
}
