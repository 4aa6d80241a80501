// The production image leaves src/dev out (.dockerignore): the local stack, the development commands and the
// stand-ins. A copy of the checkout laid out as the image is (bin/, src/ without src/dev, the manifests, the
// example configuration) must still run every production command, and a development command must say what it
// is instead of crashing at start.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { projectRoot } from '../../src/config/paths.ts';
import { freePort } from '../../src/dev/process.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import { startFoureyes, untilHealthy } from '../helpers/foureyes-process.ts';
import { uniqueQueue } from '../helpers/temporal.ts';

const root = projectRoot();
const image = mkdtempSync(join(tmpdir(), 'foureyes-image-'));
for (const entry of ['bin', 'package.json', 'package-lock.json', 'foureyes.example.yaml'])
  cpSync(join(root, entry), join(image, entry), { recursive: true });
cpSync(join(root, 'src'), join(image, 'src'), {
  recursive: true,
  filter: (source) => relative(join(root, 'src'), source).split('/')[0] !== 'dev',
});
symlinkSync(join(root, 'node_modules'), join(image, 'node_modules'));
afterAll(() => rmSync(image, { recursive: true, force: true }));

function foureyes(...args: string[]): { code: number | null; output: string } {
  const result = spawnSync(process.execPath, [join(image, 'bin/foureyes.js'), ...args], {
    cwd: image,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, FOUREYES_DATA: join(image, '.foureyes') },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('the production image (src/ without src/dev)', () => {
  it('is laid out without src/dev', () => {
    expect(existsSync(join(image, 'src/cli/main.ts'))).toBe(true);
    expect(existsSync(join(image, 'src/dev'))).toBe(false);
  });

  it.each([
    [['--help'], 0, /usage: foureyes <command>[\s\S]*status[\s\S]*worker/],
    [['status', '--help'], 2, /foureyes status: unknown option --help/],
    [['status'], 2, /usage: foureyes status <owner\/repo#number>/],
    [['gateway', '--help'], 0, /usage: foureyes gateway/],
    [['worker', '--help'], 0, /usage: foureyes worker <orchestrator\|checks\|deploy/],
    [['bundle', '--help'], 0, /usage: foureyes bundle/],
    [['approve', '--help'], 0, /usage: foureyes approve/],
    [['rollback', '--help'], 0, /usage: foureyes rollback/],
    [['emergency', '--help'], 0, /usage: foureyes emergency/],
    [['environments', '--help'], 0, /usage: foureyes environments/],
    [['verify-audit'], 2, /usage: foureyes verify-audit/],
  ])('runs `foureyes %s`', (args, code, output) => {
    const result = foureyes(...args);
    expect(result.output).toMatch(output);
    expect(result.output).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find module|\n\s+at /);
    expect(result.code).toBe(code);
  });

  it.each([['up'], ['setup', 'github'], ['tools'], ['sandbox', 'show'], ['up', '--help']])(
    'says `foureyes %s` is a development command',
    (...args) => {
      const result = foureyes(...args);
      expect(result.output.trim()).toBe(
        `foureyes ${args[0]}: ${args[0]} is a development command; it is not in the production image — run it from a checkout`,
      );
      expect(result.code).toBe(1);
    },
  );

  it('runs the gateway and the orchestrator worker, which stop on SIGTERM with exit 0', async () => {
    const port = await freePort();
    const gateway = startFoureyes(
      ['gateway'],
      {
        FOUREYES_APPROVAL_SIGNING_KEY: generateSigningKey().privateKey,
        GITHUB_WEBHOOK_SECRET: 'image-test-secret',
        FOUREYES_DATA: join(image, '.foureyes'),
        PORT: String(port),
      },
      image,
    );
    const metricsPort = await freePort();
    const worker = startFoureyes(
      ['worker', 'orchestrator'],
      {
        FOUREYES_TASK_QUEUE: uniqueQueue('image'),
        FOUREYES_WORKFLOW_BUNDLE: inject('workflowBundle'),
        FOUREYES_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
        FOUREYES_DATA: join(image, '.foureyes'),
      },
      image,
    );
    await untilHealthy(`http://127.0.0.1:${port}`, gateway);
    const deadline = Date.now() + 60_000;
    while (
      !(await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(
        async (r) => /temporal_num_pollers/.test(await r.text()),
        () => false,
      ))
    ) {
      if (Date.now() > deadline || worker.child.exitCode !== null)
        throw new Error(`the worker did not poll:\n${worker.output()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    gateway.child.kill('SIGTERM');
    worker.child.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
    expect(await worker.exited).toBe(0);
  });
});

// What `node --import tsx` would load from an entry point: every relative import, static or import(), of
// type or value. Only src/cli/commands.ts may name src/dev (behind the existence check that prints the
// message above).
function reachable(entries: string[]): Map<string, string> {
  const from = new Map<string, string>(entries.map((e) => [resolve(root, e), '(entry)']));
  const queue = [...from.keys()];
  for (let file = queue.shift(); file; file = queue.shift()) {
    const text = readFileSync(file, 'utf8');
    for (const [, spec] of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)'(\.{1,2}\/[^']+)'/gm)) {
      const target = resolve(dirname(file), spec as string);
      if (from.has(target)) continue;
      from.set(target, file);
      if (relative(root, file) === 'src/cli/commands.ts' && relative(root, target).startsWith('src/dev/')) continue;
      queue.push(target);
    }
  }
  return from;
}

describe('production entry points', () => {
  it('reach nothing under src/dev', () => {
    const graph = reachable([
      'src/gateway/main.ts',
      'src/workers/orchestrator.ts',
      'src/workers/checks.ts',
      'src/workers/deployer.ts',
      'src/cli/main.ts',
    ]);
    expect(graph.size).toBeGreaterThan(50);
    const intoDev = [...graph]
      .filter(([target]) => relative(root, target).startsWith('src/dev/'))
      .map(([target, by]) => `${relative(root, by)} -> ${relative(root, target)}`);
    expect(intoDev.sort()).toEqual([
      'src/cli/commands.ts -> src/dev/cli/sandbox.ts',
      'src/cli/commands.ts -> src/dev/cli/setup-github.ts',
      'src/cli/commands.ts -> src/dev/cli/tools.ts',
      'src/cli/commands.ts -> src/dev/cli/up.ts',
    ]);
  });
});
