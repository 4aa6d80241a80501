// runChecks against a real local git repository, as the checks worker runs it (activity environment).
import { MockActivityEnvironment } from '@temporalio/testing';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChecksActivities } from '../../src/activities/checks.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ChecksReport } from '../../src/shared/types.ts';

let remote: string;
let firstSha: string;
let headSha: string;

function git(...args: string[]): string {
  return execFileSync('git', args, {
    cwd: remote,
    env: {
      PATH: process.env.PATH,
      HOME: remote,
      GIT_AUTHOR_NAME: 'Sam',
      GIT_AUTHOR_EMAIL: 'sam@example.com',
      GIT_COMMITTER_NAME: 'Sam',
      GIT_COMMITTER_EMAIL: 'sam@example.com',
    },
  })
    .toString()
    .trim();
}

beforeAll(() => {
  remote = mkdtempSync(join(tmpdir(), 'foureyes-remote-'));
  git('init', '-q', '-b', 'main');
  writeFileSync(join(remote, 'version.txt'), 'one\n');
  git('add', '.');
  git('commit', '-q', '-m', 'one');
  firstSha = git('rev-parse', 'HEAD');
  writeFileSync(join(remote, 'version.txt'), 'two\n');
  git('commit', '-q', '-am', 'two');
  headSha = git('rev-parse', 'HEAD');
});
afterAll(() => rmSync(remote, { recursive: true, force: true }));

function activities(checks: string) {
  const config = parseConfig(`
environments: [{ name: staging, deploy: { run: "true" } }]
repositories:
  - name: acme/shop
    remote: ${JSON.stringify(remote)}
    checks: ${checks}
`);
  return createChecksActivities(() => config);
}

/** Running (a zombie waiting for a reaper counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Running processes whose command line contains `needle`. */
function processesWith(needle: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return alive(Number(e)) && readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ').includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const tempDirs = () => readdirSync(tmpdir()).filter((d) => d.startsWith('foureyes-checks-'));
let before: string[] = [];
beforeAll(() => void (before = tempDirs()));
/** Working directories this file's runs left behind. */
const leftBehind = () => tempDirs().filter((d) => !before.includes(d));

describe('runChecks', () => {
  it('checks out exactly the requested SHA and runs each check in a scrubbed environment', async () => {
    process.env.GITHUB_TOKEN = 'ghs_must_not_leak';
    process.env.VAULT_TOKEN = 'hvs.must_not_leak';
    try {
      const { runChecks } = activities(`
      - { name: version, run: "cat version.txt && git rev-parse HEAD" }
      - { name: env, run: "env | sort" }
      - { name: fails, run: "echo boom >&2; exit 3" }`);
      const report: ChecksReport = await new MockActivityEnvironment().run(runChecks, {
        change: 'acme/shop#1',
        sha: firstSha,
      });
      expect(report.sha).toBe(firstSha);
      expect(report.passed).toBe(false);
      const [version, env, fails] = report.results;
      expect(version).toMatchObject({ passed: true, exitCode: 0 });
      expect(version?.outputTail).toBe(`one\n${firstSha}\n`);
      const names = (env?.outputTail ?? '')
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => l.split('=')[0]);
      // sh itself adds PWD (and SHLVL); nothing from the worker's environment beyond PATH, HOME and LANG.
      expect(names.filter((n) => !['PWD', 'OLDPWD', 'SHLVL', '_'].includes(n as string))).toEqual([
        'HOME',
        'LANG',
        'PATH',
      ]);
      expect(env?.outputTail).not.toContain('must_not_leak');
      // Inside the sandbox: a private home under its private /tmp.
      expect(env?.outputTail).toMatch(/^HOME=\/tmp\/home$/m);
      expect(fails).toMatchObject({ passed: false, exitCode: 3, timedOut: false, outputTail: 'boom\n' });
    } finally {
      delete process.env.GITHUB_TOKEN;
      delete process.env.VAULT_TOKEN;
    }
    expect(leftBehind()).toEqual([]);
  });

  it('kills a check that runs past its timeout, with everything it started, and caps its output', async () => {
    const mark = `31.${process.pid}${Date.now() % 1000}`;
    const { runChecks } = activities(`
      - { name: slow, run: "yes line | head -c 100000; sleep ${mark} & setsid sleep ${mark} & sleep 30", timeout: 1, outputLimit: 1000 }`);
    const started = Date.now();
    const report: ChecksReport = await new MockActivityEnvironment().run(runChecks, {
      change: 'acme/shop#1',
      sha: headSha,
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    const [slow] = report.results;
    expect(slow).toMatchObject({ passed: false, timedOut: true });
    expect(slow?.outputTail.length).toBeLessThanOrEqual(1000);
    expect(slow?.outputTail).toContain('timed out');
    // The background processes the check started (one in a new session) went down with its sandbox.
    expect(processesWith(`sleep ${mark}`)).toEqual([]);
  });

  it('stops the running check when the activity is cancelled', async () => {
    const mark = `32.${process.pid}${Date.now() % 1000}`;
    const { runChecks } = activities(`
      - { name: forever, run: "touch started; setsid sleep ${mark} & sleep 30" }`);
    const env = new MockActivityEnvironment();
    const running = env.run(runChecks, { change: 'acme/shop#1', sha: headSha });
    await new Promise((r) => setTimeout(r, 1500));
    env.cancel();
    await expect(running).rejects.toThrow(/cancel/i);
    expect(leftBehind()).toEqual([]);
    expect(processesWith(`sleep ${mark}`)).toEqual([]);
  });

  it('refuses an unknown repository and anything that is not a full SHA', async () => {
    const { runChecks } = activities('[]');
    const env = new MockActivityEnvironment();
    await expect(env.run(runChecks, { change: 'acme/other#1', sha: headSha })).rejects.toThrow(
      'repository acme/other is not configured',
    );
    await expect(env.run(runChecks, { change: 'acme/shop#1', sha: '--upload-pack=evil' })).rejects.toThrow(
      'not a full commit SHA',
    );
    expect(existsSync(remote)).toBe(true);
  });
});
