// `foureyes audit --repo … --format csv` as an auditor runs it: a separate process against the test's
// Temporal, over changes that ran through the real workflow. One row per change, read back with a strict
// RFC 4180 parser; the control mapping of the same changes, re-derivable by `verify-audit --rederive`.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CSV_HEADER } from '../../src/audit/csv.ts';
import { sealRecord } from '../../src/audit/document.ts';
import { changesInPeriod, exportChange } from '../../src/audit/export.ts';
import { projectRoot } from '../../src/dev/paths.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import {
  approve,
  claim,
  close,
  commit,
  newChange,
  openChange,
  opened,
  push,
  pushed,
  result,
  sha,
  startStack,
  waitForStatus,
  type Stack,
} from '../workflows/harness.ts';
import { parseCsv } from './csv-parse.ts';

// A repository of its own: the period query must see exactly this file's changes.
const repo = `acme-csv/ledger${randomBytes(3).toString('hex')}`;
const work = mkdtempSync(join(tmpdir(), 'foureyes-audit-csv-'));
const auditKey = generateSigningKey();
const run = promisify(execFile);
const hostileTitle = '=HYPERLINK("http://evil.example","open"), "urgent"\nfix';
let stack: Stack;
let startedAt: Date;

beforeAll(async () => {
  startedAt = new Date(Date.now() - 1000);
  stack = await startStack({
    repositories: [`{ name: ${repo}, remote: /nonexistent, environments: [dual], merge: true }`],
  });
});
afterAll(async () => {
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** The foureyes CLI as a separate process against the test's Temporal. */
async function foureyes(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: work,
    FOUREYES_DATA: join(work, 'data'),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: inject('temporalNamespace'),
  };
  return run(process.execPath, [join(projectRoot(), 'bin/foureyes.js'), ...args], { env }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );
}

const col = (row: string[] | undefined, name: (typeof CSV_HEADER)[number]) => row?.[CSV_HEADER.indexOf(name)];

describe('audit CSV of a repository over a period', () => {
  const changes = { delivered: '', selfApproved: '', unapproved: '' };
  let selfFinding = '';

  it('one row per change with its initiators, approvers and whether duties were segregated', async () => {
    // Delivered: written by sam-dev, committed by lee-ops, co-authored by pat-peer; approved by two others.
    changes.delivered = newChange(repo);
    const head = sha();
    const event = {
      ...opened(head, 'sam-dev', [
        commit(
          head,
          { login: 'sam-dev', email: 'sam@example.com' },
          { login: 'lee-ops', email: 'lee@example.com' },
          'Ledger export\n\nCo-authored-by: Pat Peer <pat@example.com>',
        ),
      ]),
      title: hostileTitle,
    };
    const a = await openChange(stack, changes.delivered, event);
    await waitForStatus(a, (s) => s.stage === 'awaiting-approval');
    expect((await approve(stack, a, claim(changes.delivered, head, 'alex-reviewer'))).counted).toBe(true);
    expect((await approve(stack, a, claim(changes.delivered, head, 'kim-qa'))).counted).toBe(true);
    expect(await result(a)).toMatchObject({ outcome: 'delivered' });

    // An approver who then pushes becomes an initiator: the record finds it, the row says "no".
    changes.selfApproved = newChange(repo);
    const first = sha();
    const b = await openChange(stack, changes.selfApproved, opened(first));
    await waitForStatus(b, (s) => s.stage === 'awaiting-approval');
    expect((await approve(stack, b, claim(changes.selfApproved, first, 'alex-reviewer'))).counted).toBe(true);
    const second = sha();
    await push(
      stack,
      b,
      pushed(first, second, 'alex-reviewer', [commit(second, { login: 'alex-reviewer', email: 'alex@example.com' })]),
    );
    await waitForStatus(b, (s) => s.headSha === second && s.stage === 'awaiting-approval');
    const c7 = second.slice(0, 7);
    selfFinding = `alex-reviewer both initiated (author of commit ${c7}, committer of commit ${c7}, pusher) and approved`;
    await close(stack, b);
    await result(b);

    // Never approved, closed.
    changes.unapproved = newChange(repo);
    const c = await openChange(stack, changes.unapproved, opened(sha()));
    await waitForStatus(c, (s) => s.stage === 'awaiting-approval');
    await close(stack, c);
    await result(c);

    // Visibility is eventually consistent: wait until the period lists all three.
    for (let i = 0; i < 100 && (await changesInPeriod(stack.client, repo, startedAt)).length < 3; i++)
      await new Promise((r) => setTimeout(r, 200));

    const out = await foureyes('audit', '--repo', repo, '--since', startedAt.toISOString(), '--format', 'csv');
    expect(out.code).toBe(0);
    // Progress and the closing count stay on stderr; stdout is only the table.
    expect(out.stderr).toContain(`3 change(s) of ${repo} in the period`);
    expect(out.stderr).toContain('exported 3 change(s)');
    const [header, ...rows] = parseCsv(out.stdout);
    expect(header).toEqual([...CSV_HEADER]);
    expect(rows).toHaveLength(3);
    const byChange = new Map(rows.map((r) => [col(r, 'change'), r]));
    expect([...byChange.keys()].sort()).toEqual(Object.values(changes).sort());

    const delivered = byChange.get(changes.delivered);
    // The attacker-controlled title reads back whole, defused so a spreadsheet shows it as text.
    expect(col(delivered, 'title')).toBe(`'${hostileTitle}`);
    expect(col(delivered, 'author')).toBe('sam-dev');
    expect(col(delivered, 'initiators')).toBe('lee-ops; pat-peer; sam-dev');
    expect(col(delivered, 'approvers')).toBe('alex-reviewer; kim-qa');
    expect(col(delivered, 'approval times')).toMatch(
      new RegExp(
        `^alex-reviewer approve ${head.slice(0, 7)} at \\S+Z \\(dual\\); kim-qa approve ${head.slice(0, 7)} at \\S+Z \\(dual\\)$`,
      ),
    );
    expect(col(delivered, 'checks result')).toBe(`passed at ${head.slice(0, 7)}`);
    expect(col(delivered, 'environments deployed')).toMatch(new RegExp(`^dual deployed ${head.slice(0, 7)} at \\S+Z$`));
    expect(col(delivered, 'segregated')).toBe('yes');
    expect(col(delivered, 'findings')).toBe('');
    expect(col(delivered, 'runs')?.split('; ')).toHaveLength(1);

    const self = byChange.get(changes.selfApproved);
    expect(col(self, 'initiators')).toBe('alex-reviewer; sam-dev');
    expect(col(self, 'approvers')).toBe('alex-reviewer');
    expect(col(self, 'segregated')).toBe('no');
    expect(col(self, 'findings')).toBe(selfFinding);

    const unapproved = byChange.get(changes.unapproved);
    expect(col(unapproved, 'approvers')).toBe('');
    expect(col(unapproved, 'environments deployed')).toBe('');
    expect(col(unapproved, 'segregated')).toBe('yes');

    // One change on its own: the header and its one row, the same row as in the period's table.
    const single = await foureyes('audit', changes.delivered, '--format', 'csv');
    expect(single.code).toBe(0);
    expect(parseCsv(single.stdout)).toEqual([header, delivered]);

    if (process.env.FOUREYES_WRITE_AUDIT_SAMPLES) {
      const dir = process.env.FOUREYES_WRITE_AUDIT_SAMPLES;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'period.csv'), out.stdout);
      writeFileSync(join(dir, 'delivered.md'), (await foureyes('audit', changes.delivered)).stdout);
      writeFileSync(join(dir, 'self-approved.md'), (await foureyes('audit', changes.selfApproved)).stdout);
    }
  });

  it('maps the controls from history, and verify-audit --rederive holds them to it', async () => {
    const delivered = await exportChange(stack.client, changes.delivered, { signingKey: auditKey.privateKey });
    const status = (doc: typeof delivered, id: string) => doc.controls?.find((c) => c.id === id);
    expect(status(delivered, 'A.5.3')?.status).toBe('met');
    expect(status(delivered, '6.5.1 (back-out)')?.status).toBe('met');
    // Deployed by its environment's own deployer (`<queue>-deploy-<env>`): in the deploy zone.
    expect(status(delivered, '6.5.4')).toMatchObject({ status: 'met' });
    expect(status(delivered, 'CC8.1')?.status).toBe('met');

    const self = await exportChange(stack.client, changes.selfApproved, { signingKey: auditKey.privateKey });
    expect(status(self, 'A.5.3')).toMatchObject({
      status: 'not met',
      reason: selfFinding,
    });
    expect(status(self, '6.5.1 (approval)')).toMatchObject({ status: 'not met' });
    const md = (await foureyes('audit', changes.selfApproved)).stdout;
    expect(md).toContain('| ISO/IEC 27001:2022 | A.5.3 Segregation of duties | **not met** |');

    const honest = join(work, 'self.json');
    writeFileSync(honest, JSON.stringify(self));
    const ok = await foureyes('verify-audit', honest, '--rederive', '--public-key', auditKey.publicKey);
    expect(ok.stdout).toContain('identical to the record re-derived from Temporal history');
    expect(ok.code).toBe(0);

    // An insider with the signing key re-seals the file with A.5.3 marked met: only history shows it.
    const forged = sealRecord(
      {
        summary: self.summary,
        entries: self.entries.map(({ at, kind, summary, data }) => ({ at, kind, summary, data })),
        controls: self.controls?.map((c) => (c.id === 'A.5.3' ? { ...c, status: 'met' as const } : c)),
      },
      { workflowId: self.workflowId, namespace: self.namespace, generatedAt: self.generatedAt },
      auditKey.privateKey,
    );
    const file = join(work, 'forged.json');
    writeFileSync(file, JSON.stringify(forged));
    const bad = await foureyes('verify-audit', file, '--rederive', '--public-key', auditKey.publicKey);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('controls: ISO/IEC 27001:2022 A.5.3 differs from history: file says "met"');
  });
});
