// Exporting audit records from Temporal: one change (following its continue-as-new chain), or every
// change of a repository in a period (a visibility query over foureyes' search attributes), streamed.
import type { Client } from '@temporalio/client';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatChangeRef, type ChangeRef, workflowIdFor } from '../shared/change-ref.ts';
import { sealRecord, type AuditDocument } from './document.ts';
import { fetchAllRuns, fetchChangeHistory } from './history.ts';
import { buildAuditRecord } from './record.ts';

/** The key that signs exports: FOUREYES_AUDIT_SIGNING_KEY (hex), else the one `foureyes up` keeps in the data folder. */
export function auditSigningKey(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.FOUREYES_AUDIT_SIGNING_KEY) return env.FOUREYES_AUDIT_SIGNING_KEY.trim();
  const file = join(env.FOUREYES_DATA ?? '.foureyes', 'keys', 'audit-signing.json');
  if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { privateKey: string }).privateKey;
  return undefined;
}

/**
 * The record of a change: every run of it (closed and reopened, continued as new), oldest first. With `runId`
 * and `onlyChain`, just that run's continue-as-new chain.
 */
export async function exportChange(
  client: Client,
  ref: ChangeRef | string,
  options: { runId?: string; onlyChain?: boolean; signingKey?: string; now?: Date } = {},
): Promise<AuditDocument> {
  const change = typeof ref === 'string' ? ref : formatChangeRef(ref);
  const workflowId = workflowIdFor(change);
  const runs = options.onlyChain
    ? await fetchChangeHistory(client, workflowId, options.runId)
    : await fetchAllRuns(client, workflowId);
  const record = buildAuditRecord(change, runs);
  return sealRecord(
    record,
    { workflowId, namespace: client.options.namespace, generatedAt: (options.now ?? new Date()).toISOString() },
    options.signingKey,
  );
}

/** Temporal visibility timestamps are RFC 3339; refuse anything else with a clear message. */
export function parseDate(text: string, field: string): Date {
  const date = new Date(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(date.getTime()))
    throw new Error(
      `${field}: expected a date such as 2026-11-01 or 2026-11-01T12:00:00Z, found ${JSON.stringify(text)}`,
    );
  return date;
}

export function periodQuery(repo: string, since: Date, until?: Date): string {
  if (!/^[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/.test(repo))
    throw new Error(`--repo: expected owner/repo, found ${JSON.stringify(repo)}`);
  const parts = [`FoureyesRepo = '${repo}'`, `StartTime >= '${since.toISOString()}'`];
  if (until) parts.push(`StartTime < '${until.toISOString()}'`);
  return parts.join(' AND ');
}

/** The changes (workflow IDs) with a run started in the period, each once. */
export async function changesInPeriod(client: Client, repo: string, since: Date, until?: Date): Promise<string[]> {
  const ids = new Set<string>();
  for await (const execution of client.workflow.list({ query: periodQuery(repo, since, until) })) {
    if (execution.workflowId.startsWith('change:')) ids.add(execution.workflowId);
  }
  return [...ids].sort();
}

/** Streams one sealed document per change; `onProgress` sees (done, total). */
export async function* exportPeriod(
  client: Client,
  repo: string,
  since: Date,
  until: Date | undefined,
  options: { signingKey?: string; onProgress?: (done: number, total: number) => void } = {},
): AsyncGenerator<AuditDocument> {
  const ids = await changesInPeriod(client, repo, since, until);
  options.onProgress?.(0, ids.length);
  let done = 0;
  for (const id of ids) {
    yield await exportChange(client, id.slice('change:'.length), { signingKey: options.signingKey });
    options.onProgress?.(++done, ids.length);
  }
}
