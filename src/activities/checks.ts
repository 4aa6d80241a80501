// Checks zone: runs the change's own checks at exactly the head SHA. The code under test is untrusted, so
// each check runs in a fresh sandbox (sandbox.ts: own uid and pid namespace, only the checkout writable, no
// network by default, nothing in its environment but PATH/HOME/LANG), with a time limit and an output cap.
// The worker's own git (fetching the SHA) runs outside it, in a process group.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandConfig, FoureyesConfig } from '../config/schema.ts';
import type { CheckResult, ChecksReport } from '../shared/types.ts';
import { redactCredentialUrls } from './redact.ts';
import { COMMIT_SHA, runSandboxed } from './sandbox.ts';

/** What the record keeps of a check's output (the tail); the full capture is bounded by `outputLimit`. */
const REPORT_TAIL_CHARS = 8_192;
const KILL_GRACE_MS = 2_000;
const HEARTBEAT_MS = 1_000;

export interface RunResult {
  exitCode: number | null;
  timedOut: boolean;
  cancelled: boolean;
  output: string;
  durationMs: number;
}

/** The only variables a check sees. */
export function scrubbedEnv(home: string): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: home, LANG: process.env.LANG ?? 'C.UTF-8' };
}

/** Keeps the last `limit` characters of a stream of chunks. */
class Tail {
  private text = '';
  constructor(private readonly limit: number) {}
  push(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.limit * 2) this.text = this.text.slice(-this.limit);
  }
  value(): string {
    return this.text.length > this.limit ? this.text.slice(-this.limit) : this.text;
  }
}

/** Runs `sh -c command` in its own process group; kills the whole group on timeout or abort. */
export function runInGroup(
  command: string,
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number; outputLimit: number; signal?: AbortSignal },
): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail = new Tail(opts.outputLimit);
    let timedOut = false;
    let cancelled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return; // already gone
      }
      killTimer = setTimeout(() => {
        try {
          process.kill(-(child.pid as number), 'SIGKILL');
        } catch {
          // already gone
        }
      }, KILL_GRACE_MS);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);
    const onAbort = () => {
      cancelled = true;
      killGroup();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8').on('data', (c: string) => tail.push(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => tail.push(c));
    const finish = (exitCode: number | null, extra = '') => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      // Leave nothing behind that the check started in its group.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // group already empty
        }
      }
      resolve({ exitCode, timedOut, cancelled, output: tail.value() + extra, durationMs: Date.now() - started });
    };
    child.on('error', (error) => finish(null, `\n[foureyes] could not start: ${error.message}`));
    child.on('close', (code) => finish(code));
  });
}

async function git(args: string[], cwd: string, home: string, signal?: AbortSignal): Promise<string> {
  // No credential helper, no prompt, no system or user config: only what the remote serves anonymously.
  const env = {
    ...scrubbedEnv(home),
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
  };
  const result = await runInGroup(`git ${args.map(shellQuote).join(' ')}`, {
    cwd,
    env,
    timeoutMs: 300_000,
    outputLimit: 4_096,
    ...(signal ? { signal } : {}),
  });
  if (result.cancelled) throw new CancelledFailure('checks cancelled during git');
  // git's own messages name the remote, which may carry credentials: strip them before the message exists.
  if (result.exitCode !== 0)
    throw ApplicationFailure.retryable(
      redactCredentialUrls(
        `git ${args[0]} failed (exit ${result.exitCode ?? 'none'}): ${result.output.trim().slice(-500)}`,
      ),
      'GitFailed',
    );
  return result.output;
}

function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A fresh working copy of exactly `sha` from `remote` (a URL or a local path). */
export async function checkoutExactly(
  remote: string,
  sha: string,
  dir: string,
  home: string,
  signal?: AbortSignal,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await git(['init', '-q', '.'], dir, home, signal);
  await git(['fetch', '-q', '--no-tags', '--depth', '1', '--', remote, sha], dir, home, signal);
  await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', 'FETCH_HEAD'], dir, home, signal);
  const head = (await git(['rev-parse', 'HEAD'], dir, home, signal)).trim();
  if (head !== sha) throw ApplicationFailure.nonRetryable(`fetched ${head}, expected ${sha}`, 'ShaMismatch');
}

export async function runCheck(
  check: CommandConfig & { name: string },
  cwd: string,
  sandbox: FoureyesConfig['sandbox'],
  signal?: AbortSignal,
): Promise<CheckResult & { cancelled: boolean }> {
  // The change's own code: in a fresh sandbox, with nothing in its environment but PATH/HOME/LANG.
  const result = await runSandboxed({
    run: check.run,
    checkout: cwd,
    env: {},
    network: check.network ?? false,
    timeoutMs: check.timeout,
    tailChars: Math.min(check.outputLimit, REPORT_TAIL_CHARS),
    readOnly: sandbox.readOnly,
    maxProcesses: sandbox.maxProcesses,
    ...(signal ? { signal } : {}),
  });
  const note = result.timedOut ? `\n[foureyes] timed out after ${check.timeout} ms; sandbox killed` : '';
  return {
    name: check.name,
    passed: result.exitCode === 0 && !result.timedOut,
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    timedOut: result.timedOut,
    outputTail: (result.output + note).slice(-Math.min(check.outputLimit, REPORT_TAIL_CHARS)),
    cancelled: result.cancelled,
  };
}

export function createChecksActivities(getConfig: () => FoureyesConfig) {
  return {
    async runChecks(input: { change: string; sha: string }): Promise<ChecksReport> {
      const repoName = input.change.split('#')[0] ?? '';
      const repo = getConfig().repositories.find((r) => r.name.toLowerCase() === repoName.toLowerCase());
      if (!repo)
        throw ApplicationFailure.nonRetryable(
          `repository ${repoName} is not configured in foureyes.yaml`,
          'UnknownRepository',
        );
      // A SHA, never an option or a ref name: it goes on git's command line.
      if (!COMMIT_SHA.test(input.sha))
        throw ApplicationFailure.nonRetryable(
          `not a full commit SHA: ${JSON.stringify(input.sha.slice(0, 80))}`,
          'InvalidSha',
        );

      const ctx = Context.current();
      const started = Date.now();
      let step = 'fetch';
      const beat = setInterval(() => ctx.heartbeat({ step }), HEARTBEAT_MS);
      const root = await mkdtemp(join(tmpdir(), 'foureyes-checks-'));
      try {
        const home = join(root, 'home');
        const src = join(root, 'src');
        await mkdir(home);
        await checkoutExactly(repo.remote, input.sha, src, home, ctx.cancellationSignal);
        const results: CheckResult[] = [];
        for (const check of repo.checks) {
          step = check.name;
          const { cancelled, ...result } = await runCheck(check, src, getConfig().sandbox, ctx.cancellationSignal);
          if (cancelled) throw new CancelledFailure(`checks cancelled during ${check.name}`);
          results.push(result);
        }
        return { sha: input.sha, passed: results.every((r) => r.passed), results, durationMs: Date.now() - started };
      } finally {
        clearInterval(beat);
        await rm(root, { recursive: true, force: true });
      }
    },
  };
}
