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

  async function recoverOrphans(
    leases: LeaseManager,
    input: DeployInput,
    step: 'deploy' | 'verify',
  ): Promise<LeaseRecord[]> {
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

  async function runStep(step: 'deploy', input: DeployInput): Promise<DeployReport>;
  async function runStep(step: 'verify', input: DeployInput): Promise<VerifyReport>;
  async function runStep(step: 'deploy' | 'verify', input: DeployInput): Promise<DeployReport | VerifyReport> {
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
    const what = `${step} of ${input.change} to ${input.environment}`;
    const logAttrs = { change: input.change, environment: input.environment, sha: input.sha, step };

    let records: LeaseRecord[] = [];
    let lease: IssuedLease | undefined;
    let workdir: string | undefined;
    let phase: DeployHeartbeat['phase'] = 'recovering';
    const beat = () => ctx.heartbeat({ step, phase, leases: records } satisfies DeployHeartbeat);
    const interval = Math.max(200, Math.min(5000, (ctx.info.heartbeatTimeoutMs ?? 15_000) / 3));
    const heartbeats = setInterval(beat, interval);

    const report = (result: Partial<CommandResult>, extra: LeaseRecord[]) => ({
      environment: input.environment,
      sha: input.sha,
      exitCode: result.exitCode ?? null,
      durationMs: Date.now() - started,
      outputTail: result.outputTail ?? '',
      leases: [...extra, ...records].map(sanitizeRecord),
    });

    let revoked = false;
    const revokeNow = async () => {
      lease = undefined;
      if (revoked || records.length === 0) return;
      revoked = true;
      phase = 'revoking';
      const done = await leases.revokeAll(input.change, input.environment, records);
      records = done;
      const failed = done.filter((r) => r.revokeError);
      if (failed.length > 0)
        ctx.log.error(
          `${failed.length} lease(s) could not be revoked now; their TTL ends them, revokeOutstanding retries`,
          { ...logAttrs, leaseIds: failed.map((r) => r.leaseId) },
        );
    };

    let recovered: LeaseRecord[] = [];
    try {
      try {
        recovered = await recoverOrphans(leases, input, step);
        if (step === 'deploy') {
          const marker = await vault()
            .read<{ data?: { at?: string } }>(deployedMarkerPath(config, input.idempotencyKey))
            .then(
              (r) => r.data?.data,
              (error: unknown) => {
                if (error instanceof VaultRequestError && error.status === 404) return undefined;
                throw error;
              },
            );
          if (marker) {
            ctx.log.info(
              `${input.change} was already deployed to ${input.environment} at ${input.sha}; not deploying again`,
              { ...logAttrs, deployedAt: marker.at },
            );
            return {
              ...report(
                { exitCode: 0, outputTail: `already deployed at ${marker.at ?? 'an earlier attempt'}` },
                recovered,
              ),
              status: 'already-deployed',
            } satisfies DeployReport;
          }
        }
        if (!command) {
          return {
            ...report({ exitCode: null, outputTail: 'no verify command configured' }, recovered),
            passed: true,
          } satisfies VerifyReport;
        }
        phase = 'fetching';
        beat();
        workdir = await checkoutSha(repo.remote, input.sha, ctx.cancellationSignal);
        if (step === 'deploy' || env.verifyWithLease) {
          phase = 'leasing';
          lease = await leases.issue(
            { change: input.change, environment: input.environment, stepTimeoutMs: command.timeout },
            (issued) => {
              records = issued;
              beat();
            },
          );
          records = lease.records;
        }
      } catch (error) {
        throw asFailure(error, `${what} is waiting`);
      }

      phase = 'running';
      beat();
      ctx.log.info(
        `${step} of ${input.change} to ${input.environment} at ${input.sha}: running the configured command`,
        { ...logAttrs, leaseIds: records.map((r) => r.leaseId) },
      );
      let outputBytes = 0;
      const result = await runCommand({
        run: command.run,
        cwd: workdir,
        env: commandEnv(input, step, lease),
        timeoutMs: command.timeout,
        network: command.network ?? true,
        writable: command.writable,
        sandbox: config.sandbox,
        secrets: lease?.secrets ?? [],
        signal: ctx.cancellationSignal,
        onLine: (line) => {
          outputBytes += line.length + 1;
          if (outputBytes <= command.outputLimit) ctx.log.info(`[${step} ${input.environment}] ${line}`, logAttrs);
        },
      });
      if (result.cancelled) {
        ctx.log.warn(`${what} cancelled: command killed`, logAttrs);
        throw new CancelledFailure(`${what} cancelled; the command's process group was killed`);
      }
      // Revoke before reporting, so that the report (and history) carries the revocation times.
      await revokeNow();
      const body = report(result, recovered);
      if (result.exitCode !== 0 || result.timedOut) {
        // A command that ran and failed is an outcome of the change, not a fault of the pipeline: it is returned,
        // so its exit code, output tail and leases reach status, the pull request and the audit. Only what kept
        // the command from running (OpenBao, the remote, the worker) throws.
        const failure = result.timedOut
          ? `timed out after ${Math.round(command.timeout / 1000)}s and was killed`
          : result.exitCode === null
            ? `was killed by ${result.signal ?? 'a signal'}`
            : `exited with code ${result.exitCode}`;
        ctx.log.warn(`${step} command for ${input.environment} ${failure}`, {
          ...logAttrs,
          durationMs: body.durationMs,
        });
        const failed = { ...body, failure, ...(result.timedOut ? { timedOut: true } : {}) };
        return step === 'deploy'
          ? ({ ...failed, status: 'failed' } satisfies DeployReport)
          : ({ ...failed, passed: false } satisfies VerifyReport);
      }
      if (step === 'verify') return { ...body, passed: true } satisfies VerifyReport;
      await writeMarker(input, config);
      ctx.log.info(`${input.change} deployed to ${input.environment} at ${input.sha}`, {
        ...logAttrs,
        durationMs: body.durationMs,
      });
      return { ...body, status: 'deployed' } satisfies DeployReport;
    } finally {
      // Revoke on every path: success, failure, timeout, cancellation. Synchronous, so that the
      // credentials are dead before the workflow moves on.
      await revokeNow();
      clearInterval(heartbeats);
      if (workdir) await rm(workdir, { recursive: true, force: true });
    }

    async function writeMarker(di: DeployInput, cfg: FoureyesConfig): Promise<void> {
      const data = {
        change: di.change,
        environment: di.environment,
        sha: di.sha,
        idempotencyKey: di.idempotencyKey,
        at: new Date().toISOString(),
      };
      for (let attempt = 1; attempt <= 3; attempt++) {
        try {
          await vault().write(deployedMarkerPath(cfg, di.idempotencyKey), { data });
          return;
        } catch (error) {
          if (attempt === 3) {
            // The deploy happened; report it. A retry of this activity would re-run the command, which
            // receives FOUREYES_IDEMPOTENCY_KEY to recognise the repeat.
            ctx.log.error(
              `deployed, but the idempotency marker could not be written: ${(error as Error).message}`,
              logAttrs,
            );
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
        }
      }
    }
  }

  return {
    async deploy(input) {
      return runStep('deploy', input);
    },
    async verify(input) {
      return runStep('verify', input);
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
