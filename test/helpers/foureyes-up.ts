// `bin/foureyes.js up` as a user runs it: its own process, its own Temporal and OpenBao on free ports, the
// environment the test gives (nothing inherited but PATH and HOME). Killed, with everything it started,
// when the test file ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { projectRoot } from '../../src/dev/paths.ts';
import { freePort } from '../../src/dev/process.ts';
import { descendants, killTree } from './processes.ts';

export { descendants } from './processes.ts';

export interface UpPorts {
  temporal: number;
  ui: number;
  bao: number;
  gateway: number;
}

export interface UpProcess {
  child: ChildProcess;
  output(): string;
  ports: UpPorts;
  gatewayUrl: string;
  /** The data folder; its keys/operator-token reads the gateway's change and environment endpoints. */
  dataDir: string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Ctrl-C, then the exit code. */
  stop(): Promise<number | null>;
  /** Resolves once the output contains `text`; fails if the process exits first or after `timeoutMs`. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
}

const started: ChildProcess[] = [];
// Registered when a test file imports this module (a hook registered from inside a running test is not run).
afterAll(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) killTree(child.pid);
});

export async function freeUpPorts(): Promise<UpPorts> {
  return { temporal: await freePort(), ui: await freePort(), bao: await freePort(), gateway: await freePort() };
}

/**
 * Starts `foureyes up`; resolves once it printed "foureyes is up." (`waitFor: 'exit'`: once it exited;
 * `waitFor: 'started'`: at once, for a test that follows its progress itself).
 */
export async function startUp(options: UpOptions): Promise<UpProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startUpOnce(options);
    } catch (error) {
      // Ports picked here are free when picked; another test's server can bind one before `up` does. Only
      // then, and only with ports this helper picked, start again on others.
      const raced = /foureyes up: port \d+ \([^)]*\) is in use/.test((error as Error).message);
      if (!raced || options.ports !== undefined || attempt >= 3) throw error;
      console.warn(`startUp: ${firstLine((error as Error).message)}; starting again on other ports`);
    }
  }
}

const firstLine = (text: string) => text.split('\n').find((line) => line.includes('is in use')) ?? text;

interface UpOptions {
  dataDir: string;
  configFile: string;
  env: Record<string, string>;
  waitFor?: 'up' | 'exit' | 'started';
  timeoutMs?: number;
  ports?: UpPorts;
  args?: string[];
}

async function startUpOnce(options: UpOptions): Promise<UpProcess> {
  mkdirSync(options.dataDir, { recursive: true });
  const ports = options.ports ?? (await freeUpPorts());
  const child = spawn(process.execPath, [join(projectRoot(), 'bin/foureyes.js'), 'up', ...(options.args ?? [])], {
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
  const waitFor = async (text: string | RegExp, timeoutMs = options.timeoutMs ?? 180_000) => {
    const deadline = Date.now() + timeoutMs;
    const seen = () => (typeof text === 'string' ? out.includes(text) : text.test(out));
    while (!seen()) {
      if (child.exitCode !== null)
        throw new Error(`foureyes up exited (${child.exitCode}) before printing ${String(text)}:\n${out}`);
      if (Date.now() > deadline) throw new Error(`foureyes up: no ${String(text)} within ${timeoutMs} ms:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const mode = options.waitFor ?? 'up';
  if (mode === 'up') await waitFor('foureyes is up.');
  if (mode === 'exit') {
    const deadline = Date.now() + (options.timeoutMs ?? 180_000);
    while (child.exitCode === null) {
      if (Date.now() > deadline)
        throw new Error(`foureyes up: no exit within ${options.timeoutMs ?? 180_000} ms:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    child,
    output: () => out,
    ports,
    gatewayUrl: `http://127.0.0.1:${ports.gateway}`,
    dataDir: options.dataDir,
    exited,
    waitFor,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      return exited;
    },
  };
}

/** Every process `up` started, and itself, while it runs: what must be gone after it stopped. */
export function upTree(up: UpProcess): number[] {
  return [...descendants(up.child.pid as number), up.child.pid as number];
}
