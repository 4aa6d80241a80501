// A pull request whose check probes its surroundings, run by a real checks worker process (its environ is
// what `foureyes up` gives it) next to a real Temporal server and a real OpenBao: every escape the issue
// lists is tried, and each must find the door closed while the check still passes or fails on its merits.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startOpenBao, type OpenBaoServer } from '../../src/dev/openbao.ts';
import type { ChecksReport } from '../../src/shared/types.ts';

const root = mkdtempSync(join(tmpdir(), 'foureyes-sbx-test-'));
const remote = join(root, 'remote');
const data = join(root, 'data');
const configFile = join(root, 'foureyes.yaml');
const mark = `${process.pid}${Date.now() % 100000}`;
let bao: OpenBaoServer | undefined;
let victim: string;
let sha: string;

function git(...args: string[]): string {
  return execFileSync('git', args, {
    cwd: remote,
    env: {
      PATH: process.env.PATH,
      HOME: remote,
      GIT_AUTHOR_NAME: 'Mallory',
      GIT_AUTHOR_EMAIL: 'm@example.com',
      GIT_COMMITTER_NAME: 'Mallory',
      GIT_COMMITTER_EMAIL: 'm@example.com',
    },
  })
    .toString()
    .trim();
}

/** Processes on this machine whose command line contains `needle` (zombies count as gone). */
function processesWith(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').includes(needle))
        found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function connectProbe(label: string, address: string): string {
  const url = new URL(address.includes('://') ? address : `tcp://${address}`);
  const js = `const s=require('net').connect(${Number(url.port)},'${url.hostname}');s.on('connect',()=>{console.log('${label}: connected');process.exit(0)});s.on('error',e=>{console.log('${label}: '+e.code);process.exit(0)});setTimeout(()=>{console.log('${label}: timeout');process.exit(0)},3000)`;
  return `node -e "${js}"`;
}

beforeAll(async () => {
  bao = await startOpenBao();
  mkdirSync(join(data, 'keys'), { recursive: true });
  writeFileSync(join(data, 'keys', 'gateway-approval.key'), 'PRIVATE-KEY-MATERIAL\n');
  // Another change's working copy, as the worker lays them out.
  victim = mkdtempSync(join(tmpdir(), 'foureyes-checks-'));
  mkdirSync(join(victim, 'src'));
  writeFileSync(join(victim, 'src', 'app.txt'), 'honest\n');

  mkdirSync(remote);
  git('init', '-q', '-b', 'main');
  writeFileSync(
    join(remote, 'probe.sh'),
    [
      'echo "uid=$(id -u)"',
      'echo "visible-processes=$(ls /proc | grep -c "^[0-9]")"',
      // The worker's environment, through any /proc/<pid>/environ this check can read.
      'found=$(for f in /proc/[0-9]*/environ; do { tr "\\0" "\\n" < "$f"; } 2>/dev/null; done | grep -m1 "^FOUREYES_DATA=" | cut -d= -f2-)',
      'echo "data-folder=$found"',
      '[ -n "$found" ] && echo "keys: $(ls "$found/keys" 2>&1)"',
      'cfg=$(for f in /proc/[0-9]*/environ; do { tr "\\0" "\\n" < "$f"; } 2>/dev/null; done | grep -m1 "^FOUREYES_CONFIG=" | cut -d= -f2-)',
      '[ -n "$cfg" ] && grep -h "config-marker" "$cfg"',
      `cat ${configFile} 2>/dev/null | grep config-marker`,
      `ls ${join(data, 'keys')} 2>&1 | sed "s/^/direct-keys: /"`,
      connectProbe('temporal', inject('temporalAddress')),
      connectProbe('openbao', bao.address),
      // Another change's checkout.
      'for d in /tmp/foureyes-checks-*/src; do [ -d "$d" ] && echo pwned >> "$d/app.txt" && echo "wrote into $d"; done',
      // A process that outlives the check.
      `setsid sleep 900.${mark} > /dev/null 2>&1 < /dev/null &`,
      'echo "probe done"',
      'exit 0',
    ].join('\n'),
  );
  git('add', '.');
  git('commit', '-q', '-m', 'innocent change');
  sha = git('rev-parse', 'HEAD');
  writeFileSync(
    configFile,
    `# config-marker: the trusted configuration
environments: [{ name: staging, deploy: { run: "true" } }]
repositories:
  - name: acme/shop
    remote: ${JSON.stringify(remote)}
    checks:
      - { name: probe, run: "sh probe.sh" }
      - { name: honest-failure, run: "echo failing on its merits; exit 4" }
`,
  );
}, 60_000);

afterAll(async () => {
  for (const pid of processesWith(`sleep 900.${mark}`)) process.kill(pid, 'SIGKILL');
  await bao?.process.stop();
  rmSync(root, { recursive: true, force: true });
  rmSync(victim, { recursive: true, force: true });
});

/** Runs the checks in a worker process holding what a careless deployment would give it. */
async function runInWorker(): Promise<ChecksReport> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'checks-worker.ts'), 'acme/shop#7', sha],
    {
      env: {
        PATH: process.env.PATH,
        HOME: root,
        FOUREYES_DATA: data,
        FOUREYES_CONFIG: configFile,
        VAULT_SECRET_ID: 'secret-id-of-the-deployer',
        TEMPORAL_ADDRESS: inject('temporalAddress'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`checks worker exited ${code}: ${err.slice(-2000)}`);
  return JSON.parse(out.trim().split('\n').pop() as string) as ChecksReport;
}

describe('a check that attacks its checks worker', () => {
  it('finds every escape closed and still passes or fails on its own merits', async () => {
    const report = await runInWorker();
    const [probe, failing] = report.results;
    const out = probe?.outputTail ?? '';
    console.log(`probe output:\n${out}`);
    expect(out).toContain('probe done');
    expect(probe).toMatchObject({ passed: true, exitCode: 0 });
    expect(failing).toMatchObject({ passed: false, exitCode: 4, outputTail: 'failing on its merits\n' });

    // Its own unprivileged uid, its own pid namespace.
    const uid = Number(/^uid=(\d+)$/m.exec(out)?.[1]);
    expect.soft(uid).not.toBe(0);
    expect.soft(uid).not.toBe(process.getuid?.());
    expect.soft(Number(/^visible-processes=(\d+)$/m.exec(out)?.[1])).toBeLessThan(10);
    // Nothing of the worker's environment, data folder or configuration.
    expect.soft(out).toMatch(/^data-folder=$/m);
    expect.soft(out).not.toContain('gateway-approval.key');
    expect.soft(out).not.toContain('config-marker');
    // No network: neither Temporal nor OpenBao answers.
    expect.soft(out).toMatch(/^temporal: (?!connected)/m);
    expect.soft(out).toMatch(/^openbao: (?!connected)/m);
    // Another change's checkout is out of reach.
    expect.soft(out).not.toContain('wrote into');
    expect.soft(readFileSync(join(victim, 'src', 'app.txt'), 'utf8')).toBe('honest\n');
    // Nothing it started outlives it.
    expect.soft(processesWith(`sleep 900.${mark}`)).toEqual([]);
  });
});
