// Child processes of the local stack: each in its own process group so that stopping it stops
// everything it started; output prefixed with the child's name; readiness by probing, not by sleeping.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
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
  echo?: boolean;
  /** Rewrites each output line before it is logged or echoed (e.g. to drop a printed root token). */
  redact?: (line: string) => string;
}

export function startProcess(command: string, args: string[], options: StartOptions): ManagedProcess {
  const { name, logFile, echo = false, redact = (l: string) => l, ...spawnOptions } = options;
  const child = spawn(command, args, { ...spawnOptions, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let log: WriteStream | undefined;
  if (logFile) log = createWriteStream(logFile, { flags: 'a' });
  const forward = (stream: NodeJS.ReadableStream | null, target: NodeJS.WriteStream) => {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const raw of lines) {
        const line = redact(raw);
        log?.write(`${line}\n`);
        if (echo) target.write(`${name.padEnd(12)} | ${line}\n`);
      }
    });
  };
  forward(child.stdout, process.stdout);
  forward(child.stderr, process.stderr);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      log?.end();
      resolve(code ?? (signal ? 128 : null));
    });
    child.once('error', () => resolve(null));
  });
  let stopping: Promise<void> | undefined;
  return {
    name,
    child,
    exited,
    stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
        killGroup(child.pid, signal);
        const timer = sleep(graceMs).then(() => 'timeout' as const);
        if ((await Promise.race([exited, timer])) === 'timeout') {
          killGroup(child.pid, 'SIGKILL');
          await exited;
        }
        // Anything the child left in its group goes too.
        killGroup(child.pid, 'SIGKILL');
      })();
      return stopping;
    },
  };
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Poll `probe` until it returns true; fail with `what` and the process's fate if it exits first. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, options: { timeoutMs?: number; process?: ManagedProcess } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let exited = false;
  void options.process?.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${what}: ${options.process?.name ?? 'process'} exited before it was ready; see its log`);
    try {
      if (await probe()) return;
    } catch {
      // not yet
    }
    await sleep(200);
  }
  throw new Error(`${what}: not ready after ${Math.round((options.timeoutMs ?? 60_000) / 1000)}s`);
}
