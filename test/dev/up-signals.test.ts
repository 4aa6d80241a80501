// `foureyes up` interrupted as people interrupt it: Ctrl-C (SIGINT) in each start-up phase and after it is
// up, SIGKILL of `up` itself, an orphan of an earlier start on the same data folder, a foreign process on a
// port. After each: no process it started is left (every descendant, and whatever holds one of its ports),
// the ports are free, and the next start works.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/dev/paths.ts';
import { startTemporalServer } from '../../src/dev/temporal-server.ts';
import { freePort } from '../../src/dev/process.ts';
import { freeUpPorts, startUp, upTree, type UpProcess } from '../helpers/foureyes-up.ts';
import { alive, heldPorts, survivors } from '../helpers/processes.ts';

const work = mkdtempSync(join(tmpdir(), 'foureyes-up-signals-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const configFile = join(projectRoot(), 'foureyes.example.yaml');
// A webhook secret keeps offline mode (the in-process GitHub stand-in) out of these tests.
const env = { GITHUB_WEBHOOK_SECRET: 'up-signals-webhook-secret' };
let n = 0;
const freshDir = () => join(work, `data-${++n}`);

/** Everything `up` started, collected until it exits (a child started late is seen too). */
function watchTree(up: UpProcess): Set<number> {
  const seen = new Set<number>();
  const collect = () => {
    if (up.child.exitCode === null) for (const pid of upTree(up)) seen.add(pid);
  };
  collect();
  const timer = setInterval(collect, 50);
  void up.exited.then(() => clearInterval(timer));
  return seen;
}

async function expectNothingLeft(pids: Iterable<number>, ports: number[]): Promise<void> {
  expect(await survivors([...pids], 5000)).toEqual([]);
  expect(heldPorts(ports)).toEqual([]);
}

const phases: Array<{ phase: string; line: string; children: RegExp }> = [
  { phase: 'while Temporal starts', line: 'starting Temporal dev server', children: /stopping (temporal|nothing)/ },
  { phase: 'while OpenBao starts', line: 'starting OpenBao dev server', children: /stopping (openbao, )?temporal/ },
  { phase: 'during the OpenBao bootstrap', line: 'bootstrapping OpenBao', children: /stopping openbao, temporal/ },
  {
    phase: 'while the workers start',
    line: 'waiting for the workers',
    children:
      /stopping gateway, worker:deploy-production, worker:deploy-staging, worker:checks, worker:orchestrator, openbao, temporal/,
  },
];

describe('foureyes up, interrupted', () => {
  for (const { phase, line, children } of phases) {
    it(`Ctrl-C ${phase}: stops what it started, exits non-zero, leaves nothing; the next start works`, async () => {
      const dataDir = freshDir();
      const up = await startUp({ dataDir, configFile, env, waitFor: 'started' });
      const tree = watchTree(up);
      await up.waitFor(line);
      const sent = Date.now();
      up.child.kill('SIGINT');
      const code = await up.exited;
      const took = Date.now() - sent;
      console.log(`[timing] SIGINT ${phase}: clean exit after ${took} ms`);
      expect(code).toBe(130);
      expect(up.output()).toMatch(/SIGINT received during start-up; stopping/);
      expect(up.output()).toMatch(children);
      expect(up.output()).toContain('foureyes: stopped');
      expect(up.output()).not.toMatch(/\n\s+at /);
      expect(took).toBeLessThan(20_000);
      await expectNothingLeft(tree, Object.values(up.ports));

      // The same ports, the same data folder: it comes up.
      const again = await startUp({ dataDir, configFile, env, ports: up.ports });
      const againTree = watchTree(again);
      expect(await again.stop()).toBe(0);
      await expectNothingLeft(againTree, Object.values(up.ports));
    }, 300_000);
  }

  it('Ctrl-C after it is up: stops everything and exits 0; the console holds no SDK chatter, the logs do', async () => {
    const dataDir = freshDir();
    const up = await startUp({ dataDir, configFile, env });
    const tree = watchTree(up);
    expect(up.output()).not.toContain('Worker state changed');
    expect(up.output()).toContain(`logs             ${join(dataDir, 'logs')}`);
    expect(readFileSync(join(dataDir, 'logs', 'worker-orchestrator.log'), 'utf8')).toContain('Worker state changed');
    const sent = Date.now();
    expect(await up.stop()).toBe(0);
    console.log(`[timing] SIGINT after up: clean exit after ${Date.now() - sent} ms`);
    expect(up.output()).toMatch(
      /stopping gateway, worker:deploy-production, worker:deploy-staging, worker:checks, worker:orchestrator, openbao, temporal/,
    );
    await expectNothingLeft(tree, Object.values(up.ports));
    // Pid files go with their processes.
    expect(readdirSync(join(dataDir, 'pids'))).toEqual([]);
  }, 300_000);

  it('SIGKILL of foureyes up while the workers start: its children are gone within a few seconds', async () => {
    const dataDir = freshDir();
    const up = await startUp({ dataDir, configFile, env, waitFor: 'started' });
    const tree = watchTree(up);
    await up.waitFor('waiting for the workers');
    const children = upTree(up).filter((pid) => pid !== up.child.pid);
    expect(children.length).toBeGreaterThanOrEqual(5);
    const sent = Date.now();
    up.child.kill('SIGKILL');
    await up.exited;
    await expectNothingLeft(tree, Object.values(up.ports));
    console.log(`[timing] SIGKILL of up: children gone after ${Date.now() - sent} ms`);
  }, 300_000);

  it('an orphaned Temporal of an earlier start on the same data folder is stopped, with a message, and the stack comes up', async () => {
    const dataDir = freshDir();
    const temporalPorts = { temporal: await freePort(), ui: await freePort() };
    // What a crash that took the watchdogs too leaves: the pid file and a running Temporal on the port. Started
    // here rather than by SIGKILLing an `up` and its watchdogs: that orphan loses the reader of its output and
    // may die at its next log line (it did under load), leaving the test nothing to clean up.
    mkdirSync(join(dataDir, 'pids'), { recursive: true });
    const orphan = await startTemporalServer({
      dataDir,
      port: temporalPorts.temporal,
      uiPort: temporalPorts.ui,
      logFile: join(dataDir, 'orphan-temporal.log'),
      pidFile: join(dataDir, 'pids', 'temporal.pid'),
    });
    const temporalPid = orphan.process.child.pid as number;
    expect(alive(temporalPid)).toBe(true);
    // The other ports are picked once the orphan holds its own internal ones, so none of them can be among these.
    const ports = { ...temporalPorts, bao: await freePort(), gateway: await freePort() };

    const second = await startUp({ dataDir, configFile, env, ports });
    expect(second.output()).toMatch(
      new RegExp(
        `stopped temporal \\(pid ${temporalPid}\\), left running by an earlier start on ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
      ),
    );
    expect(alive(temporalPid)).toBe(false);
    const tree = watchTree(second);
    expect(await second.stop()).toBe(0);
    await expectNothingLeft(tree, Object.values(ports));
  }, 300_000);

  it('a foreign process on the gateway port: start-up refuses in one line naming the port, the holder and the variable, and starts nothing', async () => {
    const ports = await freeUpPorts();
    const foreign = createServer();
    await new Promise<void>((resolve) => foreign.listen(ports.gateway, '127.0.0.1', resolve));
    try {
      const up = await startUp({ dataDir: freshDir(), configFile, env, ports, waitFor: 'exit', timeoutMs: 60_000 });
      expect(up.child.exitCode).toBe(1);
      expect(up.output()).toContain(`foureyes up: port ${ports.gateway} (gateway) is in use by pid ${process.pid} (`);
      expect(up.output()).toContain('set PORT to a free port');
      expect(up.output()).not.toContain('starting Temporal');
      expect(up.output()).not.toMatch(/\n\s+at /);
    } finally {
      foreign.close();
    }
  }, 120_000);

  it('a server that takes the gateway port after the preflight and answers every path (a Temporal UI): start-up names the port instead of reporting a gateway that is not there', async () => {
    const ports = await freeUpPorts();
    const page = createHttpServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>Temporal</title>');
    });
    const up = await startUp({ dataDir: freshDir(), configFile, env, ports, waitFor: 'started' });
    try {
      await up.waitFor('bootstrapping OpenBao', 60_000);
      await new Promise<void>((resolve) => page.listen(ports.gateway, '127.0.0.1', resolve));
      while (up.child.exitCode === null && !up.output().includes('foureyes is up.'))
        await new Promise((r) => setTimeout(r, 100));
      expect(up.output()).not.toContain('foureyes is up.');
      expect(await up.exited).toBe(1);
      expect(up.output()).toContain(`foureyes up: port ${ports.gateway} (gateway) is in use by pid ${process.pid} (`);
    } finally {
      await up.stop();
      page.close();
    }
  }, 180_000);

  it('two servers given one port (the Temporal UI and OpenBao): start-up refuses in one line naming both variables, and starts nothing', async () => {
    const free = await freeUpPorts();
    const ports = { ...free, bao: free.ui };
    const up = await startUp({ dataDir: freshDir(), configFile, env, ports, waitFor: 'exit', timeoutMs: 60_000 });
    expect(up.child.exitCode).toBe(1);
    expect(up.output()).toContain(
      `foureyes up: FOUREYES_UI_PORT and FOUREYES_BAO_PORT both name port ${free.ui} (Temporal UI and OpenBao); give each its own port`,
    );
    expect(up.output()).not.toContain('starting Temporal');
  }, 120_000);
});
