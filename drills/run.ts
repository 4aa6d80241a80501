// `npm run drills [-- --short|--long] [--drill name] [--keep]`: fault drills against the real stack
// (docs/drills.md). Prints one table of runs, faults and outcomes; exit 1 when any invariant is broken.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { parseArgs } from 'node:util';
import type { Drill, DrillResult } from './common.ts';
import { startDrillStack, type DrillStack } from './stack.ts';
import { gatewayRestart } from './gateway-restart.ts';
import { githubFaults } from './github-faults.ts';
import { openbaoDown } from './openbao-down.ts';
import { temporalRestart } from './temporal-restart.ts';
import { workerKills } from './worker-kills.ts';

// The replay check's workers (drills/common.ts) would log every state change into the drill's output.
Runtime.install({ logger: new DefaultLogger('WARN') });

const DRILLS: Record<string, Drill> = {
  'worker-kills': workerKills,
  'temporal-restart': temporalRestart,
  'gateway-restart': gatewayRestart,
  'openbao-down': openbaoDown,
  'github-faults': githubFaults,
};

function table(results: DrillResult[]): string {
  const head = [
    'drill',
    'changes',
    'faults injected',
    'delivered',
    'lost',
    'deploy attempts',
    'effective deploys',
    'duplicate deploys',
    'leaked leases',
    'leftover db roles',
    'GitHub duplicates',
    's',
    'result',
  ];
  const rows = results.map((r) =>
    [
      r.drill,
      r.changes,
      r.faults,
      r.delivered,
      r.lost,
      r.deployAttempts,
      r.effectiveDeploys,
      r.duplicateDeploys,
      r.leakedLeases,
      r.leftoverRoles,
      r.githubDuplicates,
      r.seconds,
      r.failures.length ? 'FAIL' : 'pass',
    ].map(String),
  );
  const lines = [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
  for (const r of results) {
    for (const n of r.notes) lines.push(`- ${r.drill}: ${n}`);
    for (const f of r.failures) lines.push(`- ${r.drill}: BROKEN: ${f}`);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      short: { type: 'boolean' },
      long: { type: 'boolean' },
      drill: { type: 'string', multiple: true },
      keep: { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
  });
  const names = values.drill ?? Object.keys(DRILLS);
  for (const n of names)
    if (!DRILLS[n]) throw new Error(`unknown drill ${n}; known: ${Object.keys(DRILLS).join(', ')}`);
  const long = Boolean(values.long);
  const results: DrillResult[] = [];
  const t0 = Date.now();
  const stackLog = (line: string) => {
    if (!values.quiet) console.log(`[${new Date().toISOString().slice(11, 19)}] stack: ${line}`);
  };
  stackLog('starting PostgreSQL, the GitHub stand-in, Temporal, OpenBao, three workers and the gateway');
  let stack: DrillStack | undefined;
  try {
    stack = await startDrillStack({ name: 'run', log: stackLog, keep: Boolean(values.keep), checkSleep: '1' });
    stackLog(`up in ${Math.round((Date.now() - t0) / 1000)} s (data and logs in ${stack.dir})`);
    for (const name of names) {
      const log = (line: string) => {
        if (!values.quiet) console.log(`[${new Date().toISOString().slice(11, 19)}] ${name}: ${line}`);
      };
      log(`starting (${long ? 'long' : 'short'})`);
      try {
        stack.baseline = {
          leases: new Set(await stack.outstandingLeases()),
          roles: new Set(await stack.leftoverRoles()),
        };
        results.push(await (DRILLS[name] as Drill)({ long, log, keep: Boolean(values.keep), stack }));
      } catch (error) {
        results.push({
          drill: name,
          changes: 0,
          faults: '-',
          delivered: 0,
          lost: 0,
          deployAttempts: 0,
          effectiveDeploys: 0,
          duplicateDeploys: 0,
          leakedLeases: 0,
          leftoverRoles: 0,
          githubDuplicates: 0,
          notes: [],
          failures: [`the drill itself failed: ${(error as Error).stack ?? String(error)}`],
          seconds: 0,
        });
      }
      log('done');
    }
  } finally {
    await stack?.stop();
  }
  console.log(`\nfoureyes drills (${long ? 'long' : 'short'}), ${Math.round((Date.now() - t0) / 1000)} s\n`);
  console.log(table(results));
  return results.some((r) => r.failures.length > 0) ? 1 : 0;
}

process.exitCode = await main();
