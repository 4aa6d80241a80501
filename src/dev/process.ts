// Child processes of the local stack: each in its own process group so that stopping it stops
// everything it started; output prefixed with the child's name; readiness by probing, not by sleeping.
// Every child is registered while it runs (so a Ctrl-C at any moment can stop all of them), is watched by
// a watchdog that kills its group when this process dies (SIGKILL included), and may leave a pid file so
// that a later start on the same data folder can recognise it as an orphan.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import {
  createWriteStream,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface StartOptions extends SpawnOptions {
  name: string;
  /** Append output here (a log file) instead of, or as well as, the console. */
  logFile?: string;
  /** Stream output to the console: every line, or only error lines ('problems'). */
  echo?: boolean | 'problems';
  /** Rewrites each output line before it is logged or echoed (e.g. to drop a printed root token). */
  redact?: (line: string) => string;
  /** Records pid and start time here while the child runs (see `cleanUpOrphans`). */
  pidFile?: string;
}

/** Start-up was interrupted (Ctrl-C): nothing new is started. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

// Children in start order, while they run.
const live: ManagedProcess[] = [];
let shuttingDown = false;

/** Children still running, oldest first. */
export function liveProcesses(): ManagedProcess[] {
  return [...live];
}

/** From now on `startProcess` refuses: a Ctrl-C that lands between two starts must not be outrun by the next one. */
export function refuseNewProcesses(): void {
  shuttingDown = true;
}

// A line a person should see even without --verbose: the child's errors (SDK text logs, Go JSON logs, OpenBao).
const PROBLEM = /\b(ERROR|FATAL|PANIC)\b|"level":"(error|fatal|panic|dpanic)"|\[(ERROR|FATAL)\]/i;

export function startProcess(command: string, args: string[], options: StartOptions): ManagedProcess {
  const { name, logFile, echo = false, redact = (l: string) => l, pidFile, ...spawnOptions } = options;
  if (shuttingDown) throw new InterruptedError(`not starting ${name}: stopping`);
  const child = spawn(command, args, { ...spawnOptions, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  // Reads its stdin (a pipe from this process) until EOF, which comes when this process exits for any
  // reason; then the child's whole group gets SIGTERM, and SIGKILL 3 s later (as the deploy runner does).
  const watchdog =
    child.pid === undefined
      ? undefined
      : spawn(
          'sh',
          [
            '-c',
            `read _ignored; kill -TERM -${child.pid} 2>/dev/null && sleep 3; kill -KILL -${child.pid} 2>/dev/null`,
          ],
          {
            detached: true,
            stdio: ['pipe', 'ignore', 'ignore'],
            env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
          },
        );
  watchdog?.once('error', () => {});
  watchdog?.stdin?.on('error', () => {});
  watchdog?.unref();
  (watchdog?.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  if (pidFile && child.pid !== undefined) writePidFile(pidFile, child.pid, name);
  let log: WriteStream | undefined;
  if (logFile) log = createWriteStream(logFile, { flags: 'a' });
  // Its output can still be read after its 'exit' (a pipe not yet drained, a helper that holds it): the log ends
  // when the output does.
  child.once('close', () => log?.end());
  const forward = (stream: NodeJS.ReadableStream | null, target: NodeJS.WriteStream) => {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const raw of lines) {
        const line = redact(raw);
        if (log && !log.writableEnded) log.write(`${line}\n`);
        if (echo === true || (echo === 'problems' && PROBLEM.test(line)))
          target.write(`${name.padEnd(12)} | ${line}\n`);
      }
    });
  };
  forward(child.stdout, process.stdout);
  forward(child.stderr, process.stderr);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)));
    child.once('error', () => {
      log?.end();
      resolve(null);
    });
  });
  let stopping: Promise<void> | undefined;
  const managed: ManagedProcess = {
    name,
    child,
    exited,
    stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
        killGroup(child.pid, graceMs > 0 ? signal : 'SIGKILL');
        const timer = sleep(graceMs).then(() => 'timeout' as const);
        if ((await Promise.race([exited, timer])) === 'timeout') {
          killGroup(child.pid, 'SIGKILL');
          await exited;
        }
      })().finally(() => {
        // Anything the child left in its group goes too.
        if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      });
      return stopping;
    },
  };
  live.push(managed);
  void exited.then(() => {
    live.splice(live.indexOf(managed), 1);
    watchdog?.kill('SIGKILL');
    if (pidFile) rmSync(pidFile, { force: true });
    // The group may outlive its leader (a grandchild); it goes with it.
    if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
  });
  return managed;
}

/**
 * Stops `processes` newest first (the gateway before the workers before the servers), all within
 * `totalMs`: whatever still runs then gets SIGKILL. Returns the names of those that were running.
 */
