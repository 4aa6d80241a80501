// The audit of break-glass emergencies, from changes that ran through the real workflow on the test's Temporal:
// the signed declaration in the `emergency` update, the deploys under it, the retroactive review (in time,
// late, overdue), the control SOC 2 CC8.1 (emergency changes), the period export, and a forged memo.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ControlEntry } from '../../src/audit/controls.ts';
import { CSV_HEADER, EMERGENCY_CSV_HEADER, emergencyRows } from '../../src/audit/csv.ts';
import { changesInPeriod, exportChange, exportPeriod } from '../../src/audit/export.ts';
import { fetchAllRuns } from '../../src/audit/history.ts';
import { buildAuditRecord } from '../../src/audit/record.ts';
import { projectRoot } from '../../src/dev/paths.ts';
import { signEmergency, type EmergencyClaim } from '../../src/shared/emergency.ts';
import { emergencyUpdate } from '../../src/workflows/definitions.ts';
import {
  approve,
  claim,
  encodeHistory,
  newChange,
  openChange,
  opened,
  result,
  sha,
  startStack,
  waitForStatus,
  type ChangeHandle,
  type Stack,
} from '../workflows/harness.ts';
import { parseCsv } from './csv-parse.ts';
import { forgeMemo } from './forge-memo.ts';

const repo = `acme-emg/pay${randomBytes(3).toString('hex')}`;
const repositories = [`{ name: ${repo}, remote: /nonexistent, environments: [staging, production], merge: true }`];
let inTime: Stack;
let tight: Stack;
let startedAt: Date;

