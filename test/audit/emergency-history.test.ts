// The audit of an emergency from a saved history of a real workflow run (test/audit/histories/, written by
// FOUREYES_WRITE_HISTORIES=1 npx vitest run test/audit/emergency.test.ts): offline, and with the history edited
// as an insider with write access to the history store might — the memo, or the signed declaration itself.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { renderMarkdown, sealRecord } from '../../src/audit/document.ts';
import type { RunHistory } from '../../src/audit/history.ts';
import { buildAuditRecord } from '../../src/audit/record.ts';
import type { SignedEmergency } from '../../src/shared/emergency.ts';
import { decodeHistory } from '../workflows/harness.ts';
import { forgeMemo } from './forge-memo.ts';

function saved(): { change: string; runs: RunHistory[] } {
  const { workflowId, history } = decodeHistory(
    readFileSync(join(import.meta.dirname, 'histories', 'emergency-reviewed.json'), 'utf8'),
  );
  const runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.originalExecutionRunId ?? 'run';
  return { change: workflowId.replace(/^change:/, ''), runs: [{ runId, events: history.events ?? [] }] };
}

const control = (rec: ReturnType<typeof buildAuditRecord>, id: string) => rec.controls?.find((c) => c.id === id);

describe('audit of an emergency from a saved history', () => {
  it('reads the declaration, the deploys under it and the review from the events', () => {
    const { change, runs } = saved();
    const rec = buildAuditRecord(change, runs);
    const e = rec.summary.emergencies?.[0];
    expect(e).toMatchObject({
      declaredBy: 'lee-ops',
      channel: 'cli',
      deployedTo: ['staging', 'production'],
      reviewedBy: 'alex-reviewer',
      state: 'reviewed',
      signature: { verified: true },
      memo: 'matches',
      findings: [],
    });
    expect(rec.summary.refusedEmergencies?.map((r) => r.person)).toEqual(['sam-dev']);
    // Neither declaration is an approval attempt.
    expect(rec.entries.filter((x) => x.kind === 'emergency-declaration')).toHaveLength(2);
    expect(rec.entries.filter((x) => x.kind === 'approval-attempt')).toHaveLength(1);
    expect(rec.summary.refusedAttempts).toBe(0);
    expect(rec.summary.segregationFindings).toEqual([]);
    expect(control(rec, 'CC8.1 (emergency changes)')?.status).toBe('met');
    expect(control(rec, '6.5.1 (approval)')?.status).toBe('not covered');

    const md = renderMarkdown(
      sealRecord(rec, { workflowId: `change:${change}`, namespace: 'test', generatedAt: '2026-12-04T00:00:00Z' }),
    );
    expect(md).toContain('## Emergencies');
    expect(md).toMatch(
      /\| lee-ops \(cli\) \| checkout down: card payments fail \| .* \| \*\*reviewed\*\* \| verified, memo matches \| — \|/,
    );
    expect(md).toMatch(/\| sam-dev \(cli\) \| — \| .* \| \*\*refused\*\* \|/);
  });

  it('a memo naming another declarer, commit or reviewer is a finding, not believed', () => {
    const { change, runs } = saved();
    for (const [edit, pattern] of [
      [{ declaredBy: 'pat-peer' }, /says declared by "pat-peer", but the signed declaration says "lee-ops"$/],
      [{ sha: 'f'.repeat(40) }, /says sha "f{40}", but the signed declaration says "[0-9a-f]{40}"$/],
      [{ reviewedBy: 'kim-qa' }, /says it was reviewed by kim-qa, but the approvals in history show alex-reviewer$/],
    ] as const) {
      const rec = buildAuditRecord(change, forgeMemo(runs, edit));
      const e = rec.summary.emergencies?.[0];
      expect(e).toMatchObject({ declaredBy: 'lee-ops', reviewedBy: 'alex-reviewer', memo: 'disagrees' });
      expect(e?.findings).toEqual([expect.stringMatching(pattern)]);
      expect(rec.summary.segregationFindings).toEqual(e?.findings);
      expect(control(rec, 'CC8.1 (emergency changes)')).toMatchObject({ status: 'not met', reason: e?.findings[0] });
    }
  });

  it('a declaration edited in the update input no longer verifies: a finding', () => {
    const { change, runs } = saved();
    const events = runs[0]?.events ?? [];
    const accepted = events.filter(
      (x) => x.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'emergency',
    );
    const input = accepted.at(-1)?.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input;
    const [signed] = (input?.args?.payloads ?? []).map((p) => defaultPayloadConverter.fromPayload(p as Payload));
    const edited = signed as SignedEmergency;
    const original = input?.args?.payloads?.[0];
    if (!input?.args?.payloads) throw new Error('no emergency update in the saved history');
    input.args.payloads[0] = defaultPayloadConverter.toPayload({
      ...edited,
      claim: { ...edited.claim, reason: 'routine' },
    }) as never;
    try {
      const rec = buildAuditRecord(change, runs);
      const e = rec.summary.emergencies?.[0];
      expect(e?.signature.verified).toBe(false);
      expect(e?.findings).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/its signed declaration does not verify against the gateway keys the policy trusted$/),
          expect.stringMatching(
            /says reason "checkout down: card payments fail", but the signed declaration says "routine"$/,
          ),
        ]),
      );
      expect(control(rec, 'CC8.1 (emergency changes)')?.status).toBe('not met');
      // An emergency that does not verify excuses no deploy: the approval control is not met.
      expect(control(rec, '6.5.1 (approval)')?.status).toBe('not met');
    } finally {
      input.args.payloads[0] = original as never;
    }
  });
});
