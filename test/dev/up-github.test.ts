// `foureyes up` against a real GitHub, as a user connects one: the GitHub stand-in runs as an outside
// service (its own process, reached at GITHUB_API_URL shaped like GitHub Enterprise Server's, /api/v3), and
// `bin/foureyes.js up` gets nothing but the variables a user would export. Once with a token, once as a
// GitHub App. A pull request is opened, approved through a review and through `foureyes approve`, and
// delivered; then what GitHub received is checked, request by request, and every log, the output and the
// change's history are scanned for the token, the key, the webhook secret and every token GitHub issued.
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { operatorTokenPath } from '../../src/config/paths.ts';
import { projectRoot } from '../../src/dev/paths.ts';
import type { ChangeStatus } from '../../src/shared/types.ts';
import { descendants, startUp, type UpProcess } from '../helpers/foureyes-up.ts';
import { startStandinProcess, type StandinProcess } from '../helpers/github-standin-process.ts';

const work = mkdtempSync(join(tmpdir(), 'foureyes-up-github-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const WEBHOOK_SECRET = `whsec-${Math.random().toString(36).slice(2)}-e2e`;

/** The files of acme/shop's first commit: a passing `npm test` and the example deploy and smoke scripts. */
function seedFiles(): Record<string, string> {
  return {
    'README.md': '# acme/shop\n',
    'package.json': `${JSON.stringify({ name: 'shop', private: true, scripts: { test: 'node -e "console.log(\'tests pass\')"' } }, null, 2)}\n`,
    'examples/deploy.sh': readFileSync(join(projectRoot(), 'examples/deploy.sh'), 'utf8'),
    'examples/smoke.sh': readFileSync(join(projectRoot(), 'examples/smoke.sh'), 'utf8'),
  };
}

/** sam-dev develops; alex-reviewer's review approves staging, production needs jo-platform too (the CLI). */
function configYaml(remote: string, uiPort: number): string {
  const env = (name: string, approval: string) => `
  - name: ${name}
    deploy: { run: ./examples/deploy.sh, timeout: 2m }
    verify: { run: ./examples/smoke.sh, timeout: 1m }
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token, VAULT_ADDR: addr } }
    approval: ${approval}`;
  return `
people:
  - { github: sam-dev, emails: [sam@example.com] }
  - { github: alex-reviewer, emails: [alex@example.com] }
  - { github: jo-platform, emails: [jo@example.com] }
teams:
  platform: [jo-platform, alex-reviewer]
environments:${env('staging', '{ required: 1, expiry: 1h }')}${env('production', '{ required: 2, eligible: [team:platform], expiry: 1h }')}
repositories:
  - name: acme/shop
    remote: ${JSON.stringify(remote)}
    checks: [{ name: unit, run: npm test, timeout: 2m }]
temporal: { namespace: foureyes, uiUrl: "http://localhost:${uiPort}" }
`;
}

async function changeStatus(up: UpProcess): Promise<ChangeStatus | undefined> {
  const token = readFileSync(operatorTokenPath(up.dataDir), 'utf8').trim();
  const res = await fetch(`${up.gatewayUrl}/api/changes/acme/shop/1`, {
    headers: { authorization: `Bearer ${token}` },
  }).catch(() => undefined);
  return res?.ok ? ((await res.json()) as ChangeStatus) : undefined;
}

async function until(
  up: UpProcess,
  what: string,
  done: (s: ChangeStatus) => boolean,
  timeoutMs = 180_000,
): Promise<ChangeStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ChangeStatus | undefined;
  for (;;) {
    last = (await changeStatus(up)) ?? last;
    if (last && done(last)) return last;
    if (Date.now() > deadline || up.child.exitCode !== null)
      throw new Error(
        `acme/shop#1 never reached ${what}; last status: ${JSON.stringify(last, null, 2)}\n${up.output().slice(-4000)}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** History as text with every payload decoded, so a secret inside one would show. */
function historyText(history: unknown): string {
  return JSON.stringify(history, (_key, value: unknown) =>
    value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value,
  );
}

/** The names (never the values) of the variables of each process `foureyes up` started, by what it runs. */
function zoneVariables(up: UpProcess): Record<'orchestrator' | 'checks' | 'deployer' | 'gateway', string[]> {
  const out: Record<string, string[]> = {};
  for (const pid of descendants(up.child.pid as number)) {
    let cmdline: string;
    let environ: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue;
    }
    const zone = /src\/(?:workers\/(orchestrator|checks|deployer)|gateway\/main)\.ts/.exec(cmdline);
    if (zone)
      out[zone[1] ?? 'gateway'] = environ
        .split('\0')
        .filter(Boolean)
        .map((kv) => kv.split('=')[0] as string);
  }
  return out as Record<'orchestrator' | 'checks' | 'deployer' | 'gateway', string[]>;
}

interface Scenario {
  mode: 'token' | 'app';
  /** GitHub variables for `foureyes up`, given the stand-in. */
  env(gh: StandinProcess, dir: string): Promise<{ env: Record<string, string>; secrets: string[]; expectLine: RegExp }>;
}

const scenarios: Scenario[] = [
  {
    mode: 'token',
    async env(gh) {
      const bot = await gh.control<{ token: string }>('POST', '/users', { login: 'foureyes-bot', name: 'foureyes' });
      return {
        env: { GITHUB_TOKEN: bot.token, GITHUB_API_URL: gh.apiUrl, GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET },
        secrets: [bot.token],
        expectLine: new RegExp(
          `GitHub +token of foureyes-bot on GitHub Enterprise Server ${gh.url} \\(API ${gh.apiUrl}\\); stages reported as commit statuses`,
        ),
      };
    },
  },
  {
    mode: 'app',
    async env(gh) {
      const app = await gh.control<{ appId: number; installationId: number; privateKey: string }>('POST', '/apps', {
        slug: 'foureyes-e2e',
        repositories: ['acme/shop'],
      });
      // The key as a user exports it from a secret manager: one line, with \n escapes.
      return {
        env: {
          GITHUB_APP_ID: String(app.appId),
          GITHUB_PRIVATE_KEY: app.privateKey.replace(/\n/g, '\\n'),
          GITHUB_API_URL: gh.apiUrl,
          GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        },
        secrets: app.privateKey.split('\n').filter((line) => line.length > 20 && !line.startsWith('-----')),
        expectLine: new RegExp(
          `GitHub +GitHub App foureyes-e2e \\(App ID ${app.appId}, installation looked up per repository\\) on GitHub Enterprise Server ${gh.url} \\(API ${gh.apiUrl}\\); stages reported as check runs`,
        ),
      };
    },
  },
];

describe('foureyes up with real GitHub credentials', () => {
  for (const scenario of scenarios) {
    it(`${scenario.mode} mode: the credentials reach the orchestrator and the gateway only, and a change is reported on GitHub end to end`, async () => {
      const dir = mkdtempSync(join(work, `${scenario.mode}-`));
      const gh = await startStandinProcess(join(dir, 'github'));
      const tokens: Record<string, string> = {};
      for (const login of ['sam-dev', 'alex-reviewer', 'jo-platform'])
        tokens[login] = (
          await gh.control<{ token: string }>('POST', '/users', { login, email: `${login.split('-')[0]}@example.com` })
        ).token;
      const repo = await gh.control<{ remote: string }>('POST', '/repos', {
        fullName: 'acme/shop',
        files: seedFiles(),
      });
      const { env, secrets, expectLine } = await scenario.env(gh, dir);
      const configFile = join(dir, 'foureyes.yaml');
      writeFileSync(configFile, configYaml(repo.remote, 8233));

      const up = await startUp({ dataDir: join(dir, 'data'), configFile, env });
      try {
        // Each variable reaches exactly the zones that need it.
        const zones = zoneVariables(up);
        const credentialVars = Object.keys(env).filter((k) => k !== 'GITHUB_WEBHOOK_SECRET');
        for (const name of credentialVars) {
          expect(zones.orchestrator, `orchestrator lacks ${name}`).toContain(name);
          expect(zones.gateway, `gateway lacks ${name}`).toContain(name);
        }
        expect(zones.gateway).toContain('GITHUB_WEBHOOK_SECRET');
        expect(zones.orchestrator).not.toContain('GITHUB_WEBHOOK_SECRET');
        expect(zones.checks.filter((k) => k.startsWith('GITHUB_'))).toEqual([]);
        expect(zones.deployer.filter((k) => k.startsWith('GITHUB_'))).toEqual([]);
        // It says which mode it is in and which GitHub it talks to; no stand-in of its own.
        expect(up.output()).toMatch(expectLine);
        expect(up.output()).not.toContain('GitHub stand-in');

        // GitHub's webhook, signed with the secret the user gave both ends.
        await gh.control('POST', '/webhook', { url: `${up.gatewayUrl}/webhooks/github`, secret: WEBHOOK_SECRET });
        const opened = await gh.control<{ number: number; headSha: string; status: number }>(
          'POST',
          '/repos/acme/shop/pulls',
          {
            author: 'sam-dev',
            title: 'Faster checkout',
            commits: [{ message: 'Faster checkout', files: { 'src/checkout.js': 'export const fast = true;\n' } }],
          },
        );
        expect(opened).toMatchObject({ number: 1, status: 202 });
        const head = opened.headSha;
        const waiting = await until(
          up,
          'awaiting approval with its initiators known',
          (s) => s.stage === 'awaiting-approval' && s.initiators.includes('sam-dev'),
        );
        expect(waiting.headSha).toBe(head);

        // A colleague's review (lower case in the webhook) counts for staging; production needs a second person.
        const review = await gh.control<{ status: number }>('POST', '/repos/acme/shop/pulls/1/reviews', {
          reviewer: 'alex-reviewer',
          event: 'APPROVE',
        });
        expect(review.status).toBe(202);
        await until(
          up,
          'staging deployed',
          (s) => s.environments.find((e) => e.name === 'staging')?.state === 'deployed',
        );

        // jo approves from the command line with a token of their own, which the gateway checks at GITHUB_API_URL.
        const cli = await promisify(execFile)(
          process.execPath,
          [join(projectRoot(), 'bin/foureyes.js'), 'approve', 'acme/shop#1', '--gateway', up.gatewayUrl],
          {
            env: { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_TOKEN: tokens['jo-platform'] },
          },
        );
        expect(cli.stdout).toContain('foureyes: your approval of acme/shop#1 was accepted');
        const delivered = await until(up, 'delivered', (s) => s.stage === 'delivered');
        expect(delivered.environments.map((e) => [e.name, e.state])).toEqual([
          ['staging', 'deployed'],
          ['production', 'deployed'],
        ]);

        // What GitHub received, read back from the outside service. Reporting follows the status (it is
        // best-effort and retried), so wait for the pull request's comment to say delivered.
        type GitHubState = {
          checkRuns: Array<{ headSha: string; name: string; status: string; conclusion: string | null }>;
          statuses: Array<{ sha: string; context: string; state: string; creator: string }>;
          deployments: Array<{ id: number; sha: string; environment: string; creator: string }>;
          deploymentStatuses: Array<{ deploymentId: number; state: string }>;
          comments: Array<{ issue: number; user: string; body: string }>;
        };
        let state = await gh.control<GitHubState>('GET', '/state');
        for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
          if (state.comments.some((c) => c.issue === 1 && c.body.includes('### foureyes: delivered'))) break;
          await new Promise((r) => setTimeout(r, 250));
          state = await gh.control<GitHubState>('GET', '/state');
        }
        const stages = ['foureyes / checks', 'foureyes / approval', 'foureyes / staging', 'foureyes / production'];
        if (scenario.mode === 'app') {
          // GitHub lets only Apps create check runs: one per stage on the head, each completed successfully.
          const runs = state.checkRuns.filter((r) => r.headSha === head);
          expect(runs.map((r) => r.name).sort()).toEqual([...stages].sort());
          for (const run of runs)
            expect([run.name, run.status, run.conclusion]).toEqual([run.name, 'completed', 'success']);
          expect(state.statuses).toEqual([]);
        } else {
          // With a token: commit statuses of the same names, the latest of each a success, by the token's user.
          const latest = new Map<string, string>();
          for (const s of state.statuses.filter((x) => x.sha === head)) latest.set(s.context, s.state);
          expect(Object.fromEntries(latest)).toEqual(Object.fromEntries(stages.map((name) => [name, 'success'])));
          expect(new Set(state.statuses.map((s) => s.creator))).toEqual(new Set(['foureyes-bot']));
          expect(state.checkRuns).toEqual([]);
        }
        const bot = scenario.mode === 'app' ? 'foureyes-e2e[bot]' : 'foureyes-bot';
        expect(state.deployments.map((d) => [d.environment, d.sha, d.creator]).sort()).toEqual([
          ['production', head, bot],
          ['staging', head, bot],
        ]);
        for (const d of state.deployments) {
          const states = state.deploymentStatuses.filter((x) => x.deploymentId === d.id).map((x) => x.state);
          expect(states[0], `${d.environment} statuses ${states.join(',')}`).toBe('in_progress');
          expect(states.at(-1)).toBe('success');
        }
        const comments = state.comments.filter((c) => c.issue === 1);
        expect(comments).toHaveLength(1);
        expect(comments[0]?.user).toBe(bot);
        expect(comments[0]?.body).toContain('### foureyes: delivered');

        // Every call went to GITHUB_API_URL (nothing to api.github.com or the root), and only to endpoints GitHub has.
        const requests = await gh.requests();
        const unknown = requests.filter((r) => !r.known).map((r) => `${r.method} ${r.path}`);
        expect(unknown, 'calls to endpoints GitHub does not have').toEqual([]);
        expect(requests.filter((r) => r.host !== gh.host)).toEqual([]);
        expect(requests.filter((r) => !r.path.startsWith('/api/v3/')).map((r) => `${r.method} ${r.path}`)).toEqual([]);
        const calls = new Set(requests.map((r) => `${r.method} ${r.path.replace(/\/\d+(?=\/|$)/g, '/N')}`));
        expect(calls).toContain('GET /api/v3/user'); // the gateway checked jo's token
        expect(calls).toContain('GET /api/v3/repos/acme/shop/pulls/N/commits'); // the orchestrator looked up the initiators
        if (scenario.mode === 'app') {
          expect(calls).toContain('GET /api/v3/repos/acme/shop/installation');
          expect(calls).toContain('POST /api/v3/app/installations/N/access_tokens');
        }
        for (const logs of [join(dir, 'data', 'logs')])
          for (const file of readdirSync(logs))
            expect(readFileSync(join(logs, file), 'utf8'), file).not.toContain('api.github.com');

        // No token, key or secret in any log line, the output or the change's history.
        const issued = await gh.control<string[]>('GET', '/tokens');
        const values = [...new Set([...secrets, WEBHOOK_SECRET, ...issued])];
        expect(issued.length).toBeGreaterThanOrEqual(scenario.mode === 'app' ? 4 : 4);
        const connection = await Connection.connect({ address: `127.0.0.1:${up.ports.temporal}` });
        const events = await new Client({ connection, namespace: 'foureyes' }).workflow
          .getHandle('change:acme/shop#1')
          .fetchHistory();
        const history = historyText(events);
        await connection.close();

        // One deployer identity per environment: every deploy step was scheduled on its environment's own queue
        // and picked up by that environment's deploy worker process (`worker:deploy-<env>`), none on the shared one.
        const steps = (events.events ?? []).flatMap((e) => {
          const a = e.activityTaskScheduledEventAttributes;
          if (!a || !['deploy', 'verify', 'revokeOutstanding'].includes(a.activityType?.name ?? '')) return [];
          const input = defaultPayloadConverter.fromPayload(a.input?.payloads?.[0] ?? {}) as { environment: string };
          return [{ environment: input.environment, queue: a.taskQueue?.name, id: e.eventId?.toString() }];
        });
        expect(new Set(steps.map((s) => s.environment))).toEqual(new Set(['staging', 'production']));
        for (const step of steps) expect(step.queue).toBe(`foureyes-deploy-${step.environment}`);
        const identities = (events.events ?? []).flatMap((e) => {
          const started = e.activityTaskStartedEventAttributes;
          const step = steps.find((s) => s.id === started?.scheduledEventId?.toString());
          return started && step ? [[step.environment, started.identity?.split('@')[0]]] : [];
        });
        expect(identities.length).toBeGreaterThan(0);
        for (const [environment, identity] of identities) expect(identity).toBe(`deploy-${environment}`);
        const texts: Record<string, string> = { output: up.output(), history, status: JSON.stringify(delivered) };
        for (const file of readdirSync(join(dir, 'data', 'logs')))
          texts[`logs/${file}`] = readFileSync(join(dir, 'data', 'logs', file), 'utf8');
        for (const [where, text] of Object.entries(texts))
          for (const value of values) expect(text.includes(value), `a secret in ${where}`).toBe(false);
      } finally {
        expect(await up.stop()).toBe(0);
        await gh.stop();
      }
    }, 420_000);
  }
});

describe('foureyes up refuses a GitHub set it cannot use', () => {
  it('names the variable and what to do, exits 1 and starts nothing', async () => {
    const dir = mkdtempSync(join(work, 'refusals-'));
    const gh = await startStandinProcess(join(dir, 'github'));
    await gh.control('POST', '/repos', { fullName: 'acme/shop' });
    const app = await gh.control<{ appId: number; privateKey: string }>('POST', '/apps', { slug: 'foureyes-refusals' });
    const other = await gh.control<{ privateKey: string }>('POST', '/apps', { slug: 'another-app' });
    const configFile = join(dir, 'foureyes.yaml');
    writeFileSync(configFile, configYaml(join(dir, 'no-remote'), 8233));
    const notPem = join(dir, 'key.pem');
    writeFileSync(notPem, 'this is not a key\n');
    const otherKey = join(dir, 'other.pem');
    writeFileSync(otherKey, other.privateKey, { mode: 0o600 });
    const cases: Array<[string, Record<string, string>, string]> = [
      [
        'a token GitHub refuses',
        { GITHUB_TOKEN: 'ghp_not_a_real_token_0000', GITHUB_API_URL: gh.apiUrl, GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET },
        `foureyes up: GitHub at ${gh.apiUrl} refused GITHUB_TOKEN (401 Bad credentials)`,
      ],
      [
        'a GHES URL without /api/v3',
        { GITHUB_TOKEN: 'ghp_x', GITHUB_API_URL: 'https://ghes.example.com', GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET },
        'foureyes up: GITHUB_API_URL=https://ghes.example.com does not end in /api/v3',
      ],
      [
        'an App key that is not PEM',
        {
          GITHUB_APP_ID: String(app.appId),
          GITHUB_PRIVATE_KEY_PATH: notPem,
          GITHUB_API_URL: gh.apiUrl,
          GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        },
        `foureyes up: GITHUB_PRIVATE_KEY_PATH=${notPem} is not a GitHub App private key`,
      ],
      [
        'a key of another App',
        {
          GITHUB_APP_ID: String(app.appId),
          GITHUB_PRIVATE_KEY_PATH: otherKey,
          GITHUB_API_URL: gh.apiUrl,
          GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
        },
        `foureyes up: GitHub at ${gh.apiUrl} refused the GitHub App's credentials`,
      ],
      [
        'an App ID without a key',
        { GITHUB_APP_ID: String(app.appId), GITHUB_API_URL: gh.apiUrl, GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET },
        'foureyes up: GITHUB_APP_ID is set but neither GITHUB_PRIVATE_KEY nor GITHUB_PRIVATE_KEY_PATH',
      ],
      [
        'no webhook secret',
        { GITHUB_APP_ID: String(app.appId), GITHUB_PRIVATE_KEY: app.privateKey, GITHUB_API_URL: gh.apiUrl },
        'foureyes up: GITHUB_WEBHOOK_SECRET is not set, but GitHub credentials are',
      ],
    ];
    try {
      for (const [what, env, message] of cases) {
        const data = join(dir, what.replace(/\W+/g, '-'));
        const up = await startUp({ dataDir: data, configFile, env, waitFor: 'exit', timeoutMs: 60_000 });
        expect(await up.exited, what).toBe(1);
        expect(up.output(), what).toContain(message);
        expect(up.output(), what).not.toContain('starting Temporal');
        expect(readdirSync(data), what).not.toContain('temporal.sqlite');
        expect(readdirSync(data), what).not.toContain('keys');
        for (const secret of [
          WEBHOOK_SECRET,
          'ghp_not_a_real_token_0000',
          ...app.privateKey.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')),
        ])
          expect(up.output()).not.toContain(secret);
      }
    } finally {
      await gh.stop();
    }
  }, 240_000);
});
