// The one runner for untrusted commands: the change's checks and the deploy/verify steps of an approved
// SHA. Each command runs in a fresh bubblewrap sandbox (bwrap: the sandbox Flatpak uses, well kept, no
// daemon, works unprivileged with user namespaces): its own unprivileged uid (a fresh one per run when the
// worker is root), its own pid/ipc/uts namespaces (it cannot see or signal the worker), an environment of
// exactly what it is given, the checkout read-write, the toolchain read-only, a private /tmp, and no
// network unless the configuration opts in. The sandbox dies as a whole on timeout, on cancellation and
// when the worker dies (bwrap --die-with-parent; pid namespace: its init's death kills every process).
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, lstatSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { LineRedactor, redactText } from './redact.ts';

const run = promisify(execFile);

/** A full commit SHA (SHA-1 or SHA-256 repositories), never an option or a ref name: it goes on git's command line. */
export const COMMIT_SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** Where the checkout appears inside the sandbox (the command's working directory). */
export const SANDBOX_CHECKOUT = '/checkout';
/** Set to 1 to run commands without a sandbox (machines without user namespaces). Shown on every result. */
export const UNSAFE_NO_SANDBOX_ENV = 'FOUREYES_UNSAFE_NO_SANDBOX';
export const UNSANDBOXED_NOTE =
  '[foureyes] WARNING: this command ran WITHOUT a sandbox (FOUREYES_UNSAFE_NO_SANDBOX=1): it could read its worker, the network and the filesystem';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Read-only toolchain: the system's programs and libraries, and the few /etc files they need to run. */
const TOOLCHAIN = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt'];
const ETC = [
  'alternatives',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'nsswitch.conf',
  'localtime',
  'mime.types',
  'gitconfig',
];
/** Only with network: name resolution. */
const ETC_NETWORK = ['resolv.conf', 'hosts', 'gai.conf', 'host.conf'];
/** First uid of the range fresh sandbox uids come from (when the worker runs as root). */
const UID_BASE = 200_000;
const UID_RANGE = 60_000;
const inUse = new Set<number>();

export interface SandboxResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
  /** The last `tailChars` characters of the output, redacted. */
  output: string;
  sandboxed: boolean;
}

export interface SandboxCommand {
  run: string;
  /** Host directory bound read-write at /checkout; the command starts there. */
  checkout: string;
  /** Exactly the command's environment (PATH, HOME and LANG are added when missing). */
  env: Record<string, string>;
  network: boolean;
  timeoutMs: number;
  /** Characters of output kept (the tail). */
  tailChars: number;
  /** Values redacted from every line before anyone sees it. */
  secrets?: readonly string[];
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  /** Extra read-only paths (a toolchain outside /usr, e.g. ~/.nvm). */
  readOnly?: readonly string[];
  /** Host folders a deploy step may write to, as configured (never for checks). */
  writable?: readonly string[];
  /** Cap on processes of the sandbox's own uid (a fork bomb stops there). */
  maxProcesses?: number;
}

export class SandboxUnavailableError extends Error {
  override name = 'SandboxUnavailableError';
}

export function sandboxDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[UNSAFE_NO_SANDBOX_ENV] === '1';
}

/** bwrap from FOUREYES_BWRAP_BIN (a path), else PATH. */
function bwrapPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.FOUREYES_BWRAP_BIN) return existsSync(env.FOUREYES_BWRAP_BIN) ? env.FOUREYES_BWRAP_BIN : undefined;
  for (const dir of (process.env.PATH ?? DEFAULT_PATH).split(':')) {
    const candidate = `${dir}/bwrap`;
    if (dir && existsSync(candidate)) return candidate;
  }
  return ['/usr/bin/bwrap', '/bin/bwrap'].find((p) => existsSync(p));
}

const isRoot = () => process.getuid?.() === 0;

