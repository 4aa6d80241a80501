// npm run bench [-- --scenario <name>[,<name>]] [--n <size>] [--rounds <r>] [--seconds <s>] [--quick] [--max-cached <n>] [--skip-baseline]
// Runs the benchmark scenarios (all by default); each starts its own servers on free ports and stops them,
// and prints its figures beside a baseline measured in the same run on the same servers.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { stopAll } from './env.ts';
import { machineLine, ratioSpread, table } from './stats.ts';
import { overhead } from './scenarios/overhead.ts';
import { throughput } from './scenarios/throughput.ts';
import { scale } from './scenarios/scale.ts';
import { approval } from './scenarios/approval.ts';
import { webhook } from './scenarios/webhook.ts';
import { replay } from './scenarios/replay.ts';
import { sandbox } from './scenarios/sandbox.ts';
import { audit } from './scenarios/audit.ts';
import { goals, say, type Scenario } from './scenarios/types.ts';

// The replay scenario's workers would log every state change.
Runtime.install({ logger: new DefaultLogger('WARN') });

const scenarios: Scenario[] = [webhook, overhead, approval, scale, throughput, replay, sandbox, audit];

const { values } = parseArgs({
  options: {
    scenario: { type: 'string' },
    n: { type: 'string' },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'max-cached': { type: 'string' },
    'skip-baseline': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  say(
    `usage: npm run bench -- [--scenario ${scenarios.map((s) => s.name).join('|')}] [--n size] [--rounds r (>= 3)] [--seconds s] [--quick] [--max-cached n] [--skip-baseline]`,
  );
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
  if (/Channel has been shut down/.test(error.message))
    return console.error('bench: a call still in flight when its servers stopped was dropped');
  console.error(error);
  process.exit(1);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}, stopping the servers`);
    void stopAll().finally(() => process.exit(130));
  });
}

const rounds = Math.max(3, num(values.rounds) ?? 3);
const git = (...args: string[]) => {
  try {
    return execFileSync('git', args, { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
};
// Every figure carries the command and the commit it came from (a dirty tree says so).
const commit = `${git('rev-parse', '--short=12', 'HEAD') || 'unknown'}${git('status', '--porcelain', '--untracked-files=no') ? ' (with uncommitted changes)' : ''}`;
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
say(machineLine());
say(`command: ${command}  commit: ${commit}  (${new Date().toISOString()}, load ${load()}, ${rounds} rounds)`);
for (const scenario of scenarios.filter((s) => wanted.includes(s.name))) {
  say(`\n## ${scenario.title}`);
  const started = performance.now();
  try {
    await scenario.run({
      quick: values.quick,
      n: num(values.n),
      seconds: num(values.seconds),
      maxCached: num(values['max-cached']),
      skipBaseline: values['skip-baseline'],
      rounds,
    });
  } catch (error) {
    say(`${scenario.name} FAILED: ${(error as Error).message}`);
    process.exitCode = 1;
  }
  say(`(${scenario.name}: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
if (goals.length > 0) {
  say(
    `\n## Goals at a glance\n\n\`${command}\` at ${commit}, ${new Date().toISOString()}, load ${load()} at the end; ratios: median of ${rounds} rounds (lowest–highest), each against the baseline measured in the same round`,
  );
  say(
    table(
      ['goal', 'figure (medians)', 'ratio to bare', 'verdict'],
      goals.map((g) => [
        g.goal,
        g.figure,
        ratioSpread(g.ratios),
        g.unsettled
          ? `${g.met ? 'met' : 'NOT met'} at the median; does not reproduce (rounds disagree)`
          : g.met
            ? 'met'
            : 'NOT met',
      ]),
    ),
  );
}
process.exit(process.exitCode ?? 0);
