// A team's set-up for the tests that drive `foureyes up` as people use it: the GitHub stand-in as an outside
// service with one user (and token) per person, a repository `acme/shop` with the given files, the stack started
// against it with real GitHub credentials, and each person's CLI on a machine of their own.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/dev/paths.ts';
import type { ChangeStatus } from '../../src/shared/types.ts';
import { startUp, type UpProcess } from './foureyes-up.ts';
import { startStandinProcess, type StandinProcess } from './github-standin-process.ts';

const run = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, as a person reads them in a terminal. */
  out: string;
}

export interface TeamStack {
  gh: StandinProcess;
  up: UpProcess;
  tokens: Record<string, string>;
  /** The CLI on `token`'s owner's machine: only their GitHub token, no local stack's operator token. */
  cli(args: string[], token: string, env?: Record<string, string>): Promise<CliResult>;
  /** The CLI on the machine that runs the stack, where `foureyes status|audit` read Temporal directly. */
  operatorCli(args: string[], token: string): Promise<CliResult>;
  statusOf(n: number, token: string): Promise<ChangeStatus | undefined>;
  /** Reads acme/shop#n's status (as `token`'s owner) until `done`, for up to 3 minutes. */
  until(n: number, what: string, done: (s: ChangeStatus) => boolean, token: string): Promise<ChangeStatus>;
  /** The body of the first comment on pull request n that contains `text`, as GitHub renders it. */
  commentContaining(n: number, text: string): Promise<string>;
  stop(): Promise<number | null>;
}

/**
 * A folder the sandboxed commands may write (each runs as a uid of its own), with an empty `log` any may append
 * to. `work` itself is opened for reading.
 */
export function sharedFolder(work: string, name: string): string {
  const folder = join(work, name);
  chmodSync(work, 0o755);
  mkdirSync(folder);
  chmodSync(folder, 0o777);
  writeFileSync(join(folder, 'log'), '');
  chmodSync(join(folder, 'log'), 0o666);
  return folder;
}

export async function startTeamStack(options: {
  work: string;
  people: string[];
  files: Record<string, string>;
  /** foureyes.yaml, given the repository's remote. */
  config: (remote: string) => string;
}): Promise<TeamStack> {
  const { work } = options;
  const secret = `whsec-${Math.random().toString(36).slice(2)}`;
  const gh = await startStandinProcess(join(work, 'github'));
  const tokens: Record<string, string> = {};
  for (const login of [...options.people, 'foureyes-bot'])
    tokens[login] = (await gh.control<{ token: string }>('POST', '/users', { login })).token;
  const repo = await gh.control<{ remote: string }>('POST', '/repos', { fullName: 'acme/shop', files: options.files });
  const configFile = join(work, 'foureyes.yaml');
  writeFileSync(configFile, options.config(repo.remote));
  let up: UpProcess;
  try {
    up = await startUp({
      dataDir: join(work, 'data'),
      configFile,
      env: { GITHUB_TOKEN: tokens['foureyes-bot'] as string, GITHUB_API_URL: gh.apiUrl, GITHUB_WEBHOOK_SECRET: secret },
    });
    await gh.control('POST', '/webhook', { url: `${up.gatewayUrl}/webhooks/github`, secret });
  } catch (error) {
    await gh.stop();
    throw error;
  }
  const cli = (args: string[], token: string, env: Record<string, string> = {}) =>
    run(process.execPath, [join(projectRoot(), 'bin/foureyes.js'), ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: work,
        GITHUB_TOKEN: token,
        FOUREYES_GATEWAY_URL: up.gatewayUrl,
        FOUREYES_DATA: join(work, 'no-local-stack'),
        ...env,
      },
      maxBuffer: 64 * 1024 * 1024,
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr, out: `${r.stdout}${r.stderr}` }),
      (e: { code: number; stdout: string; stderr: string }) => ({
        code: e.code,
        stdout: e.stdout,
        stderr: e.stderr,
        out: `${e.stdout}${e.stderr}`,
      }),
    );
  const statusOf = async (n: number, token: string): Promise<ChangeStatus | undefined> => {
    const res = await fetch(`${up.gatewayUrl}/api/changes/acme/shop/${n}`, {
      headers: { authorization: `Bearer ${token}` },
    }).catch(() => undefined);
    return res?.ok ? ((await res.json()) as ChangeStatus) : undefined;
  };
  return {
    gh,
    up,
    tokens,
    cli,
    operatorCli: (args, token) =>
      cli(args, token, { TEMPORAL_ADDRESS: `127.0.0.1:${up.ports.temporal}`, TEMPORAL_NAMESPACE: 'foureyes' }),
    statusOf,
    async until(n, what, done, token) {
      let last: ChangeStatus | undefined;
      for (const deadline = Date.now() + 180_000; Date.now() < deadline;) {
        last = (await statusOf(n, token)) ?? last;
        if (last && done(last)) return last;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`#${n} never ${what}: ${JSON.stringify(last)}\n${up.output().slice(-3000)}`);
    },
    async commentContaining(n, text) {
      type State = { comments: Array<{ issue: number; body: string }> };
      let found = '';
      for (const deadline = Date.now() + 30_000; Date.now() < deadline && !found;) {
        found =
          (await gh.control<State>('GET', '/state')).comments.find((c) => c.issue === n && c.body.includes(text))
            ?.body ?? '';
        if (!found) await new Promise((r) => setTimeout(r, 250));
      }
      // Untrusted text is escaped as character references, which GitHub displays as the characters.
      return found.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)));
    },
    async stop() {
      const code = await up.stop();
      await gh.stop();
      return code;
    },
  };
}
