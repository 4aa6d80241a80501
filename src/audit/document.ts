// The audit export: the record as a sealed JSON document (hash chain + Ed25519 signature) and as Markdown
// that a person who has never seen Temporal can read.
import { deriveControls, type ControlEntry } from './controls.ts';
import type { AuditRecord, AuditSummary } from './record.ts';
import {
  chainEntries,
  checkChain,
  signPayload,
  verifyPayload,
  type AuditSignature,
  type ChainedEntry,
} from './seal.ts';

export const AUDIT_FORMAT = 'foureyes-audit/1';

export interface AuditDocument {
  format: typeof AUDIT_FORMAT;
  change: string;
  workflowId: string;
  namespace: string;
  generatedAt: string;
  summary: AuditSummary;
  /** Absent in exports written before controls were mapped. */
  controls?: ControlEntry[];
  entries: ChainedEntry[];
  chainHead: string;
  signature?: AuditSignature;
}

/**
 * What the signature covers: everything but the signature itself (entries through the chain head). The
 * controls are signed when present, so they can be neither edited nor added to or removed from a signed file;
 * a file written before them keeps verifying.
 */
export function signedPart(doc: Omit<AuditDocument, 'signature'>): unknown {
  const { format, change, workflowId, namespace, generatedAt, summary, controls, chainHead } = doc;
  return {
    format,
    change,
    workflowId,
    namespace,
    generatedAt,
    summary,
    ...(controls !== undefined ? { controls } : {}),
    chainHead,
    entryCount: doc.entries.length,
  };
}

export function sealRecord(
  record: AuditRecord,
  meta: { workflowId: string; namespace: string; generatedAt: string },
  signingKey?: string,
): AuditDocument {
  const entries = chainEntries(record.entries);
  const doc: AuditDocument = {
    format: AUDIT_FORMAT,
    change: record.summary.change,
    workflowId: meta.workflowId,
    namespace: meta.namespace,
    generatedAt: meta.generatedAt,
    summary: record.summary,
    controls: record.controls ?? deriveControls(record.summary, record.entries),
    entries,
    chainHead: entries.at(-1)?.hash ?? '0'.repeat(64),
  };
  if (signingKey) doc.signature = signPayload(signedPart(doc), signingKey);
  return doc;
}

export interface DocumentCheck {
  ok: boolean;
  problems: string[];
  signedBy?: string;
  /** Not a well-formed export, or its chain or signature does not hold: the content was altered. */
  tampered: boolean;
  /** Chain and signature hold and the signer is one of the trusted keys given. */
  trustedSigner: boolean;
}

