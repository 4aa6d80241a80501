// PostgreSQL without anything installed by hand: with Debian's packages hidden from the lookup, the
// tests' cluster runs on the pinned server in .tools/postgres, and deploy commands get a psql that works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../src/dev/paths.ts';
import { debianPostgresBinDir } from '../../src/dev/tools.ts';
import { startPostgres, type PostgresCluster } from '../helpers/postgres.ts';

let pg: PostgresCluster;
const saved = process.env.FOUREYES_DEBIAN_POSTGRES_ROOT;

beforeAll(async () => {
  process.env.FOUREYES_DEBIAN_POSTGRES_ROOT = '/nonexistent/debian-postgresql';
  pg = await startPostgres();
}, 120_000);

afterAll(async () => {
  await pg?.stop();
  if (saved === undefined) delete process.env.FOUREYES_DEBIAN_POSTGRES_ROOT;
  else process.env.FOUREYES_DEBIAN_POSTGRES_ROOT = saved;
});

describe('PostgreSQL for the tests, without Debian’s package', () => {
  it('runs the pinned server from .tools/postgres', async () => {
    expect(debianPostgresBinDir()).toBeUndefined();
    const [row] = await pg.query<{ version: string }>('select version()');
    expect(row?.version).toMatch(/^PostgreSQL 17\./);
    // The server that answers is the pinned one.
    const serverBinary = execFileSync(
      'sh',
      ['-c', `ps -eo args= | grep -F -- "-p ${pg.port}" | grep -v grep | head -1`],
      { encoding: 'utf8' },
    );
    expect(serverBinary).toContain(join(projectRoot(), '.tools', 'postgres', 'native', 'bin', 'postgres'));
  });

  it('gives deploy commands a psql that queries and fails like psql', () => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: pg.password };
    const run = (sql: string) =>
      spawnSync(
        'sh',
        ['-c', `${pg.psql} -X -q -h 127.0.0.1 -p ${pg.port} -U postgres -d postgres -v ON_ERROR_STOP=1 -tAc "${sql}"`],
        { encoding: 'utf8', env },
      );
    expect(run('create table t(a int, b text)').status).toBe(0);
    expect(run("insert into t values (1, 'x'), (2, null)").status).toBe(0);
    const select = run('select a, b from t order by a');
    expect(select.status).toBe(0);
    expect(select.stdout).toBe('1|x\n2|\n');
    const bad = run('select * from missing_table');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('missing_table');
  });
});
