// The real stack for the fault drills, built from the pieces `foureyes up` uses, but with every process
// restartable on its own (same environment, same ports): Temporal dev server on a SQLite file, OpenBao dev
// server (reached by the deployer through a TCP relay the drill can cut), PostgreSQL run as `postgres`
// for dynamic database credentials, the GitHub stand-in over HTTP (a GitHub App, signed webhooks), the
// gateway and the three workers as separate processes. The deploy command appends to a ledger file.
import { Client, Connection } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.ts';
import {
  bootstrapDeployers,
  startOpenBao,
  VaultAdmin,
  type DeployerCredentials,
  type OpenBaoServer,
} from '../src/dev/openbao.ts';
import { projectRoot } from '../src/dev/paths.ts';
import { freePort, startProcess, waitUntil, type ManagedProcess } from '../src/dev/process.ts';
import { loadOrCreateOperatorToken, loadOrCreateSigningKey, nodeEntry } from '../src/dev/stack.ts';
import { startTemporalServer, type TemporalServer } from '../src/dev/temporal-server.ts';
import { startGitHubStandin, type RunningStandin } from '../src/dev/github-standin/server.ts';
import { ensureWorkflowBundle } from '../src/workers/bundle.ts';
import { DEPLOY_ENVIRONMENT_ENV, ZONES, zoneTaskQueue, type Zone } from '../src/workers/zones.ts';
import type { ChangeStatus } from '../src/shared/types.ts';
import { startPostgres, type PostgresCluster } from '../test/helpers/postgres.ts';

export const REPO = 'acme/shop';
export const AUTHOR = 'sam-dev';
export const REVIEWER = 'alex-reviewer';
export const PREFIX = 'foureyes';
export const DB_ROLE = 'drill-app';
export type Role = Zone | 'gateway';

export interface LedgerEntry {
  change: string;
  environment: string;
  sha: string;
  key: string;
}

/** A TCP relay in front of OpenBao: `cut()` closes it (connection refused, open sockets reset), `restore()` reopens. */
export class Relay {
  private server?: Server;
  private sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}
  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: this.target });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  get isOpen(): boolean {
    return this.server !== undefined;
  }
}

export interface DrillStack {
  dir: string;
  temporal: TemporalServer;
  client: Client;
  openbao: OpenBaoServer;
  admin: VaultAdmin;
  relay: Relay;
  pg: PostgresCluster;
  github: RunningStandin;
  gatewayUrl: string;
  /** The workflow bundle the orchestrators run (read at start), to replay the changes' histories with. */
  workflowBundleCode: string;
  /** `deploy` is the staging deployer; every environment's deployer is in `deployers`. */
  procs: Record<Role, ManagedProcess>;
  /** One deploy worker per environment, with that environment's AppRole (`deploy` as a role means all of them). */
  deployers: Record<string, ManagedProcess>;
  /** SIGKILL one process (only it, as `kill -9 <pid>` would) and start it again with the same environment. */
  kill9(role: Role, restart?: boolean): Promise<void>;
  start(role: Role): Promise<void>;
  /** Kill -9 the Temporal dev server and start it again on the same database file and port. */
  restartTemporal(): Promise<void>;
  /** Sam opens a pull request with one commit; its number, head SHA and the webhook delivery. */
  openChange(): Promise<{ number: number; sha: string; delivery: string; status?: number }>;
  approve(n: number, sha: string): Promise<{ delivery: string; status?: number }>;
  close(n: number): Promise<{ delivery: string; status?: number }>;
  status(n: number): Promise<ChangeStatus | undefined>;
  ledger(): { attempts: LedgerEntry[]; effective: LedgerEntry[] };
  /** What an earlier drill of the run left over (judged there), set before each drill. */
  baseline: { leases: Set<string>; roles: Set<string> };
  outstandingLeases(): Promise<string[]>;
  leftoverRoles(): Promise<string[]>;
  stop(): Promise<void>;
}

function configYaml(o: { remote: string; deployScript: string; deployDir: string; checkSleep: string }): string {
  return `
people:
  - { github: ${AUTHOR}, name: Sam, emails: [sam@example.com] }
  - { github: ${REVIEWER}, name: Alex, emails: [alex@example.com] }
environments:
  - name: staging
    deploy: { run: "${o.deployScript}", timeout: 60s, writable: ["${o.deployDir}"] }
    lease:
      kind: dynamic
      path: database/creds/${DB_ROLE}
      ttl: 3m
      env: { PGUSER: username, PGPASSWORD: password }
    approval: { required: 1 }
  - name: production
    deploy: { run: "${o.deployScript}", timeout: 60s, writable: ["${o.deployDir}"] }
    lease: { kind: token, ttl: 3m, env: { VAULT_TOKEN: token } }
    approval: { required: 1 }
repositories:
  - name: ${REPO}
    remote: ${o.remote}
    environments: [staging, production]
    checks:
      - { name: unit, run: "sleep ${o.checkSleep}", timeout: 60s }
vault: { prefix: ${PREFIX} }
`;
}

