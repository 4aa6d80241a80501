// A throwaway PostgreSQL cluster on a free port, for one test file: the pinned server that `foureyes tools`
// puts in .tools/postgres (Debian's package when that cannot be had), initdb into a temp directory, postgres
// in its own process group, everything removed on stop. initdb and postgres refuse to run as root, so both
// run as the `postgres` user (or `nobody` on a machine without one) when the tests run as root.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { projectRoot } from '../../src/dev/paths.ts';
import { freePort, startProcess, waitUntil, type ManagedProcess } from '../../src/dev/process.ts';
import { debianPostgresBinDir, ensurePostgres } from '../../src/dev/tools.ts';

export interface PostgresCluster {
  host: string;
  port: number;
  superuser: string;
  password: string;
  /** libpq-style URL for the superuser (tests only). */
  url: string;
  psql: string;
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

export function postgresBinDir(): string {
  return ensurePostgres();
}

/** A psql for deploy commands: beside the server, else Debian's client, else the small pg-driver client. */
function psqlCommand(bin: string): string {
  const debian = debianPostgresBinDir();
  for (const dir of [bin, debian]) if (dir && existsSync(join(dir, 'psql'))) return join(dir, 'psql');
  return `${process.execPath} ${join(projectRoot(), 'test', 'helpers', 'psql.mjs')}`;
}

function pgUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(
        execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
      );
      const gid = Number(
        execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
      );
      return { name, uid, gid };
    } catch {
      // no such user here
    }
  }
  throw new Error('PostgreSQL refuses to run as root and there is neither a postgres nor a nobody user to run it as');
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'foureyes-pg-'));
  const data = join(dir, 'data');
  const password = randomBytes(16).toString('hex');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  const owner = pgUser();
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(pwfile, owner.uid, owner.gid);
  }
  const asPostgres = (command: string, args: string[]): [string, string[]] =>
    owner ? ['runuser', ['-u', owner.name, '--', command, ...args]] : [command, args];

  const [initCmd, initArgs] = asPostgres(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--pwfile',
    pwfile,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  execFileSync(initCmd, initArgs, {
    stdio: 'pipe',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
  });
  rmSync(pwfile);

  const port = await freePort();
  const [cmd, args] = asPostgres(join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
    '-c',
    'shared_buffers=16MB',
    '-c',
    'max_connections=30',
  ]);
  const proc: ManagedProcess = startProcess(cmd, args, {
    name: 'postgres',
    logFile: join(dir, 'postgres.log'),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
  });
  const url = `postgresql://postgres:${password}@127.0.0.1:${port}/postgres?sslmode=disable`;
  const query = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  };
  await waitUntil(`PostgreSQL on 127.0.0.1:${port}`, async () => (await query('select 1')).length === 1, {
    timeoutMs: 30_000,
    process: proc,
  });
  return {
    host: '127.0.0.1',
    port,
    superuser: 'postgres',
    password,
    url,
    psql: psqlCommand(bin),
    query,
    async stop() {
      // SIGINT = fast shutdown; the process group goes with it.
      await proc.stop('SIGINT', 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
