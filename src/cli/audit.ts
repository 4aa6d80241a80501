// `foureyes audit <ref> [--format md|json|csv] [--run <runId>] [--out file]`
// `foureyes audit --repo owner/repo --since <date> [--until <date>] [--format json|md|csv] [--table changes|emergencies] [--out dir]`
// (bulk, streaming: NDJSON, Markdown or one CSV row per change on stdout; progress on stderr). CSV has two tables:
// the changes (audit.csv) and their emergencies (emergencies.csv); with --out both files, on stdout the one
// `--table changes|emergencies` names (default changes).
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { csvHeaderLine, csvLine, csvRow, emergencyHeaderLine, emergencyRows } from '../audit/csv.ts';
import { renderMarkdown } from '../audit/document.ts';
import { auditSigningKey, exportChange, exportPeriod, parseDate } from '../audit/export.ts';
import { connectClient } from '../shared/temporal-connection.ts';
import { changeRefArg, CliError, parseArgs } from './commands.ts';

export async function run(args: string[]): Promise<number> {
  const { positionals, options } = parseArgs(args, {
    options: ['format', 'run', 'repo', 'since', 'until', 'out', 'table'],
  });
  const format = options.get('format') ?? (options.has('repo') ? 'json' : 'md');
  if (format !== 'md' && format !== 'json' && format !== 'csv')
    throw new CliError(`--format: expected md, json or csv, found ${JSON.stringify(format)}`, 2);
  const tableName = options.get('table') ?? 'changes';
  if (tableName !== 'changes' && tableName !== 'emergencies')
    throw new CliError(`--table: expected changes or emergencies, found ${JSON.stringify(tableName)}`, 2);
  const signingKey = auditSigningKey();
  if (options.has('repo')) return bulk(options, format, signingKey);
  if (positionals.length !== 1)
    throw new CliError(
      'usage: foureyes audit <owner/repo#number> [--format md|json|csv] [--run <runId>] [--out file]\n       foureyes audit --repo owner/repo --since <date> [--until <date>] [--format json|md|csv] [--table changes|emergencies] [--out dir]',
      2,
    );
  const ref = changeRefArg(positionals[0] as string);
  if (format !== 'csv') warnUnsigned(signingKey);
  const client = await connectClient();
  try {
    const doc = await exportChange(client, ref, {
      runId: options.get('run'),
      onlyChain: options.has('run'),
      signingKey,
    });
    const text =
      format === 'json'
        ? `${JSON.stringify(doc, null, 2)}\n`
        : format === 'csv'
          ? tableName === 'emergencies'
            ? emergencyHeaderLine() + emergencyRows(doc).map(csvLine).join('')
            : csvHeaderLine() + csvLine(csvRow(doc))
          : renderMarkdown(doc);
    const out = options.get('out');
    if (out) {
      writeFileSync(out, text);
      console.error(`foureyes audit: wrote ${doc.entries.length} entries for ${doc.change} to ${out}`);
    } else process.stdout.write(text);
    return 0;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      throw new CliError(
        `no change ${positionals[0]} in namespace ${client.options.namespace}${options.has('run') ? ` with run ${options.get('run')}` : ''}`,
      );
    throw error;
  } finally {
    await client.connection.close();
  }
}

async function bulk(options: Map<string, string>, format: string, signingKey: string | undefined): Promise<number> {
  const repo = options.get('repo') as string;
  if (!options.has('since')) throw new CliError('--since is required with --repo (e.g. --since 2026-10-01)', 2);
  let since: Date;
  let until: Date | undefined;
  try {
    since = parseDate(options.get('since') as string, '--since');
    until = options.has('until') ? parseDate(options.get('until') as string, '--until') : undefined;
  } catch (error) {
    throw new CliError((error as Error).message, 2);
  }
  if (format !== 'csv') warnUnsigned(signingKey);
  const out = options.get('out');
  if (out) mkdirSync(out, { recursive: true });
  const tty = process.stderr.isTTY;
  const progress = (done: number, total: number) => {
    if (tty) {
      const width = 30;
      const filled = total === 0 ? width : Math.round((done / total) * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} changes`);
      if (done === total) process.stderr.write('\n');
    } else if (done === 0) console.error(`foureyes audit: ${total} change(s) of ${repo} in the period`);
  };
  const client = await connectClient();
  let count = 0;
  // CSV: the changes (audit.csv in --out) and their emergencies (emergencies.csv), or on stdout the table asked
  // for; header first, the rows written as each change is exported.
  const emergenciesOnly = !out && options.get('table') === 'emergencies';
  const table: Writable | undefined =
    format === 'csv' && !emergenciesOnly
      ? out
        ? createWriteStream(join(out, 'audit.csv'))
        : process.stdout
      : undefined;
  const emergencyTable: Writable | undefined =
    format === 'csv' && (out || emergenciesOnly)
      ? out
        ? createWriteStream(join(out, 'emergencies.csv'))
        : process.stdout
      : undefined;
  const write = async (stream: Writable, text: string) => {
    if (!stream.write(text)) await once(stream, 'drain');
  };
  try {
    if (table) await write(table, csvHeaderLine());
    if (emergencyTable) await write(emergencyTable, emergencyHeaderLine());
    for await (const doc of exportPeriod(client, repo, since, until, { signingKey, onProgress: progress })) {
      count++;
      if (emergencyTable) for (const row of emergencyRows(doc)) await write(emergencyTable, csvLine(row));
      if (table) await write(table, csvLine(csvRow(doc)));
      else if (emergencyTable) continue;
      else if (out) {
        const name = doc.change.replace(/[/#]/g, '_');
        writeFileSync(
          join(out, `${name}.${format === 'md' ? 'md' : 'json'}`),
          format === 'md' ? renderMarkdown(doc) : `${JSON.stringify(doc, null, 2)}\n`,
        );
      } else process.stdout.write(format === 'md' ? `${renderMarkdown(doc)}\n---\n\n` : `${JSON.stringify(doc)}\n`);
    }
    for (const stream of [table, emergencyTable])
      if (stream && stream !== process.stdout) {
        stream.end();
        await once(stream, 'finish');
      }
    console.error(
      `foureyes audit: exported ${count} change(s)${out ? ` to ${table ? `${join(out, 'audit.csv')} and ${join(out, 'emergencies.csv')}` : out}` : ''}`,
    );
    return 0;
  } finally {
    await client.connection.close();
  }
}

function warnUnsigned(signingKey: string | undefined): void {
  if (!signingKey)
    console.error(
      'foureyes audit: no FOUREYES_AUDIT_SIGNING_KEY and no .foureyes/keys/audit-signing.json: the export is unsigned (its hash chain still holds)',
    );
}
