// `foureyes verify-audit <file> [--public-key hex] [--rederive]`: checks the hash chain and signature of an
// audit export and, with --rederive (access to Temporal), rebuilds the record from history and lists every
// difference. Exit codes (README, "Verifying an export"):
//   0  chain intact and signature verified against a trusted key (and, with --rederive, identical to history)
//   3  chain intact and signature valid, but the signer is not trusted or unknown (no --public-key given, another
//      key, or the export is unsigned): integrity without proof of who wrote it
//   1  tampered: the chain, the signature or (with --rederive) the content does not hold
//   2  usage error or unreadable file
export const EXIT_VERIFIED = 0;
export const EXIT_TAMPERED = 1;
export const EXIT_UNTRUSTED = 3;
import { readFileSync } from 'node:fs';
import { canonicalJson } from '../shared/approval-signature.ts';
import { checkDocument, type AuditDocument } from '../audit/document.ts';
import { exportChange } from '../audit/export.ts';
import { connectClient } from '../shared/temporal-connection.ts';
import { CliError, parseArgs } from './commands.ts';

const MAX_FILE = 256 * 1024 * 1024;

export async function run(args: string[]): Promise<number> {
  const { positionals, options, flags } = parseArgs(args, { options: ['public-key'], flags: ['rederive'] });
  if (positionals.length !== 1)
    throw new CliError('usage: foureyes verify-audit <file.json> [--public-key hex] [--rederive]', 2);
  const file = positionals[0] as string;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, 2);
  }
  if (text.length > MAX_FILE) throw new CliError(`${file}: larger than ${MAX_FILE} bytes; not an audit export`, 2);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new CliError(
      `${file}: not JSON (${(error as Error).message}); verify the .json export, not the Markdown one`,
      1,
    );
  }
  const trusted = [options.get('public-key'), ...(process.env.FOUREYES_AUDIT_PUBLIC_KEYS ?? '').split(',')]
    .map((k) => k?.trim().toLowerCase())
    .filter((k): k is string => Boolean(k));
  const result = checkDocument(raw, trusted);
  const rederived =
    !result.tampered && flags.has('rederive') && (raw as Partial<AuditDocument>).change
      ? await rederive(raw as AuditDocument)
      : [];
  const extra = flags.has('rederive') ? ', identical to the record re-derived from Temporal history' : '';
  if (result.tampered || rederived.length > 0) {
    console.log(`${file}: FAILED — tampered`);
    for (const p of [...result.problems, ...rederived]) console.log(`  - ${p}`);
    return EXIT_TAMPERED;
  }
  const doc = raw as AuditDocument;
  if (!result.trustedSigner) {
    const why = !result.signedBy
      ? 'the export is not signed'
      : trusted.length === 0
        ? `signed by ${result.signedBy}, but no trusted key was given (--public-key or FOUREYES_AUDIT_PUBLIC_KEYS)`
        : `signed by ${result.signedBy}, which is not one of the trusted keys`;
    console.log(
      `${file}: NOT VERIFIED — ${doc.entries.length} entries, chain intact${extra}, but the signer is not trusted: ${why}`,
    );
    return EXIT_UNTRUSTED;
  }
  console.log(
    `${file}: OK — ${doc.entries.length} entries, chain intact, signed by trusted key ${result.signedBy}${extra}`,
  );
  return EXIT_VERIFIED;
}

async function rederive(doc: AuditDocument): Promise<string[]> {
  const client = await connectClient();
  try {
    // The whole change, unless the file covers only one continue-as-new chain (`foureyes audit --run`).
    let fresh = await exportChange(client, doc.change);
    const runIds = doc.summary?.runIds ?? [];
    if (canonicalJson(fresh.summary.runIds) !== canonicalJson(runIds) && typeof runIds[0] === 'string') {
      const chain = await exportChange(client, doc.change, { runId: runIds[0], onlyChain: true });
      if (canonicalJson(chain.summary.runIds) === canonicalJson(runIds)) fresh = chain;
    }
    const problems: string[] = [];
    const count = Math.max(fresh.entries.length, doc.entries.length);
    for (let i = 0; i < count; i++) {
      const a = doc.entries[i];
      const b = fresh.entries[i];
      if (!a) problems.push(`history has entry ${i} (${b?.kind}: ${b?.summary}) that the file lacks`);
      else if (!b) problems.push(`the file has entry ${i} (${a.kind}: ${a.summary}) that history lacks`);
      else {
        const strip = (e: typeof a) => canonicalJson({ at: e.at, kind: e.kind, summary: e.summary, data: e.data });
        if (strip(a) !== strip(b))
          problems.push(
            `entry ${i} (${a.kind}) differs from history: file says "${a.summary}", history says "${b.summary}"`,
          );
      }
    }
    if (canonicalJson(doc.summary) !== canonicalJson(fresh.summary)) {
      for (const key of Object.keys(fresh.summary) as Array<keyof typeof fresh.summary>) {
        if (canonicalJson(doc.summary[key]) !== canonicalJson(fresh.summary[key]))
          problems.push(
            `summary.${key} differs from history: file ${JSON.stringify(doc.summary[key])}, history ${JSON.stringify(fresh.summary[key])}`,
          );
      }
    }
    // The control mapping is signed with the rest: a file whose statuses were edited must not pass either.
    if (!doc.controls) problems.push('the file has no controls section, which history yields');
    else if (canonicalJson(doc.controls) !== canonicalJson(fresh.controls)) {
      const want = new Map((fresh.controls ?? []).map((c) => [`${c.framework} ${c.id}`, c]));
      const have = Array.isArray(doc.controls) ? doc.controls : [];
      const before = problems.length;
      for (const c of have) {
        const key = `${c?.framework} ${c?.id}`;
        const f = want.get(key);
        if (!f) problems.push(`controls: the file has ${key}, which history does not yield`);
        else if (canonicalJson(c) !== canonicalJson(f))
          problems.push(
            `controls: ${key} differs from history: file says ${JSON.stringify(c.status)} (${c.reason}), history says ${JSON.stringify(f.status)} (${f.reason})`,
          );
        want.delete(key);
      }
      for (const key of want.keys()) problems.push(`controls: history yields ${key}, which the file lacks`);
      if (problems.length === before) problems.push('controls: listed in another order than history yields');
    }
    return problems;
  } finally {
    await client.connection.close();
  }
}
