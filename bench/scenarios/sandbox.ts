// 7. The sandbox's own cost: every check and every deploy/verify step runs in a fresh bubblewrap sandbox
// (src/activities/sandbox.ts). This scenario runs the same commands through the same runner with the sandbox and
// without it (FOUREYES_UNSAFE_NO_SANDBOX=1, a process group as before the sandbox), interleaved: the time the
// sandbox adds to each command, as a check runs (no network, checkout read-write) and as a deploy step runs
// (a writable folder and secrets to redact).
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSandboxed, UNSAFE_NO_SANDBOX_ENV, type SandboxCommand } from '../../src/activities/sandbox.ts';
import { fmt, median, ratioSpread, summarize, table } from '../stats.ts';
import { say, type Scenario } from './types.ts';

interface Case {
  name: string;
  command: Omit<SandboxCommand, 'checkout'>;
}

const cases = (writable: string): Case[] => [
  {
    name: 'check: `true`',
    command: { run: 'true', env: {}, network: false, timeoutMs: 30_000, tailChars: 4000 },
  },
  {
    name: 'check: `node -e` (a toolchain start)',
    command: {
      run: `node -e "require('node:fs').readdirSync('.')"`,
      env: {},
      network: false,
      timeoutMs: 30_000,
      tailChars: 4000,
    },
  },
  {
    name: 'deploy step: script with a lease',
    command: {
      run: 'sh deploy.sh',
      env: { VAULT_TOKEN: 's.bench-secret-value-0123456789', FOUREYES_ENVIRONMENT: 'staging' },
      network: false,
      timeoutMs: 30_000,
      tailChars: 4000,
      secrets: ['s.bench-secret-value-0123456789'],
      writable: [writable],
    },
  },
];

async function timeOne(command: SandboxCommand, sandboxed: boolean): Promise<number> {
  if (sandboxed) delete process.env[UNSAFE_NO_SANDBOX_ENV];
  else process.env[UNSAFE_NO_SANDBOX_ENV] = '1';
  const started = performance.now();
  const result = await runSandboxed(command);
  const elapsed = performance.now() - started;
  if (result.exitCode !== 0) throw new Error(`${command.run} exited ${result.exitCode}: ${result.output.slice(-500)}`);
  if (result.sandboxed !== sandboxed) throw new Error(`${command.run}: expected sandboxed=${sandboxed}`);
  return elapsed;
}

export const sandbox: Scenario = {
  name: 'sandbox',
  title: '7. The sandbox: time it adds per check and per deploy step',
  async run(options) {
    const root = mkdtempSync(join(tmpdir(), 'foureyes-bench-sandbox-'));
    const checkout = join(root, 'checkout');
    const writable = join(root, 'out');
    mkdirSync(checkout);
    mkdirSync(writable);
    for (const dir of [root, checkout, writable]) chmodSync(dir, 0o777);
    writeFileSync(
      join(checkout, 'deploy.sh'),
      `echo "deploying with $VAULT_TOKEN"\necho done > ${writable}/marker\nfor i in 1 2 3 4 5; do echo "step $i"; done\n`,
    );
    const perRound = options.quick ? 5 : (options.n ?? 20);
    const saved = process.env[UNSAFE_NO_SANDBOX_ENV];
    try {
      say(
        `${perRound} runs of each command per mode per round, ${options.rounds} rounds, modes alternating run by run`,
      );
      const rows: string[][] = [];
      for (const c of cases(writable)) {
        const command = { ...c.command, checkout };
        await timeOne(command, true); // warm the page cache for both modes
        await timeOne(command, false);
        const ratios: number[] = [];
        const added: number[] = [];
        const all = { on: [] as number[], off: [] as number[] };
        for (let round = 0; round < options.rounds; round++) {
          const on: number[] = [];
          const off: number[] = [];
          for (let i = 0; i < perRound; i++) {
            // Alternate which mode goes first, so neither always runs on a warmer machine.
            if (i % 2 === 0) {
              on.push(await timeOne(command, true));
              off.push(await timeOne(command, false));
            } else {
              off.push(await timeOne(command, false));
              on.push(await timeOne(command, true));
            }
          }
          ratios.push(median(on) / median(off));
          added.push(median(on) - median(off));
          all.on.push(...on);
          all.off.push(...off);
        }
        const on = summarize(all.on);
        const off = summarize(all.off);
        rows.push([
          c.name,
          `${fmt(on.p50)} / ${fmt(on.p95)}`,
          `${fmt(off.p50)} / ${fmt(off.p95)}`,
          `${fmt(median(added))} (${fmt(Math.min(...added))}–${fmt(Math.max(...added))})`,
          ratioSpread(ratios),
        ]);
      }
      say(
        table(
          [
            'command',
            'sandboxed p50 / p95 ms',
            'unsandboxed p50 / p95 ms',
            'added ms, median of rounds (lowest–highest)',
            'ratio',
          ],
          rows,
        ),
      );
    } finally {
      if (saved === undefined) delete process.env[UNSAFE_NO_SANDBOX_ENV];
      else process.env[UNSAFE_NO_SANDBOX_ENV] = saved;
      rmSync(root, { recursive: true, force: true });
    }
  },
};
