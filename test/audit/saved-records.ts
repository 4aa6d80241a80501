// Audit records built from saved histories of real workflow runs (test/workflows/histories/).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildAuditRecord, type AuditRecord } from '../../src/audit/record.ts';
import { decodeHistory } from '../workflows/harness.ts';

const dir = join(import.meta.dirname, '..', 'workflows', 'histories');

/** The record of the change whose runs were saved as `files`, oldest first. */
export function savedRecord(...files: string[]): AuditRecord {
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
