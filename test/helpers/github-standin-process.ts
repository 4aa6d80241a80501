// The GitHub stand-in as the outside service it stands for: its own process (src/dev/github-standin/main.ts),
// set up and read back over HTTP only, through its control API. Killed when the test file ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { projectRoot } from '../../src/dev/paths.ts';
import { killTree } from './processes.ts';
import type { StandinRequest } from '../../src/dev/github-standin/server.ts';

export interface StandinProcess {
  child: ChildProcess;
  /** Its root: the web pages (and the REST API, as github.com's api host serves it). */
  url: string;
  /** The REST API as GitHub Enterprise Server serves it: `<url>/api/v3`. */
  apiUrl: string;
  /** Its host:port, as callers send it in the Host header. */
  host: string;
  control<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T>;
  /** Every REST and web request it answered, oldest first. */
  requests(): Promise<StandinRequest[]>;
  stop(): Promise<void>;
}

const started: ChildProcess[] = [];
// Registered when a test file imports this module (a hook registered from inside a running test is not run).

afterAll(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) killTree(child.pid);
});

export async function startStandinProcess(dataDir: string): Promise<StandinProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(projectRoot(), 'src/dev/github-standin/main.ts'), '--port', '0', '--data', dataDir],
    {
      cwd: projectRoot(),
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  started.push(child);
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the GitHub stand-in did not start:\n${output}`)), 30_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the GitHub stand-in exited (${code}):\n${output}`)));
  });
  const control = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}/_standin${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as T;
    if (!res.ok) throw new Error(`stand-in ${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    child,
    url,
    apiUrl: `${url}/api/v3`,
    host: new URL(url).host,
    control,
    requests: () => control<StandinRequest[]>('GET', '/requests'),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
