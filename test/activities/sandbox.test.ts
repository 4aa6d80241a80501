// The sandbox runner itself (real bubblewrap): it dies with its worker, caps a fork bomb, and a worker
// without a usable sandbox refuses to start with what to install or change.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertSandboxWorks, runSandboxed } from '../../src/activities/sandbox.ts';

const root = mkdtempSync(join(tmpdir(), 'foureyes-sandbox-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const mark = `${process.pid % 10000}${Date.now() % 1000}`;

function processesWith(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').includes(needle))
        out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

async function until(what: string, probe: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const checkouts: string[] = [];
/** A working copy laid out as the workers lay them out: `<private temporary folder>/src`. */
function checkout(): string {
  const parent = mkdtempSync(join(tmpdir(), 'foureyes-sandbox-wc-'));
  checkouts.push(parent);
  mkdirSync(join(parent, 'src'));
  return join(parent, 'src');
}
afterAll(() => {
  for (const dir of checkouts) rmSync(dir, { recursive: true, force: true });
});

describe('the sandbox runner', () => {
  it('dies as a whole with its worker process, a process in a new session included', async () => {
    const worker = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, 'fixtures', 'sandbox-worker.ts'),
        `setsid sleep 77.${mark} & sleep 78.${mark}`,
      ],
      { stdio: 'ignore', env: { PATH: process.env.PATH } },
    );
    await until(
      'both sleeps to run',
      () => processesWith(`sleep 77.${mark}`).length === 1 && processesWith(`sleep 78.${mark}`).length === 1,
      30_000,
    );
    worker.kill('SIGKILL');
    await until(
      'the sandbox to die with its worker',
      () => processesWith(`.${mark}`).filter((p) => p !== worker.pid).length === 0,
      5_000,
    );
  });

  it('stops a fork bomb at the process cap and the command still ends on its own terms', async () => {
    const bomb = `sleep 3.${mark}9`;
    let peak = 0;
    const watch = setInterval(() => (peak = Math.max(peak, processesWith(bomb).length)), 50);
    const result = await runSandboxed({
      // Forks until the cap refuses, then waits (builtins only) until it may fork again, and ends.
      run: `( i=0; while [ $i -lt 300 ]; do ${bomb} & i=$((i+1)); done ) 2>/dev/null; until sleep 0.1 2>/dev/null; do :; done; echo survived; exit 5`,
      checkout: checkout(),
      env: {},
      network: false,
      timeoutMs: 30_000,
      tailChars: 2000,
      maxProcesses: 64,
    }).finally(() => clearInterval(watch));
    expect(peak).toBeGreaterThan(10);
    expect(peak).toBeLessThanOrEqual(64);
    expect(result.output).toContain('survived');
    expect(result.exitCode).toBe(5);
    expect(processesWith(bomb)).toEqual([]);
  });

  it('a command that ends at once is reported at once, with its output (no wait for a close that already came)', async () => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const result = await runSandboxed({
        run: 'echo ready',
        checkout: checkout(),
        env: {},
        network: false,
        timeoutMs: 30_000,
        tailChars: 2000,
      });
      times.push(Date.now() - started);
      expect(result.exitCode).toBe(0);
      expect(result.output).toContain('ready');
    }
    // Each check and deploy step used to wait out a 2 s grace after its command had ended.
    expect(Math.min(...times)).toBeLessThan(1000);
  });

  it('network is off by default and on when asked for', async () => {
    const run = `node -e "require('dns').lookup('localhost',()=>{});const s=require('net').connect(9,'127.0.0.1');s.on('error',e=>{console.log(e.code)});s.on('connect',()=>console.log('open'))"; ip -o link 2>/dev/null | wc -l`;
    const off = await runSandboxed({
      run,
      checkout: checkout(),
      env: {},
      network: false,
      timeoutMs: 30_000,
      tailChars: 2000,
    });
    const on = await runSandboxed({
      run,
      checkout: checkout(),
      env: {},
      network: true,
      timeoutMs: 30_000,
      tailChars: 2000,
    });
    // Loopback only inside its own network namespace; with network, the host's interfaces.
    expect(off.output).toMatch(/^1$/m);
    expect(Number(/^(\d+)$/m.exec(on.output)?.[1])).toBeGreaterThan(1);
  });

  it('a worker without bubblewrap refuses to start and says what to install or set', () => {
    expect(() => assertSandboxWorks({ FOUREYES_BWRAP_BIN: join(root, 'no-bwrap') })).toThrow(
      /bubblewrap \(bwrap\) is not installed.*apt-get install bubblewrap.*FOUREYES_UNSAFE_NO_SANDBOX=1/,
    );
    expect(() =>
      assertSandboxWorks({ FOUREYES_BWRAP_BIN: join(root, 'no-bwrap'), FOUREYES_UNSAFE_NO_SANDBOX: '1' }),
    ).not.toThrow();
    expect(() => assertSandboxWorks({})).not.toThrow();
  });
});

describe('a command printing its leased secret in other forms', () => {
  it('a PEM key printed whole, base64-encoded (wrapped) and URL-encoded never reaches the output', async () => {
    const key = [
      '-----BEGIN PRIVATE KEY-----',
      'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj',
      'MZR5tPx0Q2rwPP4e1n6V4k6ZbW9Y8W3a0p3e2sFq1t9h0b2m3n4o5p6q7r8s9t0u',
      '-----END PRIVATE KEY-----',
    ].join('\n');
    const lines: string[] = [];
    const result = await runSandboxed({
      run: `printf '%s\\n' "$KEY"; printf '%s' "$KEY" | base64; printf '%s' "$KEY" | base64 -w0; echo; node -e 'console.log(encodeURIComponent(process.env.KEY))'; echo "remote https://deployer:tok3n@git.example.com/x.git"`,
      checkout: checkout(),
      env: { KEY: key },
      network: false,
      timeoutMs: 30_000,
      tailChars: 10_000,
      secrets: [key],
      onLine: (l) => lines.push(l),
    });
    expect(result.exitCode).toBe(0);
    for (const out of [result.output, lines.join('\n')]) {
      expect(out).not.toContain('MIIEvQIBADANBgkq');
      expect(out).not.toContain('MZR5tPx0Q2rwPP4e');
      expect(out).not.toContain(Buffer.from(key).toString('base64').slice(0, 24));
      expect(out).not.toContain('tok3n');
      expect(out).toContain('https://[redacted]@git.example.com/x.git');
    }
  });
});
