// The control mapping of an export, built from saved histories of real workflow runs: each control says met,
// not met or not covered, derived from the record and covered by the signature.
import { describe, expect, it } from 'vitest';
import type { ControlEntry } from '../../src/audit/controls.ts';
import { checkDocument, renderMarkdown, sealRecord } from '../../src/audit/document.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import { savedRecord } from './saved-records.ts';

const key = generateSigningKey();
const find = (controls: ControlEntry[] | undefined, id: string) => controls?.find((c) => c.id === id);
const seal = (rec: ReturnType<typeof savedRecord>) =>
  sealRecord(
    rec,
    { workflowId: `change:${rec.summary.change}`, namespace: 'test', generatedAt: '2026-12-03T00:00:00Z' },
    key.privateKey,
  );

describe('audit control mapping', () => {
  it('a segregated, delivered change meets A.5.3, A.8.32, PCI 6.5.1 approval and testing, 6.5.4 and CC8.1', () => {
    const rec = savedRecord('v2-happy-path.json');
    const status = Object.fromEntries((rec.controls ?? []).map((c) => [`${c.framework} ${c.id}`, c.status]));
    expect(status).toEqual({
      'ISO/IEC 27001:2022 A.5.3': 'met',
      'ISO/IEC 27001:2022 A.8.32': 'met',
      'PCI DSS v4.0 6.5.1 (approval)': 'met',
      'PCI DSS v4.0 6.5.1 (testing)': 'met',
      'PCI DSS v4.0 6.5.1 (back-out)': 'not covered',
      'PCI DSS v4.0 6.5.2': 'not covered',
      'PCI DSS v4.0 6.5.4': 'met',
      'SOC 2 CC8.1': 'met',
      'SOC 2 CC8.1 (emergency changes)': 'not covered',
    });
    const sod = find(rec.controls, 'A.5.3');
    expect(sod?.reason).toBe(
      'initiated by sam-dev; approved by alex-reviewer, none of whom initiated; deployed only by the pipeline',
    );
    expect(sod?.evidence.summary).toContain('dutiesSegregated');
    // The evidence points at the entries that show it: the counted approval and both deploys.
    const kinds = (c?: ControlEntry) => c?.evidence.entries.map((e) => `${e.seq}:${e.kind}`);
    for (const e of sod?.evidence.entries ?? []) expect(rec.entries[e.seq]?.kind).toBe(e.kind);
    expect(kinds(find(rec.controls, '6.5.1 (testing)'))).toEqual(
      rec.entries.flatMap((e, i) => (e.kind === 'checks' ? [`${i}:checks`] : [])),
    );
    expect(find(rec.controls, '6.5.4')?.evidence.entries.filter((e) => e.kind === 'deploy')).toHaveLength(2);
    // Saved before environment lanes: its releases are in no environment's history, so no rollback can reach them.
    expect(find(rec.controls, '6.5.1 (back-out)')?.reason).toMatch(
      /^staging \([0-9a-f]{7}\), production \([0-9a-f]{7}\) deployed without the environment's lane/,
    );
    expect(find(rec.controls, '6.5.2')?.reason).toMatch(/^covered: .*; not covered: /);
    expect(find(rec.controls, 'CC8.1 (emergency changes)')?.reason).toBe(
      `no emergency was declared for ${rec.summary.change}: it took the standard path`,
    );

    // Markdown: one table row per control.
    const md = renderMarkdown(seal(rec));
    expect(md).toContain('## Controls');
    expect(md).toContain('| framework | control | status | evidence | why |');
    expect(md).toMatch(/\| ISO\/IEC 27001:2022 \| A\.5\.3 Segregation of duties \| \*\*met\*\* \| #\d+ pull-request, /);
    expect(md).toMatch(
      /\| PCI DSS v4\.0 \| 6\.5\.1 \(back-out\) Back-out procedures \| \*\*not covered\*\* \| #\d+ deploy, /,
    );
  });

  it("a change delivered through its environments' lanes meets PCI 6.5.1 back-out: foureyes rollback can reach it", () => {
    const rec = savedRecord('v2-per-environment-deployer.json');
    const backOut = find(rec.controls, '6.5.1 (back-out)');
    expect(backOut?.status).toBe('met');
    expect(backOut?.reason).toMatch(
      /^every release of this change \(staging, production\) went through its environment's lane .*foureyes rollback/,
    );
    expect(backOut?.evidence.entries.map((e) => e.kind)).toEqual([
      'lane-acquired',
      'deploy',
      'lane-acquired',
      'deploy',
    ]);
    // Not delivered at all: nothing to back out.
    expect(find(savedRecord('v2-closed-waiting.json').controls, '6.5.1 (back-out)')).toMatchObject({
      status: 'not covered',
      reason: 'nothing of this change was deployed, so there is nothing to back out',
    });
  });

  it('a change without any counted approval does not meet A.5.3 or PCI 6.5.1 approval', () => {
    const rec = savedRecord('v2-closed-waiting.json');
    expect(rec.summary.dutiesSegregated).toBe(true);
    expect(find(rec.controls, 'A.5.3')).toMatchObject({
      status: 'not met',
      reason: 'no counted approval: nobody but the initiators has vouched for the change',
    });
    expect(find(rec.controls, '6.5.1 (approval)')?.status).toBe('not met');
    expect(find(rec.controls, 'CC8.1')?.status).toBe('not met');
    // Nothing was deployed: there were no environment roles to separate.
    expect(find(rec.controls, '6.5.4')).toMatchObject({ status: 'not covered' });
  });

  it('the controls are signed: a status edited after sealing breaks the signature', () => {
    const doc = seal(savedRecord('v2-closed-waiting.json'));
    expect(checkDocument(doc, [key.publicKey]).ok).toBe(true);
    const edited = structuredClone(doc);
    const sod = find(edited.controls, 'A.5.3') as ControlEntry;
    sod.status = 'met';
    const check = checkDocument(edited, [key.publicKey]);
    expect(check.tampered).toBe(true);
    expect(check.problems.join('\n')).toContain('signature does not match the header, summary, controls or chain head');
    // Removing the section is an edit too.
    const { controls: _gone, ...stripped } = doc;
    expect(checkDocument(stripped, [key.publicKey]).tampered).toBe(true);
  });
});