/**
 * The deploy command: every attempt is appended to `attempts`; the effect (a line in `ledger`) happens once
 * per idempotency key, as a real deploy tool keyed on FOUREYES_IDEMPOTENCY_KEY would. It first proves the
 * leased database credentials work, and sleeps a little so that a kill -9 can land mid-deploy.
 */
function deployScript(o: { ledger: string; psql: string; pgPort: number }): string {
  return `#!/bin/sh
set -eu
line="$FOUREYES_CHANGE $FOUREYES_ENVIRONMENT $FOUREYES_SHA $FOUREYES_IDEMPOTENCY_KEY"
if [ -n "\${PGUSER:-}" ]; then
  PGPASSWORD="$PGPASSWORD" ${o.psql} -X -q -h 127.0.0.1 -p ${o.pgPort} -U "$PGUSER" -d postgres -tAc 'select 1' >/dev/null
fi
echo "$line" >> ${o.ledger}.attempts
sleep 0.$(( $$ % 8 + 1 ))
(
  flock 9
  grep -qxF "$line" ${o.ledger} 2>/dev/null || echo "$line" >> ${o.ledger}
) 9>${o.ledger}.lock
`;
}

function parseLedger(file: string): LedgerEntry[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [change = '', environment = '', sha = '', key = ''] = line.split(' ');
      return { change, environment, sha, key };
    });
}

