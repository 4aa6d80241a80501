// The audit of a change as an auditor tries it, on the default path: the gateway forwards the webhook without
// commits and the workflow looks them up. Everyone who initiated — the pull request's author, each commit's
// author, committer and co-authors — must be in the export, with each commit of each head.
import { verifyRederived } from '../helpers/verify-audit.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkDocument, sealRecord } from '../../src/audit/document.ts';
import { exportChange } from '../../src/audit/export.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import {
  approve,
  claim,
  close,
  commit,
  openChange,
  newChange,
  opened,
  result,
  sha,
  startStack,
  waitForStatus,
  type Stack,
} from '../workflows/harness.ts';

let stack: Stack;
const auditKey = generateSigningKey();
const work = mkdtempSync(join(tmpdir(), 'foureyes-audit-initiators-'));

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('audit initiators on the commit-less default path', () => {
  it('names the author, a co-author in a trailer and a different committer, and lists every commit', async () => {
    const change = newChange();
    const head = sha();
    const message = 'Speed up checkout\n\nCo-authored-by: Pat Peer <pat@example.com>';
    const event = opened(head, 'sam-dev', [
      commit(
        head,
        { login: 'sam-dev', email: 'sam@example.com', name: 'Sam' },
        { login: 'lee-ops', email: 'lee@example.com', name: 'Lee' },
        message,
      ),
    ]);
    const handle = await openChange(stack, change, event);
    const live = await waitForStatus(handle, (s) => s.stage === 'awaiting-approval');
    expect(live.initiators).toEqual(['lee-ops', 'pat-peer', 'sam-dev']);
    // The co-author tries to approve: refused, as an initiator.
    expect((await approve(stack, handle, claim(change, head, 'pat-peer'))).counted).toBe(false);
    expect((await approve(stack, handle, claim(change, head, 'alex-reviewer'))).counted).toBe(true);
    // acme/shop merges once delivered: the run ends with the merge.
    expect(await result(handle)).toMatchObject({ outcome: 'delivered' });

    const doc = await exportChange(stack.client, change, { signingKey: auditKey.privateKey });
    expect(checkDocument(doc, [auditKey.publicKey]).ok).toBe(true);
    expect(Object.keys(doc.summary.initiators).sort()).toEqual(live.initiators);
    expect(doc.summary.initiators['pat-peer']).toEqual([`co-author of commit ${head.slice(0, 7)}`]);
    expect(doc.summary.initiators['lee-ops']).toEqual([`committer of commit ${head.slice(0, 7)}`]);
    expect(doc.summary.approvers).toEqual(['alex-reviewer']);
    expect(doc.summary.dutiesSegregated).toBe(true);
    // Each head with its commits, each identity resolved to a person.
    const expected = {
      sha: head,
      author: { login: 'sam-dev', person: 'sam-dev' },
      committer: { login: 'lee-ops', person: 'lee-ops' },
      coAuthors: [{ email: 'pat@example.com', person: 'pat-peer' }],
    };
    expect(doc.summary.heads).toMatchObject([{ sha: head, source: 'lookUpPullRequest', commits: [expected] }]);
    const reads = doc.entries.filter((e) => e.kind === 'pull-request-read');
    expect(reads).toHaveLength(1);
    expect(reads[0]?.data).toMatchObject({ headSha: head, commits: [expected] });
    expect(reads[0]?.summary).toContain(`${head.slice(0, 7)} by sam-dev, committed by lee-ops, co-authors pat-peer`);
    expect(doc.entries.find((e) => e.kind === 'pull-request')?.summary).not.toMatch(/0 commit\(s\)/);

    // The honest file re-derives; one whose initiators were edited (and re-sealed with the same key) does not.
    const honest = join(work, 'honest.json');
    writeFileSync(honest, JSON.stringify(doc));
    const ok = await verifyRederived(honest, auditKey.publicKey, work);
    expect(ok.stdout).toContain('identical to the record re-derived from Temporal history');
    expect(ok.code).toBe(0);
    const { 'pat-peer': _hidden, ...edited } = doc.summary.initiators;
    const forged = sealRecord(
      {
        summary: { ...doc.summary, initiators: edited },
        entries: doc.entries.map(({ at, kind, summary, data }) => ({ at, kind, summary, data })),
      },
      { workflowId: doc.workflowId, namespace: doc.namespace, generatedAt: doc.generatedAt },
      auditKey.privateKey,
    );
    const file = join(work, 'edited.json');
    writeFileSync(file, JSON.stringify(forged));
    const bad = await verifyRederived(file, auditKey.publicKey, work);
    // Chain and signature hold (the insider holds the signing key): only history shows the edit.
    expect(checkDocument(forged, [auditKey.publicKey]).ok).toBe(true);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('summary.initiators differs from history');
    expect(bad.stdout).toContain('pat-peer');
  });

  it('covers every run of a change that was closed and reopened, in order', async () => {
    const change = newChange('acme/dual');
    const head = sha();
    const handle = await openChange(stack, change, opened(head));
    await waitForStatus(handle, (s) => s.stage === 'awaiting-approval');
    await close(stack, handle);
    const first = await handle.describe();
    expect(await result(handle)).toMatchObject({ outcome: 'abandoned' });
    // Reopened with a new head written by kim-qa: a second run of the same change.
    const next = sha();
    const reopened = {
      ...opened(next, 'sam-dev', [commit(next, { login: 'kim-qa', email: 'kim@example.com' })]),
      kind: 'reopened' as const,
    };
    const again = await openChange(stack, change, reopened);
    const live = await waitForStatus(again, (s) => s.stage === 'awaiting-approval' && s.headSha === next);
    expect(live.runIds).toHaveLength(2);

    const doc = await exportChange(stack.client, change, { signingKey: auditKey.privateKey });
    expect(doc.summary.runIds).toEqual(live.runIds);
    expect(doc.summary.runIds[0]).toBe(first.runId);
    expect(doc.entries.filter((e) => e.kind === 'run-started')).toHaveLength(2);
    expect(doc.entries.map((e) => e.kind).indexOf('closed')).toBeLessThan(
      doc.entries.map((e) => e.kind).lastIndexOf('run-started'),
    );
    expect(doc.summary.heads?.map((h) => h.sha)).toEqual([head, next]);
    expect(Object.keys(doc.summary.initiators).sort()).toEqual([...live.initiators].sort());
    expect(doc.summary.outcome).toBe('open');
    // Asked for from the first run, the record is the same: it belongs to the change.
    const fromFirst = await exportChange(stack.client, change, { runId: first.runId });
    expect(fromFirst.entries.map((e) => e.hash)).toEqual(doc.entries.map((e) => e.hash));
    await close(stack, again);
    await result(again);
  });
});
