// The population an auditor samples from: one CSV row per change (RFC 4180), built from a record or an
// export. Pure: the CLI streams the rows. The CSV is an index, not evidence — it is not signed; the sealed
// JSON export of each change is what verify-audit checks.
import type { UnchainedEntry } from './seal.ts';
import type { AuditSummary } from './record.ts';

export const CSV_HEADER = [
  'change',
  'title',
  'author',
  'initiators',
  'approvers',
  'approval times',
  'checks result',
  'environments deployed',
  'refused attempts',
  'segregated',
  'findings',
  'runs',
] as const;

/** Multi-valued cells are joined with this. */
export const CSV_JOIN = '; ';

// A spreadsheet treats a cell starting with one of these as a formula; titles and findings quote attacker text.
const FORMULA_START = /^[=+\-@\t\r]/;

/** One field: formula triggers defused with a leading quote, then RFC 4180 quoting when needed. */
export function csvCell(value: unknown): string {
  let text = String(value ?? '');
  if (FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One record line, CRLF-terminated as RFC 4180 asks. */
export function csvLine(cells: readonly unknown[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

export const csvHeaderLine = (): string => csvLine(CSV_HEADER);

const short = (sha: unknown) => String(sha ?? '').slice(0, 7);

/** The cells of one change, in CSV_HEADER's order. */
export function csvRow(record: { summary: AuditSummary; entries: readonly UnchainedEntry[] }): string[] {
  const s = record.summary;
  const data = (e: UnchainedEntry) => (e.data ?? {}) as Record<string, unknown>;
  const events = record.entries.filter((e) => e.kind === 'pull-request');
  const title =
    events
      .map((e) => data(e).title)
      .filter((t) => typeof t === 'string')
      .at(-1) ?? '';
  const author =
    events.map((e) => data(e).author).find((a) => typeof a === 'string') ??
    Object.entries(s.initiators).find(([, roles]) => roles.includes('author of the pull request'))?.[0] ??
    '';
  const approvals = record.entries
    .filter((e) => e.kind === 'approval-attempt' && data(e).counted === true)
    .map((e) => {
      const d = data(e);
      const envs = Array.isArray(d.environments) && d.environments.length ? ` (${d.environments.join(', ')})` : '';
      return `${String(d.person)} ${String(d.decision ?? 'approve')} ${short(d.sha)} at ${e.at}${envs}`;
    });
  const checks = record.entries
    .filter((e) => e.kind === 'checks')
    .map((e) => `${data(e).passed ? 'passed' : 'FAILED'} at ${short(data(e).sha)}`);
  const deploys = record.entries
    .filter((e) => e.kind === 'deploy')
    .map((e) => {
      const d = data(e);
      return `${String(d.environment)} ${d.status === 'failed' ? 'FAILED' : String(d.status)} ${short(d.sha)} at ${e.at}`;
    });
  return [
    s.change,
    title,
    author,
    Object.keys(s.initiators).sort().join(CSV_JOIN),
    s.approvers.join(CSV_JOIN),
    approvals.join(CSV_JOIN),
    checks.join(CSV_JOIN) || 'not run',
    deploys.join(CSV_JOIN),
    String(s.refusedAttempts),
    s.dutiesSegregated ? 'yes' : 'no',
    s.segregationFindings.join(CSV_JOIN),
    s.runIds.join(CSV_JOIN),
  ];
}

/** The period's emergencies: one row per emergency (and per refused declaration), in its own table. */
export const EMERGENCY_CSV_HEADER = [
  'change',
  'declared by',
  'reason',
  'channel',
  'declared at',
  'commit',
  'environments',
  'deployed to',
  'deployed at',
  'review due',
  'reviewed by',
  'reviewed at',
  'state',
  'signature',
  'findings',
] as const;

export const emergencyHeaderLine = (): string => csvLine(EMERGENCY_CSV_HEADER);

/** The rows of one change's emergencies, in EMERGENCY_CSV_HEADER's order (none when it had none). */
export function emergencyRows(record: { summary: AuditSummary }): string[][] {
  const s = record.summary;
  const taken = (s.emergencies ?? []).map((e) => [
    s.change,
    e.declaredBy,
    e.reason,
    e.channel,
    e.declaredAt,
    e.sha,
    e.environments.join(CSV_JOIN),
    e.deployedTo.join(CSV_JOIN),
    e.deployedAt ?? '',
    e.reviewDueAt,
    e.reviewedBy ?? '',
    e.reviewedAt ?? '',
    e.state,
    e.signature.verified ? `verified (${e.signature.keyId?.slice(0, 16) ?? '?'})` : 'NOT verified',
    e.findings.join(CSV_JOIN),
  ]);
  const refused = (s.refusedEmergencies ?? []).map((r) => [
    s.change,
    r.person,
    '',
    r.channel,
    r.at,
    r.sha,
    '',
    '',
    '',
    '',
    '',
    '',
    'refused',
    '',
    r.reason,
  ]);
  return [...taken, ...refused];
}