/** Checks structure, chain and signature of a parsed document; never throws on hostile input. */
export function checkDocument(raw: unknown, trustedKeys: string[] = []): DocumentCheck {
  const problems: string[] = [];
  const bad = { ok: false, tampered: true, trustedSigner: false } as const;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    return { ...bad, problems: ['not a foureyes audit export: expected a JSON object'] };
  const doc = raw as Partial<AuditDocument>;
  if (doc.format !== AUDIT_FORMAT)
    return {
      ...bad,
      problems: [`not a foureyes audit export: format is ${JSON.stringify(doc.format)}, expected "${AUDIT_FORMAT}"`],
    };
  let chain;
  try {
    chain = checkChain(doc.entries);
  } catch (error) {
    // Canonical JSON recurses; data nested tens of thousands deep overflows the stack.
    if (error instanceof RangeError)
      return { ...bad, problems: ['an entry is nested too deeply to check: not an export foureyes wrote'] };
    throw error;
  }
  if (chain) problems.push(`hash chain broken at entry ${chain.seq} (${chain.kind}): ${chain.problem}`);
  else if ((doc.entries?.at(-1)?.hash ?? '0'.repeat(64)) !== doc.chainHead)
    problems.push('chainHead does not match the last entry: entries were removed from the end');
  // The signature covers the entry count: without a list of entries there is nothing it could match.
  if (!Array.isArray(doc.entries)) return { ...bad, problems };
  let tampered = problems.length > 0;
  let trustedSigner = false;
  if (!doc.signature) problems.push('the export is not signed');
  else if (!verifyPayload(signedPart(doc as AuditDocument), doc.signature)) {
    tampered = true;
    problems.push(
      'the signature does not match the header, summary, controls or chain head: the file was altered after it was signed',
    );
  } else if (trustedKeys.length > 0 && !trustedKeys.includes(String(doc.signature.publicKey).toLowerCase()))
    problems.push(`signed by key ${doc.signature.publicKey}, which is not one of the trusted keys`);
  else trustedSigner = trustedKeys.length > 0 && !tampered;
  return {
    ok: problems.length === 0,
    problems,
    tampered,
    trustedSigner,
    ...(doc.signature ? { signedBy: doc.signature.publicKey } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown

/** Untrusted text (titles, comments) must not become Markdown structure, links or mentions. */
export function mdEscape(text: unknown): string {
  return String(text ?? '')
    .replace(/[\r\n]+/g, ' ')
    .replace(/[\\`*_[\]|<>~]/g, (c) => `\\${c}`)
    .replace(/@/g, '@\u200b');
}

export function renderMarkdown(doc: AuditDocument): string {
  const s = doc.summary;
  const initiators = Object.entries(s.initiators);
  const lines: string[] = [
    `# Change ${mdEscape(doc.change)}: ${mdEscape(s.outcome)}`,
    '',
    `Audit record exported ${doc.generatedAt} from Temporal namespace \`${doc.namespace}\`, workflow \`${doc.workflowId}\`.`,
    `Every line below was reconstructed from the workflow's event history (runs: ${s.runIds.map((r) => `\`${r}\``).join(', ')}).`,
    '',
    '## Segregation of duties',
    '',
    '| duty | held by |',
    '| --- | --- |',
    `| initiate (opened the change, wrote or pushed commits) | ${initiators.map(([who, roles]) => `${mdEscape(who)} (${roles.map(mdEscape).join('; ')})`).join('<br>') || 'nobody recorded'} |`,
    `| approve (reviewed the exact commit) | ${s.approvers.map(mdEscape).join(', ') || 'nobody'} |`,
    `| execute (deployed) | the pipeline${s.executors.length ? ` (${s.executors.map(mdEscape).join(', ')})` : ''}; no person held deploy credentials |`,
    '',
    s.dutiesSegregated
      ? '**The three duties were held by different parties**: no approver took part in the change, and only the pipeline deployed.'
      : `**Finding: the duties were NOT fully segregated.** ${s.segregationFindings.map(mdEscape).join('; ')}`,
    '',
    `- Head commit: \`${s.headSha || 'unknown'}\``,
    `- Environments deployed: ${s.environmentsDeployed.map(mdEscape).join(', ') || 'none'}`,
    `- Approval attempts refused: ${s.refusedAttempts}`,
    `- Period: ${s.firstEventAt} to ${s.lastEventAt}`,
    '',
    ...controlsTable(doc),
    ...emergenciesTable(doc.summary),
    '## Timeline',
    '',
    '| # | time (UTC) | event | what happened |',
    '| --- | --- | --- | --- |',
    ...doc.entries.map((e) => `| ${e.seq} | ${e.at} | ${mdEscape(e.kind)} | ${mdEscape(e.summary)} |`),
    '',
    '## Integrity',
    '',
    `The JSON form of this record carries a SHA-256 hash chain (head \`${doc.chainHead}\`)${doc.signature ? ` and an Ed25519 signature by key \`${doc.signature.publicKey}\`` : ''}.`,
    'Check it with `foureyes verify-audit <file.json>`.',
    '',
  ];
  return lines.join('\n');
}

/** Break-glass: each emergency with its review, and each refused declaration (absent when there were none). */
export function emergenciesTable(s: AuditSummary): string[] {
  const taken = s.emergencies ?? [];
  const refused = s.refusedEmergencies ?? [];
  if (taken.length === 0 && refused.length === 0) return [];
  const cell = (v: unknown) => mdEscape(v) || '—';
  return [
    '## Emergencies',
    '',
    'Break-glass declarations: the gates of one exact commit opened without approval, owing a retroactive review.',
    '',
    '| declared by | reason | declared at | commit | deployed to | deployed at | review due | reviewed by | reviewed at | state | signature | findings |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...taken.map(
      (e) =>
        `| ${cell(e.declaredBy)} (${cell(e.channel)}) | ${cell(e.reason)} | ${cell(e.declaredAt)} | \`${e.sha.slice(0, 7)}\` | ${cell(e.deployedTo.join(', '))} | ${cell(e.deployedAt)} | ${cell(e.reviewDueAt)} | ${cell(e.reviewedBy)} | ${cell(e.reviewedAt)} | **${cell(e.state)}** | ${e.signature.verified ? 'verified' : '**NOT verified**'}, memo ${cell(e.memo)} | ${cell(e.findings.join('; '))} |`,
    ),
    ...refused.map(
      (r) =>
        `| ${cell(r.person)} (${cell(r.channel)}) | — | ${cell(r.at)} | \`${cell(r.sha.slice(0, 7))}\` | — | — | — | — | — | **refused** | — | ${cell(r.reason)} |`,
    ),
    '',
  ];
}

function controlsTable(doc: AuditDocument): string[] {
  if (!doc.controls) return [];
  const evidence = (c: ControlEntry) =>
    [...c.evidence.entries.map((e) => `#${e.seq} ${e.kind}`), ...c.evidence.summary.map((f) => `summary.${f}`)]
      .map(mdEscape)
      .join(', ') || '—';
  return [
    '## Controls',
    '',
    'Which evidence of this record answers which control; `#n` is an entry of the timeline below.',
    '',
    '| framework | control | status | evidence | why |',
    '| --- | --- | --- | --- | --- |',
    ...doc.controls.map(
      (c) =>
        `| ${mdEscape(c.framework)} | ${mdEscape(c.id)} ${mdEscape(c.title)} | **${mdEscape(c.status)}** | ${evidence(c)} | ${mdEscape(c.reason)} |`,
    ),
    '',
  ];
}
