// `bin/foureyes.js up` as a user runs it: its own process, its own Temporal and OpenBao on free ports, the
// environment the test gives (nothing inherited but PATH and HOME). Killed, with everything it started,
// when the test file ends.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { projectRoot } from '../../src/dev/paths.ts';
import { freePort } from '../../src/dev/process.ts';

export interface UpProcess {
  child: ChildProcess;
  output(): string;
  ports: { temporal: number; ui: number; bao: number; gateway: number };
  gatewayUrl: string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Ctrl-C, then the exit code. */
  stop(): Promise<number | null>;
}

const started: ChildProcess[] = [];
// Registered when a test file imports this module (a hook registered from inside a running test is not run).

/** Every process descended from `pid` (children run in process groups of their own). */
export function descendants(pid: number): number[] {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const found = new Set<number>();
  const walk = (parent: number) => {
    for (const [child, ppid] of table) {
      if (ppid === parent && !found.has(child)) {
        found.add(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return [...found];
}

function killTree(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  for (const pid of descendants(child.pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  child.kill('SIGKILL');
}

afterAll(() => started.forEach(killTree));

/** Starts `foureyes up`; resolves once it printed "foureyes is up." (or `waitFor: 'exit'`: once it exited). */
export async function startUp(options: { dataDir: string; configFile: string; env: Record<string, string>; waitFor?: 'up' | 'exit'; timeoutMs?: number }): Promise<UpProcess> {
  mkdirSync(options.dataDir, { recursive: true });
  const ports = { temporal: await freePort(), ui: await freePort(), bao: await freePort(), gateway: await freePort() };
  const child = spawn(process.execPath, [join(projectRoot(), 'bin/foureyes.js'), 'up'], {
    cwd: options.dataDir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      FOUREYES_DATA: options.dataDir,
      FOUREYES_CONFIG: options.configFile,
      FOUREYES_TEMPORAL_PORT: String(ports.temporal),
      FOUREYES_UI_PORT: String(ports.ui),
      FOUREYES_BAO_PORT: String(ports.bao),
      PORT: String(ports.gateway),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + (options.timeoutMs ?? 180_000);
  const waitFor = options.waitFor ?? 'up';
  while (waitFor === 'exit' ? child.exitCode === null : !out.includes('foureyes is up.')) {
    if (waitFor === 'up' && child.exitCode !== null) throw new Error(`foureyes up exited early (${child.exitCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`foureyes up: no ${waitFor} within ${options.timeoutMs ?? 180_000} ms:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    child,
    output: () => out,
    ports,
    gatewayUrl: `http://127.0.0.1:${ports.gateway}`,
    exited,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      return exited;
    },
  };
}