export async function startDrillStack(options: {
  name: string;
  checkSleep?: string;
  log?: (line: string) => void;
  keep?: boolean;
}): Promise<DrillStack> {
  const log = options.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), `foureyes-drill-${options.name}-`));
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    if (!options.keep) rmSync(dir, { recursive: true, force: true });
  };
  try {
    log('postgres');
    const pg = await startPostgres();
    cleanups.push(() => pg.stop());

    log('github stand-in');
    const github = await startGitHubStandin({ dataDir: join(dir, 'github') });
    cleanups.push(() => github.stop());
    const s = github.standin;
    s.addUser({ login: AUTHOR, name: 'Sam', email: 'sam@example.com' });
    s.addUser({ login: REVIEWER, name: 'Alex', email: 'alex@example.com' });
    const app = s.addApp({ slug: 'foureyes-drill' });
    const repo = s.createRepo({ fullName: REPO, files: { 'README.md': '# shop\n' } });

    // Deploy commands run sandboxed, each as a uid of its own: they see only this folder of the drill's (not
    // its keys), and every file they append to is writable for all of them.
    // The drill's folder may be passed through (0711: no listing), so a sandbox can bind the deploy folder in it.
    chmodSync(dir, 0o711);
    const deployDir = join(dir, 'deploy');
    mkdirSync(deployDir, { mode: 0o777 });
    chmodSync(deployDir, 0o777);
    const ledger = join(deployDir, 'ledger');
    for (const file of [ledger, `${ledger}.attempts`, `${ledger}.lock`]) {
      writeFileSync(file, '');
      chmodSync(file, 0o666);
    }
    const script = join(deployDir, 'deploy.sh');
    writeFileSync(script, deployScript({ ledger, psql: pg.psql, pgPort: pg.port }));
    chmodSync(script, 0o755);
    const configFile = join(dir, 'foureyes.yaml');
    writeFileSync(
      configFile,
      configYaml({ remote: repo.gitDir, deployScript: script, deployDir, checkSleep: options.checkSleep ?? '0.5' }),
    );
    const config = loadConfig(configFile);

    log('temporal');
    const temporalOptions = {
      dataDir: dir,
      namespace: config.temporal.namespace,
      headless: true,
      logFile: join(logs, 'temporal.log'),
      port: await freePort(),
    };
    let temporal = await startTemporalServer(temporalOptions);
    cleanups.push(() => temporal.process.stop('SIGKILL'));

    log('openbao');
    const openbao = await startOpenBao({ logFile: join(logs, 'openbao.log') });
    cleanups.push(() => openbao.process.stop());
    const admin = new VaultAdmin(openbao.address, openbao.rootToken);
    // One deployer AppRole per environment, as `foureyes up` bootstraps them; no shared deployer.
    const creds = await bootstrapDeployers(admin, config, { sharedDeployer: false });
    // The administrator's part: the database secrets engine behind staging's dynamic lease.
    await admin.request('POST', 'database/config/drill-pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${pg.port}/postgres?sslmode=disable`,
      username: pg.superuser,
      password: pg.password,
      allowed_roles: [DB_ROLE],
    });
    await admin.request('POST', `database/roles/${DB_ROLE}`, {
      db_name: 'drill-pg',
      creation_statements: [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`],
      revocation_statements: [`DROP ROLE IF EXISTS "{{name}}";`],
      default_ttl: '5m',
      max_ttl: '10m',
    });
    const relay = new Relay(await freePort(), Number(new URL(openbao.address).port));
    await relay.open();
    cleanups.push(() => relay.cut());

    const signingKey = loadOrCreateSigningKey(dir);
    const auditKey = loadOrCreateSigningKey(dir, 'audit-signing');
    const bundle = await ensureWorkflowBundle({ ...process.env, FOUREYES_DATA: join(projectRoot(), '.foureyes') });
    const webhookSecret = execFileSync('openssl', ['rand', '-hex', '24'], { encoding: 'utf8' }).trim();
    const githubEnv = {
      GITHUB_API_URL: github.url,
      GITHUB_APP_ID: String(app.appId),
      GITHUB_PRIVATE_KEY: app.privateKey,
      GITHUB_INSTALLATION_ID: String(app.installationId),
    };
    const base: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      NODE_ENV: 'development',
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      FOUREYES_CONFIG: configFile,
      FOUREYES_DATA: dir,
      FOUREYES_WORKFLOW_BUNDLE: bundle,
    };
    const zoneEnv: Record<Zone, Record<string, string>> = {
      orchestrator: { ...base, FOUREYES_APPROVAL_PUBLIC_KEYS: signingKey.publicKey, ...githubEnv },
      checks: { ...base },
      deploy: { ...base, VAULT_ADDR: `http://127.0.0.1:${relay.port}` },
    };
    const environments = config.environments.map((e) => e.name);
    const deployEnvOf = (environment: string): Record<string, string> => {
      const own = creds.environments[environment] as DeployerCredentials;
      return {
        ...envOf.deploy,
        VAULT_ROLE_ID: own.roleId,
        VAULT_SECRET_ID: own.secretId,
        [DEPLOY_ENVIRONMENT_ENV]: environment,
      };
    };
    const gatewayPort = await freePort();
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const operator = loadOrCreateOperatorToken(dir);
    const envOf: Record<Role, Record<string, string>> = {
      orchestrator: {},
      checks: {},
      deploy: {},
      gateway: {
        ...base,
        PORT: String(gatewayPort),
        FOUREYES_APPROVAL_SIGNING_KEY: signingKey.privateKey,
        FOUREYES_AUDIT_SIGNING_KEY: auditKey.privateKey,
        // The drill reads status with the operator token, as an operator's dashboard would.
        FOUREYES_OPERATOR_TOKENS_FILE: operator.file,
        GITHUB_WEBHOOK_SECRET: webhookSecret,
        ...githubEnv,
      },
    };
    for (const zone of ['orchestrator', 'checks', 'deploy'] as const) {
      const allowed = new Set([...Object.keys(base), ...ZONES[zone].allowedEnv]);
      envOf[zone] = Object.fromEntries(Object.entries(zoneEnv[zone]).filter(([k]) => allowed.has(k)));
    }
    const script_ = (role: Role) =>
      role === 'gateway' ? 'src/gateway/main.ts' : `src/workers/${role === 'deploy' ? 'deployer' : role}.ts`;
    const procs = {} as Record<Role, ManagedProcess>;
    const deployers: Record<string, ManagedProcess> = {};
    const spawnRole = (role: Role) => {
      const entry = nodeEntry(script_(role));
      if (role === 'deploy') {
        // Each environment's deployer is a process of its own, with that environment's AppRole alone.
        for (const environment of environments)
          deployers[environment] = startProcess(entry.command, entry.args, {
            name: `deploy-${environment}`,
            cwd: projectRoot(),
            env: deployEnvOf(environment),
            logFile: join(logs, `deploy-${environment}.log`),
          });
        procs.deploy = deployers[environments[0] as string] as ManagedProcess;
        return;
      }
      procs[role] = startProcess(entry.command, entry.args, {
        name: role,
        cwd: projectRoot(),
        env: envOf[role],
        logFile: join(logs, `${role}.log`),
      });
    };
    const connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection, namespace: temporal.namespace });
    cleanups.push(async () => {
      for (const role of ['gateway', 'orchestrator', 'checks'] as const) await procs[role]?.stop('SIGTERM', 5000);
      for (const deployer of Object.values(deployers)) await deployer.stop('SIGTERM', 5000);
      await client.connection.close().catch(() => undefined);
    });
    const ready = async (role: Role) => {
      if (role === 'gateway') {
        await waitUntil('gateway', async () => (await fetch(`${gatewayUrl}/healthz`)).ok, {
          timeoutMs: 60_000,
          process: procs.gateway,
        });
        return;
      }
      const types = role === 'orchestrator' ? [1] : [2];
      const pollers =
        role === 'deploy'
          ? environments.map((e) => ({ name: zoneTaskQueue('deploy', deployEnvOf(e)), proc: deployers[e] }))
          : [{ name: zoneTaskQueue(role, {}), proc: procs[role] }];
      for (const { name, proc } of pollers)
        await waitUntil(
          `worker ${role} on ${name}`,
          async () => {
            for (const taskQueueType of types) {
              const r = await client.connection.workflowService.describeTaskQueue({
                namespace: temporal.namespace,
                taskQueue: { name },
                taskQueueType,
              });
              // A killed worker's poller lingers in the list for a while; require one seen in the last 2 s.
              const fresh = (r.pollers ?? []).some(
                (p) => Date.now() - Number(p.lastAccessTime?.seconds ?? 0) * 1000 < 2000,
              );
              if (!fresh) return false;
            }
            return true;
          },
          { timeoutMs: 120_000, process: proc },
        );
    };
    const start = async (role: Role) => {
      spawnRole(role);
      await ready(role);
    };
    await Promise.all((['orchestrator', 'checks', 'deploy', 'gateway'] as const).map((r) => start(r)));
    s.setWebhook(`${gatewayUrl}/webhooks/github`, webhookSecret);

    let counter = 0;
    const stack: DrillStack = {
      dir,
      get temporal() {
        return temporal;
      },
      client,
      openbao,
      admin,
      relay,
      pg,
      github,
      gatewayUrl,
      workflowBundleCode: readFileSync(bundle, 'utf8'),
      procs,
      deployers,
      baseline: { leases: new Set(), roles: new Set() },
      async kill9(role, restart = true) {
        // `deploy`: every environment's deployer at once (each holds only its own environment's AppRole).
        for (const proc of role === 'deploy' ? Object.values(deployers) : [procs[role]]) {
          const child = proc.child;
          if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
          await proc.exited;
        }
        // Whatever the killed process had started in its group (a deploy command) is its own watchdog's business.
        if (restart) await start(role);
      },
      start,
      async restartTemporal() {
        const proc = temporal.process;
        if (proc.child.pid !== undefined) process.kill(proc.child.pid, 'SIGKILL');
        await proc.exited;
        // Same port and database file: the workers' and the gateway's connections find it again by themselves.
        temporal = await startTemporalServer(temporalOptions);
      },
      async openChange() {
        const n = ++counter;
        const r = await s.openPullRequest({
          repo: REPO,
          author: AUTHOR,
          title: `drill change ${n}`,
          head: `drill-${n}`,
          commits: [{ message: `change ${n}`, author: AUTHOR, files: { [`c${n}.txt`]: `${n}\n` } }],
        });
        return { number: r.pull.number, sha: r.pull.headSha, delivery: r.delivery.id, status: r.status };
      },
      async approve(n, sha) {
        const r = await s.submitReview({ repo: REPO, number: n, reviewer: REVIEWER, event: 'APPROVE', commitId: sha });
        return { delivery: r.delivery.id, status: r.status };
      },
      async close(n) {
        const r = await s.closePullRequest({ repo: REPO, number: n, by: AUTHOR });
        return { delivery: r.delivery.id, status: r.status };
      },
      async status(n) {
        const res = await fetch(`${gatewayUrl}/api/changes/${REPO}/${n}`, {
          headers: { authorization: `Bearer ${operator.token}` },
        });
        if (res.status === 404) return undefined;
        if (!res.ok) throw new Error(`status of #${n}: HTTP ${res.status}`);
        return (await res.json()) as ChangeStatus;
      },
      ledger() {
        return { attempts: parseLedger(`${ledger}.attempts`), effective: parseLedger(ledger) };
      },
      async outstandingLeases() {
        const found: string[] = [];
        const walk = async (prefix: string): Promise<void> => {
          let keys: string[] = [];
          try {
            keys =
              (await admin.request<{ data?: { keys?: string[] } }>('LIST', `sys/leases/lookup/${prefix}`)).data?.keys ??
              [];
          } catch (error) {
            if (/HTTP 404/.test((error as Error).message)) return;
            throw error;
          }
          for (const k of keys) {
            if (k.endsWith('/')) await walk(`${prefix}${k}`);
            else found.push(`${prefix}${k}`);
          }
        };
        for (const env of config.environments) await walk(`auth/token/create/${PREFIX}-${env.name}/`);
        await walk(`database/creds/${DB_ROLE}/`);
        return found;
      },
      async leftoverRoles() {
        return (await pg.query<{ rolname: string }>("select rolname from pg_roles where rolname like 'v-%'")).map(
          (r) => r.rolname,
        );
      },
      stop: stopAll,
    };
    return stack;
  } catch (error) {
    await stopAll();
    throw error;
  }
}
