// npm run bench [-- --scenario <name>[,<name>]] [--n <size>] [--seconds <s>] [--quick] [--max-cached <n>] [--skip-baseline]
// Runs the benchmark scenarios (all by default); each starts its own servers on free ports and stops them,
// and prints its figures beside a baseline measured in the same run on the same servers.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { parseArgs } from 'node:util';
import { stopAll } from './env.ts';
import { machineLine } from './stats.ts';
import { overhead } from './scenarios/overhead.ts';
import { throughput } from './scenarios/throughput.ts';
import { scale } from './scenarios/scale.ts';
import { approval } from './scenarios/approval.ts';
import { webhook } from './scenarios/webhook.ts';
import { replay } from './scenarios/replay.ts';
import { say, type Scenario } from './scenarios/types.ts';

// The replay scenario's workers would log every state change.
Runtime.install({ logger: new DefaultLogger('WARN') });

const scenarios: Scenario[] = [webhook, overhead, approval, scale, throughput, replay];

const { values } = parseArgs({
  options: {
    scenario: { type: 'string' },
    n: { type: 'string' },
    seconds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'max-cached': { type: 'string' },
    'skip-baseline': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  say(`usage: npm run bench -- [--scenario ${scenarios.map((s) => s.name).join('|')}] [--n size] [--seconds s] [--quick] [--max-cached n] [--skip-baseline]`);
  process.exit(process.exitCode ?? 0);
}

const wanted = values.scenario ? values.scenario.split(',') : scenarios.map((s) => s.name);
const unknown = wanted.filter((w) => !scenarios.some((s) => s.name === w));
if (unknown.length > 0) {
  console.error(`bench: unknown scenario ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

// A scenario that failed may leave client calls retrying after its servers stopped; they must not end the
// whole run (the failure itself is reported with the scenario).
process.on('uncaughtException', (error) => {
  if (/Channel has been shut down/.test(error.message)) return console.error('bench: a call still in flight when its servers stopped was dropped');
  console.error(error);
  process.exit(1);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}, stopping the servers`);
    void stopAll().finally(() => process.exit(130));
  });
}

say(machineLine());
say(`command: npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}  (${new Date().toISOString()})`);
for (const scenario of scenarios.filter((s) => wanted.includes(s.name))) {
  say(`\n## ${scenario.title}`);
  const started = performance.now();
  try {
    await scenario.run({ quick: values.quick, n: num(values.n), seconds: num(values.seconds), maxCached: num(values['max-cached']), skipBaseline: values['skip-baseline'] });
  } catch (error) {
    say(`${scenario.name} FAILED: ${(error as Error).message}`);
    process.exitCode = 1;
  }
  say(`(${scenario.name}: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
process.exit(process.exitCode ?? 0);
