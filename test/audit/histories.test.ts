// The audit built from saved histories of real workflow runs (test/workflows/histories/, also replayed by
// test/workflows/replay.test.ts): what the record says must be what those runs used, not hand-made events.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { buildAuditRecord } from '../../src/audit/record.ts';
import { AUDIT_VIEW_KEY, type AuditViewMemo } from '../../src/shared/audit-memo.ts';
import { decodeHistory } from '../workflows/harness.ts';

const dir = join(import.meta.dirname, '..', 'workflows', 'histories');

function record(...files: string[]) {
  const runs = files.map((f) => {
    const { workflowId, history } = decodeHistory(readFileSync(join(dir, f), 'utf8'));
    const runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.originalExecutionRunId ?? f;
    return { workflowId, run: { runId, events: history.events ?? [] } };
  });
  return buildAuditRecord(
    (runs[0]?.workflowId ?? '').replace(/^change:/, ''),
    runs.map((r) => r.run),
  );
}

describe('audit records from saved core v2 histories', () => {
  it('takes initiators and commits from the look-ups the workflow made (the events carry no commits)', () => {
    const rec = record('v2-refusals.json');
    const heads = rec.summary.heads ?? [];
    expect(heads).toHaveLength(2);
    expect(heads.map((h) => h.source)).toEqual(['lookUpPullRequest', 'lookUpPullRequest']);
    // One head: kim-qa authored (by e-mail), pat-peer committed (noreply address), jo-platform co-authored.
    const c = heads.flatMap((h) => h.commits).find((x) => x.author.email === 'KIM@example.com');
    expect(c?.author.person).toBe('kim-qa');
    expect(c?.committer.person).toBe('pat-peer');
    expect(c?.coAuthors.map((a) => a.person)).toContain('jo-platform');
    expect(Object.keys(rec.summary.initiators).sort()).toEqual([
      'alex-reviewer',
      'jo-platform',
      'kim-qa',
      'pat-peer',
      'sam-dev',
    ]);
    expect(rec.summary.initiators['alex-reviewer']).toEqual(['pusher']);
    // The events as the gateway signed them name no commits, and the record does not pretend they did.
    for (const e of rec.entries.filter((x) => x.kind === 'pull-request'))
      expect(e.summary).toContain('its commits are read from GitHub');
  });

  it('a change continued as new is one record across its runs', () => {
    const files = [1, 2, 3, 4, 5, 6, 7].map((n) => `v2-continue-as-new-run${n}.json`);
    const rec = record(...files);
    expect(rec.summary.runIds).toHaveLength(7);
    expect(rec.entries.filter((e) => e.kind === 'continued-as-new')).toHaveLength(6);
    expect(rec.summary.heads?.length).toBeGreaterThanOrEqual(5);
    expect(Object.keys(rec.summary.initiators)).toEqual(['sam-dev']);
  });

  for (const file of ['v2-deploy-failed.json', 'v2-deploy-failed-thrown.json'])
    it(`a failed deploy command is evidence: exit code, why and last output (${file})`, () => {
      const rec = record(file);
      const deploys = rec.entries.filter((e) => e.kind === 'deploy');
      expect(deploys).toHaveLength(1);
      expect(deploys[0]?.data).toMatchObject({
        environment: 'staging',
        status: 'failed',
        exitCode: 3,
        durationMs: 1200,
        failure: 'exited with code 3',
      });
      expect(String((deploys[0]?.data as { outputTail?: string }).outputTail)).toContain(
        'migration 0042_orders failed',
      );
      expect(deploys[0]?.summary).toMatch(
        /^deploy of [0-9a-f]{7} to staging failed: the command exited with code 3 after 1\.2 s; last output: .*migration 0042_orders failed/,
      );
      // Whichever shape the deploy zone answered in, the record says it the same way, not as a pipeline fault.
      expect(rec.entries.filter((e) => e.kind === 'activity-failed')).toEqual([]);
      expect(rec.summary.environmentsDeployed).toEqual([]);
    });

  it("cross-checks the workflow's own view at each decision against what it derives from history", () => {
    const honest = record('v2-audit-view.json');
    expect(honest.summary.segregationFindings).toEqual([]);
    expect(honest.summary.dutiesSegregated).toBe(true);
    const { workflowId, history } = decodeHistory(readFileSync(join(dir, 'v2-audit-view.json'), 'utf8'));
    const views = (history.events ?? []).filter(
      (e) => e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields?.[AUDIT_VIEW_KEY],
    );
    // Two approval attempts and two open gates (staging, production).
    expect(views).toHaveLength(4);

    // A history whose derived record and the workflow's view disagree: the view names an initiator the record
    // lacks and counts an initiator's approval. Each is a finding, and the duties are not shown segregated.
    const last = views.at(-1)?.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields ?? {};
    const seen = defaultPayloadConverter.fromPayload(last[AUDIT_VIEW_KEY] as Payload) as AuditViewMemo;
    last[AUDIT_VIEW_KEY] = defaultPayloadConverter.toPayload({
      ...seen,
      initiators: { ...seen.initiators, 'kim-qa': ['committer of abc1234'] },
      counted: [...seen.counted, 'sam-dev'],
    }) as never;
    const runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.originalExecutionRunId ?? 'run';
    const tampered = buildAuditRecord(workflowId.replace(/^change:/, ''), [{ runId, events: history.events ?? [] }]);
    expect(tampered.summary.dutiesSegregated).toBe(false);
    expect(tampered.summary.segregationFindings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^the workflow held kim-qa to be an initiator \(committer of abc1234\) at the production gate/,
        ),
        expect.stringMatching(
          /^the workflow counted sam-dev's approval at the production gate .*, but sam-dev is an initiator$/,
        ),
      ]),
    );
  });
});