beforeAll(async () => {
  startedAt = new Date(Date.now() - 1000);
  [inTime, tight] = await Promise.all([
    startStack({ repositories, config: 'emergency: { allowed: [lee-ops], window: 1h, reviewWithin: 2h }' }),
    // The review falls due a few seconds after the declaration; the window ends before it does.
    startStack({ repositories, config: 'emergency: { allowed: [lee-ops], window: 8s, reviewWithin: 10s }' }),
  ]);
});
afterAll(async () => {
  await Promise.all([inTime?.stop(), tight?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

const work = mkdtempSync(join(tmpdir(), 'foureyes-audit-emergency-'));
const exec = promisify(execFile);

/** The foureyes CLI as a separate process against the test's Temporal. */
async function foureyes(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: work,
    FOUREYES_DATA: join(work, 'data'),
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: inject('temporalNamespace'),
  };
  return exec(process.execPath, [join(projectRoot(), 'bin/foureyes.js'), ...args], { env }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );
}

function declaration(change: string, head: string, person = 'lee-ops'): EmergencyClaim {
  return {
    v: 1,
    kind: 'emergency',
    change,
    sha: head,
    person,
    channel: 'cli',
    evidence: { tokenLogin: person },
    reason: 'checkout down: card payments fail',
    at: new Date().toISOString(),
    nonce: randomUUID(),
  };
}

async function declare(stack: Stack, handle: ChangeHandle, c: EmergencyClaim) {
  return handle.executeUpdate(emergencyUpdate, { args: [signEmergency(c, stack.key)] });
}

/** Opens a change of `repo` and declares an emergency for its head once its checks passed. */
async function emergencyChange(stack: Stack) {
  const change = newChange(repo);
  const head = sha();
  const handle = await openChange(stack, change, opened(head));
  await waitForStatus(handle, (s) => s.stage === 'awaiting-approval');
  // Refused first: sam-dev may not declare.
  expect((await declare(stack, handle, declaration(change, head, 'sam-dev'))).taken).toBe(false);
  const outcome = await declare(stack, handle, declaration(change, head));
  expect(outcome).toMatchObject({ taken: true });
  // Both gates open under the emergency, without approval.
  await waitForStatus(handle, (s) => s.emergencies?.[0]?.usedFor.length === 2);
  await waitForStatus(handle, (s) => s.environments.every((e) => e.state === 'deployed'));
  return { change, head, handle };
}

const find = (controls: ControlEntry[] | undefined, id: string) => controls?.find((c) => c.id === id);

describe('audit of emergency changes', () => {
  const changes = { reviewed: '', late: '' };

  it('an emergency reviewed in time: its record, and the emergency control met', async () => {
    const { change, head, handle } = await emergencyChange(inTime);
    changes.reviewed = change;
    expect((await approve(inTime, handle, claim(change, head, 'alex-reviewer'))).counted).toBe(true);
    expect(await result(handle)).toMatchObject({ outcome: 'delivered' });

    const runs = await fetchAllRuns(inTime.client, `change:${change}`);
    if (process.env.FOUREYES_WRITE_HISTORIES === '1') {
      const dir = join(import.meta.dirname, 'histories');
      mkdirSync(dir, { recursive: true });
      const history = await inTime.client.workflow.getHandle(`change:${change}`).fetchHistory();
      writeFileSync(
        join(dir, 'emergency-reviewed.json'),
        encodeHistory(`change:${change}`, runs[0]?.runId ?? '', history),
      );
    }
    const rec = buildAuditRecord(change, runs);
    const [e, ...more] = rec.summary.emergencies ?? [];
    expect(more).toEqual([]);
    expect(e).toMatchObject({
      declaredBy: 'lee-ops',
      reason: 'checkout down: card payments fail',
      channel: 'cli',
      sha: head,
      environments: ['staging', 'production'],
      deployedTo: ['staging', 'production'],
      reviewedBy: 'alex-reviewer',
      state: 'reviewed',
      signature: { verified: true, keyId: inTime.key.publicKey },
      memo: 'matches',
      findings: [],
    });
    expect(Date.parse(e?.reviewDueAt ?? '') - Date.parse(e?.declaredAt ?? '')).toBe(2 * 3_600_000);
    expect(e?.deployedAt).toMatch(/Z$/);
    expect(e?.reviewedAt).toMatch(/Z$/);
    expect(rec.summary.refusedEmergencies).toEqual([
      expect.objectContaining({ person: 'sam-dev', sha: head, reason: expect.stringMatching(/sam-dev/) }),
    ]);
    expect(rec.summary.segregationFindings).toEqual([]);

    const controls = Object.fromEntries((rec.controls ?? []).map((c) => [c.id, c]));
    expect(controls['CC8.1 (emergency changes)']).toMatchObject({ status: 'met' });
    expect(controls['CC8.1 (emergency changes)']?.reason).toMatch(
      new RegExp(
        `^the emergency declared by lee-ops \\(cli\\) at \\S+ for ${head.slice(0, 7)}, deployed to staging, production at \\S+ without prior approval, was reviewed by alex-reviewer at \\S+, within 2h \\(due \\S+\\); alex-reviewer is neither an initiator nor the declarer; 1 emergency declaration\\(s\\) refused: sam-dev \\(`,
      ),
    );
    expect(controls['CC8.1 (emergency changes)']?.evidence.entries.map((x) => x.kind)).toEqual(
      expect.arrayContaining(['emergency-declaration', 'deploy', 'approval-attempt']),
    );
    // The ordinary approval controls do not claim the deploys: they point to the emergency control.
    for (const id of ['A.5.3', '6.5.1 (approval)', 'CC8.1'])
      expect(controls[id]).toMatchObject({
        status: 'not covered',
        reason: `staging at ${head.slice(0, 7)}, production at ${head.slice(0, 7)} went out under the emergency declared by lee-ops, without prior approval: see SOC 2 CC8.1 (emergency changes)`,
      });
    expect(controls['A.8.32']).toMatchObject({ status: 'met' });
    expect(controls['A.8.32']?.reason).toMatch(/^emergency change: the emergency declared by lee-ops/);
    expect(controls['6.5.4']?.reason).toContain('went out under the emergency declared by lee-ops');

    // The period export's emergency rows: the taken one with its review, the refused one.
    const rows = emergencyRows(rec);
    const col = (row: string[] | undefined, name: (typeof EMERGENCY_CSV_HEADER)[number]) =>
      row?.[EMERGENCY_CSV_HEADER.indexOf(name)];
    expect(rows).toHaveLength(2);
    expect(col(rows[0], 'declared by')).toBe('lee-ops');
    expect(col(rows[0], 'reviewed by')).toBe('alex-reviewer');
    expect(col(rows[0], 'reviewed at')).toBe(e?.reviewedAt);
    expect(col(rows[0], 'deployed at')).toBe(e?.deployedAt);
    expect(col(rows[0], 'state')).toBe('reviewed');
    expect(col(rows[1], 'state')).toBe('refused');
    expect(col(rows[1], 'declared by')).toBe('sam-dev');

    // The same history with the workflow's memo edited to name another declarer: not believed, a finding.
    const forged = buildAuditRecord(change, forgeMemo(runs, { declaredBy: 'pat-peer' }));
    const f = forged.summary.emergencies?.[0];
    expect(f).toMatchObject({ declaredBy: 'lee-ops', memo: 'disagrees' });
    expect(f?.findings).toEqual([
      expect.stringMatching(
        /memo of the emergency .* says declared by "pat-peer", but the signed declaration says "lee-ops"$/,
      ),
    ]);
    expect(forged.summary.dutiesSegregated).toBe(false);
    expect(find(forged.controls, 'CC8.1 (emergency changes)')?.status).toBe('not met');
  });

  it('an emergency not reviewed by its due time: a finding in the change and in the period export', async () => {
    const { change, head, handle } = await emergencyChange(tight);
    changes.late = change;
    const due = await waitForStatus(handle, (s) => s.emergencies?.[0]?.overdueAt !== undefined, 40_000);
    const dueAt = due.emergencies?.[0]?.reviewDueAt ?? '';
    const overdue = await exportChange(tight.client, change);
    expect(overdue.summary.emergencies?.[0]).toMatchObject({ state: 'overdue', reviewDueAt: dueAt, memo: 'matches' });
    const finding = `the emergency change ${change} declared by lee-ops for ${head.slice(0, 7)} was deployed (staging, production at `;
    expect(find(overdue.controls, 'CC8.1 (emergency changes)')).toMatchObject({ status: 'not met' });
    expect(find(overdue.controls, 'CC8.1 (emergency changes)')?.reason).toContain(finding);
    expect(find(overdue.controls, 'CC8.1 (emergency changes)')?.reason).toContain(
      `and not reviewed by ${dueAt}: the retroactive review is overdue`,
    );
    expect(overdue.summary.segregationFindings.join('\n')).toContain(finding);
    expect(find(overdue.controls, 'A.8.32')?.status).toBe('not met');

    // Reviewed after all, late: still a finding.
    expect((await approve(tight, handle, claim(change, head, 'alex-reviewer'))).counted).toBe(true);
    expect(await result(handle)).toMatchObject({ outcome: 'delivered' });
    const late = await exportChange(tight.client, change);
    expect(late.summary.emergencies?.[0]).toMatchObject({ state: 'reviewed-late', reviewedBy: 'alex-reviewer' });
    expect(find(late.controls, 'CC8.1 (emergency changes)')).toMatchObject({
      status: 'not met',
      reason: expect.stringMatching(
        new RegExp(
          `^the emergency change ${change.replace(/[/#]/g, '.')} declared by lee-ops for ${head.slice(0, 7)} was reviewed late: by alex-reviewer at \\S+, due ${dueAt.replace(/\./g, '\\.')}$`,
        ),
      ),
    });
  });

  it('the period export lists every emergency of the period with its review', async () => {
    for (let i = 0; i < 100 && (await changesInPeriod(inTime.client, repo, startedAt)).length < 2; i++)
      await new Promise((r) => setTimeout(r, 200));
    const docs = [];
    for await (const doc of exportPeriod(inTime.client, repo, startedAt, undefined)) docs.push(doc);
    expect(docs.map((d) => d.change).sort()).toEqual(Object.values(changes).sort());

    const out = join(work, 'period');
    const run = await foureyes(
      'audit',
      '--repo',
      repo,
      '--since',
      startedAt.toISOString(),
      '--format',
      'csv',
      '--out',
      out,
    );
    expect(run.code).toBe(0);
    const [header, ...rows] = parseCsv(readFileSync(join(out, 'emergencies.csv'), 'utf8'));
    expect(header).toEqual([...EMERGENCY_CSV_HEADER]);
    const col = (row: string[] | undefined, name: (typeof EMERGENCY_CSV_HEADER)[number]) =>
      row?.[EMERGENCY_CSV_HEADER.indexOf(name)];
    const taken = rows.filter((r) => col(r, 'state') !== 'refused');
    expect(
      taken.map((r) => [col(r, 'change'), col(r, 'declared by'), col(r, 'state'), col(r, 'reviewed by')]).sort(),
    ).toEqual(
      [
        [changes.reviewed, 'lee-ops', 'reviewed', 'alex-reviewer'],
        [changes.late, 'lee-ops', 'reviewed-late', 'alex-reviewer'],
      ].sort(),
    );
    for (const r of taken) {
      expect(col(r, 'reason')).toBe('checkout down: card payments fail');
      expect(col(r, 'deployed at')).toMatch(/Z$/);
      expect(col(r, 'reviewed at')).toMatch(/Z$/);
      expect(col(r, 'signature')).toMatch(/^verified/);
    }
    expect(
      col(
        taken.find((r) => col(r, 'change') === changes.late),
        'findings',
      ),
    ).toMatch(/was reviewed late: by alex-reviewer/);
    expect(
      col(
        taken.find((r) => col(r, 'change') === changes.reviewed),
        'findings',
      ),
    ).toBe('');
    expect(rows.filter((r) => col(r, 'state') === 'refused').map((r) => col(r, 'declared by'))).toEqual([
      'sam-dev',
      'sam-dev',
    ]);
    // The changes table names the late review among the change's findings.
    const [, ...changeRows] = parseCsv(readFileSync(join(out, 'audit.csv'), 'utf8'));
    const lateRow = changeRows.find((r) => r[0] === changes.late);
    expect(lateRow?.[CSV_HEADER.indexOf('findings')]).toMatch(/was reviewed late: by alex-reviewer/);
    expect(lateRow?.[CSV_HEADER.indexOf('segregated')]).toBe('no');
    if (process.env.FOUREYES_WRITE_AUDIT_SAMPLES) {
      const dir = process.env.FOUREYES_WRITE_AUDIT_SAMPLES;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'emergencies.csv'), readFileSync(join(out, 'emergencies.csv')));
      writeFileSync(join(dir, 'emergency-reviewed.md'), (await foureyes('audit', changes.reviewed)).stdout);
      writeFileSync(join(dir, 'emergency-late.md'), (await foureyes('audit', changes.late)).stdout);
    }
    // On stdout, the table asked for.
    const table = await foureyes(
      'audit',
      '--repo',
      repo,
      '--since',
      startedAt.toISOString(),
      '--format',
      'csv',
      '--table',
      'emergencies',
    );
    expect(parseCsv(table.stdout)).toEqual([header, ...rows]);
  });
});