export async function stopProcesses(processes: ManagedProcess[], totalMs = 15_000): Promise<string[]> {
  const deadline = Date.now() + totalMs;
  const names: string[] = [];
  for (const p of [...processes].reverse()) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
    names.push(p.name);
    await p.stop('SIGTERM', Math.max(0, deadline - Date.now()));
  }
  return names;
}

/** SIGKILL to every registered child's group at once (a second Ctrl-C). */
export function killAllNow(): void {
  for (const p of live) if (p.child.pid !== undefined) killGroup(p.child.pid, 'SIGKILL');
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * A port nothing listens on now, for a server started next. Picked at random below the kernel's ephemeral range
 * (32768+ on Linux): a port the kernel hands out for `listen(0)` or as the source of an outgoing connection can be
 * taken again by another process (another Temporal's internal ports, any client) before the server binds it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    // A port handed out earlier may not be bound yet; twice in one start, two servers would share it.
    if (handedOut.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  return listenOn(0);
}

const handedOut = new Set<number>();

async function canListen(port: number): Promise<boolean> {
  return listenOn(port).then(
    () => true,
    () => false,
  );
}

function listenOn(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(bound));
    });
  });
}

/** Poll `probe` until it returns true; fail with `what` and the process's fate if it exits first. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  options: { timeoutMs?: number; process?: ManagedProcess } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let exited = false;
  void options.process?.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    if (exited)
      throw new Error(`${what}: ${options.process?.name ?? 'process'} exited before it was ready; see its log`);
    try {
      if (await probe()) return;
    } catch {
      // not yet
    }
    await sleep(200);
  }
  throw new Error(`${what}: not ready after ${Math.round((options.timeoutMs ?? 60_000) / 1000)}s`);
}

// ---- Orphans and ports: what a second start must know about the machine before it starts anything.

/** The kernel's start time of `pid` (clock ticks since boot): with the pid, it names one process for good. */
export function processStartTime(pid: number): string | undefined {
  try {
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The command line of `pid`, shortened for a message; undefined when it cannot be seen. */
export function commandLine(pid: number, max = 80): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  } catch {
    return undefined;
  }
}

interface PidRecord {
  pid: number;
  start: string;
  name: string;
}

function writePidFile(file: string, pid: number, name: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const record: PidRecord = { pid, start: processStartTime(pid) ?? '', name };
  writeFileSync(file, JSON.stringify(record));
}

/** The process a pid file names, when that very process (same pid, same start time) still runs. */
export function recordedProcess(file: string): PidRecord | undefined {
  let record: PidRecord;
  try {
    record = JSON.parse(readFileSync(file, 'utf8')) as PidRecord;
  } catch {
    return undefined;
  }
  return record.start && processStartTime(record.pid) === record.start ? record : undefined;
}

/** Records this process (e.g. `foureyes up`) in `file`; the file goes when it exits. */
export function recordSelf(file: string, name: string): void {
  writePidFile(file, process.pid, name);
  process.once('exit', () => rmSync(file, { force: true }));
}

/**
 * Stops the children that an earlier start left running (pid files in `dir` naming live processes),
 * group and all, and removes stale pid files. Returns a line per orphan stopped.
 */
export async function cleanUpOrphans(dir: string, skip: string[] = []): Promise<string[]> {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.pid') && !skip.includes(f));
  } catch {
    return [];
  }
  const stopped: string[] = [];
  for (const f of files) {
    const file = join(dir, f);
    const orphan = recordedProcess(file);
    if (orphan) {
      killGroup(orphan.pid, 'SIGTERM');
      for (let i = 0; i < 50 && processStartTime(orphan.pid) === orphan.start; i++) await sleep(100);
      killGroup(orphan.pid, 'SIGKILL');
      for (let i = 0; i < 20 && processStartTime(orphan.pid) === orphan.start && !isZombie(orphan.pid); i++)
        await sleep(100);
      stopped.push(`${orphan.name} (pid ${orphan.pid})`);
    }
    rmSync(file, { force: true });
  }
  return stopped;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Whether something listens on `port` of 127.0.0.1 (or of every address). */
export async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(false)));
  });
}

/** The pid of the process listening on TCP `port`, when /proc lets us see it. */
export function portHolder(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      // State 0A = LISTEN.
      if (!local || cols[3] !== '0A') continue;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port && cols[9]) inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith('socket:[') && inodes.has(target.slice(8, -1))) return Number(pid);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

/** Whether `pid` runs in the process group that `leader` leads (our child, or something it started). */
export function inGroupOf(pid: number, leader: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === leader;
  } catch {
    return false;
  }
}

/** "pid 123 (temporal server start-dev …)" for a message, or "" when no holder can be seen. */
export function describeHolder(port: number): string {
  const pid = portHolder(port);
  if (pid === undefined) return '';
  const cmd = commandLine(pid);
  return cmd ? `pid ${pid} (${cmd})` : `pid ${pid}`;
}

export const pidFileName = (name: string) => `${basename(name.replace(/[^a-z0-9-]+/gi, '-'))}.pid`;
