// `bin/foureyes.js <args>` as its own process against the shared dev server, with the example configuration:
// how the tests exercise the production entry points (worker, gateway). Output is collected for assertions.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, inject } from 'vitest';
import { projectRoot } from '../../src/dev/paths.ts';
import { killTree } from './processes.ts';

export interface FoureyesProcess {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** The exit code (null when a signal ended it). */
  exited: Promise<number | null>;
}

const started: ChildProcess[] = [];
let cleanupRegistered = false;

/** Starts the CLI (of the checkout at `root`); whatever is still running when the test file ends is killed. */
export function startFoureyes(
  args: string[],
  extraEnv: Record<string, string>,
  root: string = projectRoot(),
): FoureyesProcess {
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    afterAll(() => {
      for (const child of started) if (child.exitCode === null && child.signalCode === null) killTree(child.pid);
    });
  }
  const child = spawn(process.execPath, [join(root, 'bin/foureyes.js'), ...args], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: inject('temporalNamespace'),
      FOUREYES_CONFIG: join(root, 'foureyes.example.yaml'),
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** Polls until the gateway at `base` answers /healthz, or fails with its output. */
export async function untilHealthy(base: string, gateway: FoureyesProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !(await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > deadline || gateway.child.exitCode !== null)
      throw new Error(`gateway did not become healthy:\n${gateway.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