function allocateUid(): number {
  for (;;) {
    const uid = UID_BASE + randomInt(UID_RANGE);
    if (!inUse.has(uid)) {
      inUse.add(uid);
      return uid;
    }
  }
}

function mounts(network: boolean, readOnly: readonly string[]): string[] {
  const args: string[] = [];
  for (const path of [...TOOLCHAIN, ...readOnly]) {
    let stat;
    try {
      stat = lstatSync(path);
    } catch {
      continue;
    }
    // /bin -> usr/bin on merged-/usr systems: the same link inside.
    if (stat.isSymbolicLink())
      args.push('--symlink', spawnSync('readlink', [path], { encoding: 'utf8' }).stdout.trim(), path);
    else args.push('--ro-bind', path, path);
  }
  for (const name of [...ETC, ...(network ? ETC_NETWORK : [])])
    args.push('--ro-bind-try', `/etc/${name}`, `/etc/${name}`);
  return args;
}

/** bwrap's arguments for one command; the environment is passed through bwrap's own (never its argv). */
export function bwrapArgs(
  command: Pick<SandboxCommand, 'run' | 'network' | 'readOnly' | 'writable'> & { checkout?: string },
): string[] {
  return [
    '--die-with-parent',
    '--new-session',
    '--unshare-user',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(command.network ? ['--share-net'] : ['--unshare-net']),
    '--uid',
    '1000',
    '--gid',
    '1000',
    '--hostname',
    'foureyes-sandbox',
    '--cap-drop',
    'ALL',
    ...mounts(command.network, command.readOnly ?? []),
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
    '--dir',
    '/tmp/home',
    ...(command.writable ?? []).flatMap((path) => ['--bind', path, path]),
    ...(command.checkout
      ? ['--bind', command.checkout, SANDBOX_CHECKOUT, '--chdir', SANDBOX_CHECKOUT]
      : ['--chdir', '/']),
    '--',
    'sh',
    '-c',
    command.run,
  ];
}

const probed = new Set<string>();
/**
 * Starts one empty sandbox the way commands are run, once per process; throws with the kernel or
 * container setting to change when it cannot. Workers call it at start so that they refuse to run
 * commands unsandboxed by accident.
 */
export function assertSandboxWorks(env: NodeJS.ProcessEnv = process.env): void {
  if (sandboxDisabled(env)) return;
  const bwrap = bwrapPath(env);
  if (bwrap && probed.has(bwrap)) return;
  if (!bwrap) {
    throw new SandboxUnavailableError(
      'bubblewrap (bwrap) is not installed: checks and deploy commands run in a bwrap sandbox. Install it (Debian/Ubuntu: apt-get install bubblewrap; `foureyes tools` says so too), or set FOUREYES_UNSAFE_NO_SANDBOX=1 to run them unsandboxed (shown on every result)',
    );
  }
  const uid = isRoot() ? UID_BASE + UID_RANGE : undefined;
  const result = spawnSync(bwrap, bwrapArgs({ run: 'true', network: false }), {
    encoding: 'utf8',
    env: { PATH: DEFAULT_PATH },
    timeout: 20_000,
    ...(uid !== undefined ? { uid, gid: uid } : {}),
  });
  if (result.status !== 0) {
    const why = (result.stderr || result.error?.message || `exit ${result.status}`).trim();
    throw new SandboxUnavailableError(
      `bubblewrap cannot start a sandbox here (${why}). It needs unprivileged user namespaces: sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1 (Debian kernels), kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04+); in a container, a seccomp/AppArmor profile that allows unshare/clone(CLONE_NEWUSER) (docker: --security-opt seccomp=unconfined --security-opt apparmor=unconfined, or docker-compose security_opt). Or set FOUREYES_UNSAFE_NO_SANDBOX=1 to run commands unsandboxed (shown on every result)`,
    );
  }
  probed.add(bwrap);
}

