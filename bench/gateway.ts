// The real gateway (src/gateway) in the bench process, in front of a scenario's Temporal, with the GitHub
// stand-in as its GitHub API (token look-ups, pull request commits and files) and webhook sender.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { createGateway } from '../src/gateway/app.ts';
import { startGitHubStandin, type RunningStandin } from '../src/dev/github-standin/index.ts';
import { BENCH_CONFIG, type BenchEnv } from './env.ts';
import type { GatewayProcessSettings } from './gateway-process.ts';
import { nowMs } from './stats.ts';

export interface BenchGateway {
  url: string;
  github: RunningStandin;
  secret: string;
  /** GitHub tokens of the stand-in's people, by login. */
  tokens: Record<string, string>;
  /** When each request reached the gateway (ms, nowMs clock), by method and path; the latest wins. */
  arrivals: Map<string, number>;
  stop(): Promise<void>;
}

/**
 * `separateProcess`: the gateway runs in a child process of its own (the webhook scenario); otherwise in
 * this process, where arrival times can be taken (the approval scenario, whose requests need no git work).
 */
export async function startBenchGateway(
  env: BenchEnv,
  options: { separateProcess?: boolean } = {},
): Promise<BenchGateway> {
  const github = await startGitHubStandin({ dataDir: join(env.dir, 'github') });
  const tokens: Record<string, string> = {};
  for (const login of ['sam-dev', 'alex-reviewer'])
    tokens[login] = github.standin.addUser({ login, email: `${login.split('-')[0]}@example.com` }).token;
  github.standin.createRepo({ fullName: 'acme/shop', firstPullNumber: 1, files: { 'README.md': 'shop\n' } });
  const app = github.standin.addApp({ slug: 'foureyes' });
  const secret = randomBytes(20).toString('hex');
  const gatewayEnv = {
    FOUREYES_APPROVAL_SIGNING_KEY: env.key.privateKey,
    GITHUB_WEBHOOK_SECRET: secret,
    FOUREYES_TASK_QUEUE: env.taskQueue,
    GITHUB_API_URL: github.url,
    GITHUB_APP_ID: String(app.appId),
    GITHUB_PRIVATE_KEY: app.privateKey,
  };
  const arrivals = new Map<string, number>();
  if (options.separateProcess) {
    const child = fork(join(import.meta.dirname, 'gateway-process.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const settings: GatewayProcessSettings = {
      address: env.temporal.address,
      namespace: env.temporal.namespace,
      configYaml: BENCH_CONFIG,
      env: gatewayEnv,
    };
    child.send(settings);
    const url = await new Promise<string>((resolve, reject) => {
      child.once('message', (m: { url: string }) => resolve(m.url));
      child.once('exit', (code) => reject(new Error(`bench gateway process exited (${code})`)));
    });
    github.standin.setWebhook(`${url}/webhooks/github`, secret);
    return {
      url,
      github,
      secret,
      tokens,
      arrivals,
      async stop() {
        if (child.exitCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await exited;
        }
        await github.stop();
      },
    };
  }
  const config = parseConfig(BENCH_CONFIG, 'bench.yaml');
  const server: Server = createGateway({ client: env.client, config: () => config, env: gatewayEnv });
  // Before the gateway's own listener: the time the request arrived, not when a route got to it.
  server.prependListener('request', (req: { method?: string; url?: string }) =>
    arrivals.set(`${req.method} ${req.url}`, nowMs()),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  github.standin.setWebhook(`${url}/webhooks/github`, secret);
  return {
    url,
    github,
    secret,
    tokens,
    arrivals,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await github.stop();
    },
  };
}
