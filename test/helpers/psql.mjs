#!/usr/bin/env node
// The few psql options the tests' and drills' deploy commands use (-X -q -t -A -h -p -U -d -v -c), for a
// machine with the pinned PostgreSQL server (which ships no psql) and without Debian's client. Talks to the
// real server through the pg driver; PGUSER, PGPASSWORD, PGHOST, PGPORT and PGDATABASE apply as with psql.
import pg from 'pg';

const args = process.argv.slice(2);
const opts = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: process.env.PGPORT,
  user: process.env.PGUSER,
  database: process.env.PGDATABASE,
};
const commands = [];
let tuplesOnly = false;
let unaligned = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => args[++i];
  if (a === '-h') opts.host = value();
  else if (a === '-p') opts.port = value();
  else if (a === '-U') opts.user = value();
  else if (a === '-d') opts.database = value();
  else if (a === '-v') value();
  else if (a === '-c') commands.push(value());
  else if (/^-[XqtAc]+$/.test(a)) {
    if (a.includes('t')) tuplesOnly = true;
    if (a.includes('A')) unaligned = true;
    if (a.endsWith('c')) commands.push(value());
  } else {
    console.error(`psql (foureyes test client): unsupported argument ${a}`);
    process.exit(2);
  }
}
const client = new pg.Client({ ...opts, port: opts.port ? Number(opts.port) : undefined });
try {
  await client.connect();
  for (const sql of commands) {
    const result = await client.query({ text: sql, rowMode: 'array' });
    for (const r of Array.isArray(result) ? result : [result]) {
      if (!r.fields?.length) continue;
      if (!tuplesOnly) console.log(r.fields.map((f) => f.name).join('|'));
      for (const row of r.rows)
        console.log(row.map((v) => (v === null ? '' : String(v))).join(unaligned ? '|' : ' | '));
    }
  }
  await client.end();
} catch (error) {
  console.error(`psql: error: ${error.message}`);
  process.exit(1);
}