/** Gives the checkout to the sandbox's uid (recursively) and lets that uid reach it. */
async function handOver(checkout: string, uid: number): Promise<void> {
  await run('chown', ['-R', `${uid}:${uid}`, checkout]);
  // The worker's temporary folder stays unlistable; the sandbox uid may only traverse to its checkout.
  await chmod(dirname(checkout), 0o711);
}

/**
 * Runs `sh -c <run>` in a fresh sandbox and returns its (redacted) output tail. Timeout and cancellation
 * kill the whole sandbox at once (SIGKILL to bwrap; the pid namespace takes everything in it down).
 */
export async function runSandboxed(command: SandboxCommand): Promise<SandboxResult> {
  const started = Date.now();
  const secrets = command.secrets ?? [];
  const env = { PATH: DEFAULT_PATH, HOME: '/tmp/home', LANG: 'C.UTF-8', ...command.env };
  const unsafe = sandboxDisabled();
  let tail = unsafe ? `${UNSANDBOXED_NOTE}\n` : '';
  const keep = (line: string) => {
    tail = `${tail}${line}\n`.slice(-command.tailChars);
    command.onLine?.(line);
  };

  const uid = !unsafe && isRoot() ? allocateUid() : undefined;
  try {
    let file: string;
    let args: string[];
    let options: Parameters<typeof spawn>[2];
    if (unsafe) {
      // Only a process group, as before the sandbox: the setting's warning is on the result.
      file = 'sh';
      args = ['-c', command.run];
      options = {
        cwd: command.checkout,
        env: { ...env, HOME: command.checkout },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      };
    } else {
      const bwrap = bwrapPath();
      if (!bwrap) throw new SandboxUnavailableError('bubblewrap (bwrap) is not installed; see `foureyes tools`');
      if (uid !== undefined) await handOver(command.checkout, uid);
      file = bwrap;
      args = bwrapArgs(command);
      // The process cap counts the sandbox's own uid only, so it is set only when that uid is fresh.
      if (uid !== undefined && command.maxProcesses) {
        args = [`--nproc=${command.maxProcesses}`, '--', bwrap, ...args];
        file = 'prlimit';
      }
      options = {
        cwd: '/',
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(uid !== undefined ? { uid, gid: uid } : {}),
      };
    }
    const child = spawn(file, args, options);
    // Listened for from the start: 'close' can follow 'exit' in the same tick, before an await after 'exit' resumes.
    const closed = new Promise((resolve) => child.once('close', resolve));
    const redactors = [child.stdout, child.stderr].map((stream) => {
      const redactor = new LineRedactor(secrets, keep);
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => redactor.push(chunk));
      return redactor;
    });

    let timedOut = false;
    let cancelled = false;
    const kill = () => {
      if (child.pid === undefined) return;
      try {
        // Unsafe mode: the process group. Sandboxed: bwrap itself, and with it the namespace.
        process.kill(unsafe ? -child.pid : child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, command.timeoutMs);
    const onAbort = () => {
      cancelled = true;
      kill();
    };
    if (command.signal?.aborted) onAbort();
    else command.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('error', (error) => {
          keep(`[foureyes] could not start the command: ${error.message}`);
          resolve({ code: null, signal: null });
        });
        child.once('exit', (c, s) => resolve({ code: c, signal: s }));
      });
      if (unsafe) kill();
      // Output still in flight is read to its end, but a process that escaped with the pipes open holds nothing up.
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise((resolve) => (grace = setTimeout(resolve, 2000)))]);
      clearTimeout(grace);
      for (const r of redactors) r.flush();
      return {
        exitCode: code,
        signal,
        timedOut,
        cancelled,
        durationMs: Date.now() - started,
        output: redactText(tail, secrets),
        sandboxed: !unsafe,
      };
    } finally {
      clearTimeout(timer);
      command.signal?.removeEventListener('abort', onAbort);
    }
  } finally {
    if (uid !== undefined) inUse.delete(uid);
  }
}
