// Hostile files given to `foureyes verify-audit`: binary, huge, truncated JSON, valid JSON of the wrong
// shape, and a real sealed export with entries mutated by fast-check. The checker must never throw (tested
// in-process with many runs) and the CLI must exit 1 or 2 with a message, never a stack trace (tested by
// running `node bin/foureyes.js verify-audit <file>` on a sample of the same inputs).
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDocument, sealRecord, type AuditDocument } from '../../src/audit/document.ts';
import type { AuditRecord } from '../../src/audit/record.ts';
import { CliError } from '../../src/cli/commands.ts';
import { run as verifyAudit } from '../../src/cli/verify-audit.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'foureyes-hostile-audit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY = randomBytes(32).toString('hex');

/** A sealed export as `foureyes audit` writes it, of a small delivered change with hostile free text. */
function realExport(): AuditDocument {
  const record: AuditRecord = {
    summary: {
      change: 'acme/shop#12',
      outcome: 'delivered',
      headSha: 'a'.repeat(40),
      initiators: { 'sam-dev': ['author'] },
      approvers: ['alex-reviewer'],
      refusedAttempts: 1,
      executors: ['foureyes-deploy'],
      environmentsDeployed: ['staging'],
      dutiesSegregated: true,
      segregationFindings: [],
      runIds: ['0b6f0f5e-4d2c-4b7e-9a51-0d8e3c1f2a7b'],
      firstEventAt: '2026-11-01T10:00:00.000Z',
      lastEventAt: '2026-11-01T10:05:00.000Z',
    },
    entries: [
      {
        at: '2026-11-01T10:00:00.000Z',
        kind: 'started',
        summary: 'change acme/shop#12 opened by sam-dev: <!channel> `x` [y](z)',
        data: { title: '@here ${IFS}$(id)' },
      },
      {
        at: '2026-11-01T10:01:00.000Z',
        kind: 'approval',
        summary: 'alex-reviewer approved aaaaaaa',
        data: { person: 'alex-reviewer', comment: 'ok\u0000\u202e' },
      },
      {
        at: '2026-11-01T10:02:00.000Z',
        kind: 'refused',
        summary: 'sam-dev may not approve their own change',
        data: { reason: 'initiator' },
      },
      {
        at: '2026-11-01T10:05:00.000Z',
        kind: 'deployed',
        summary: 'deployed to staging',
        data: { leases: [{ leaseId: 'l1', revokedAt: '2026-11-01T10:05:01.000Z' }] },
      },
    ],
  };
  return sealRecord(
    record,
    { workflowId: 'change:acme/shop#12', namespace: 'default', generatedAt: '2026-11-01T11:00:00.000Z' },
    KEY,
  );
}

/** Sets a value at a random place of a JSON document (or deletes the key when value is undefined). */
function mutate(doc: unknown, path: number[], value: unknown): unknown {
  const copy = structuredClone(doc);
  let node: unknown = copy;
  for (let depth = 0; depth < path.length; depth++) {
    if (!node || typeof node !== 'object') break;
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = keys[(path[depth] as number) % keys.length] as string;
    const child = (node as Record<string, unknown>)[key];
    if (depth === path.length - 1 || !child || typeof child !== 'object') {
      if (value === undefined) delete (node as Record<string, unknown>)[key];
      else (node as Record<string, unknown>)[key] = value;
      return copy;
    }
    node = child;
  }
  return copy;
}

const hostileValue = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.string({ maxLength: 60 }),
  fc.integer(),
  fc.boolean(),
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    '0'.repeat(64),
    'f'.repeat(128),
    { alg: 'ed25519', publicKey: 'zz', value: 1 },
    [],
    {},
    'foureyes-audit/1',
  ),
);

function runCli(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'node',
      ['bin/foureyes.js', 'verify-audit', file],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
        timeout: 60_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

function expectCleanFailure(result: { code: number; stdout: string; stderr: string }, label: string): void {
  const output = `${result.stdout}${result.stderr}`;
  expect([1, 2, 3], `${label}: exit ${result.code}\n${output.slice(0, 600)}`).toContain(result.code);
  expect(output.trim().length, label).toBeGreaterThan(0);
  // A stack trace means an error escaped the command: "    at fn (file:line:col)".
  expect(output, label).not.toMatch(/^\s+at .+[:(]\d+/m);
  expect(output, label).not.toMatch(/TypeError|RangeError|ReferenceError|SyntaxError: Unexpected/);
}

describe('hostile files for verify-audit', () => {
  it('the unmutated export verifies (so each failure below comes from the mutation)', () => {
    const result = checkDocument(realExport());
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('checkDocument never throws on arbitrary JSON, and fails it', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        const result = checkDocument(value);
        expect(result.ok).toBe(false);
        expect(result.problems.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });

  it('checkDocument on a real export with one value changed, removed or replaced: never throws; any real change fails', () => {
    const original = realExport();
    const originalText = JSON.stringify(original);
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), hostileValue, (path, value) => {
        const mutated = JSON.parse(JSON.stringify(mutate(original, path, value))) as unknown;
        const result = checkDocument(mutated);
        if (JSON.stringify(mutated) !== originalText) {
          // Reordering keys cannot happen here; a different serialization is a different document.
          expect(result.ok, JSON.stringify(result.problems)).toBe(false);
        }
      }),
      { numRuns: 600 },
    );
  });

  it('deeply nested data in an entry is a failure with a message, not a stack overflow', () => {
    const doc = realExport() as unknown as { entries: Array<{ data: unknown }> };
    let deep: unknown = 'x';
    for (let i = 0; i < 50_000; i++) deep = [deep];
    (doc.entries[0] as { data: unknown }).data = deep;
    const result = checkDocument(doc);
    expect(result.ok).toBe(false);
  });

  it('the verify-audit command on hostile files: exit 1 or 2 with a message, never a stack trace', async () => {
    const files: Array<[string, string | Buffer]> = [
      ['binary.json', randomBytes(4096)],
      ['empty.json', ''],
      ['truncated.json', JSON.stringify(realExport()).slice(0, 700)],
      ['list.json', '[1,2,3]'],
      ['wrong-format.json', JSON.stringify({ format: 'foureyes-audit/2', entries: [] })],
      ['no-entries.json', JSON.stringify({ ...realExport(), entries: undefined })],
      ['entries-null.json', JSON.stringify({ ...realExport(), entries: null })],
      [
        'signature-garbage.json',
        JSON.stringify({ ...realExport(), signature: { alg: 'ed25519', publicKey: 5, value: [] } }),
      ],
      ['markdown.md', '# foureyes audit\n\n| a | b |\n'],
      [
        'huge.json',
        `{"format":"foureyes-audit/1","entries":[${Array.from({ length: 200_000 }, (_, i) => `{"seq":${i}}`).join(',')}]}`,
      ],
      [
        'deep.json',
        `{"format":"foureyes-audit/1","entries":[{"seq":0,"data":${'['.repeat(200_000)}${']'.repeat(200_000)}}]}`,
      ],
    ];
    // Mutations of the real export, with a fixed seed so the files are reproducible.
    const mutations = fc.sample(fc.tuple(fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), hostileValue), {
      numRuns: 20,
      seed: 909,
    });
    const original = JSON.stringify(realExport());
    mutations.forEach(([path, value], i) => {
      const text = JSON.stringify(mutate(realExport(), path, value));
      if (text !== original) files.push([`mutated-${i}.json`, text]);
    });
    for (const [name, content] of files) writeFileSync(join(dir, name), content);
    mkdirSync(join(dir, 'a-directory.json'));
    const targets = [
      ...files.map(([name]) => join(dir, name)),
      join(dir, 'a-directory.json'),
      join(dir, 'missing.json'),
    ];
    // Every file through the command's own run(): the CLI's entry point prints a stack trace exactly when
    // run() throws something other than a CliError, so that is what must never happen.
    const log = console.log;
    const error = console.error;
    const printed: string[] = [];
    console.log = (...args: unknown[]) => printed.push(args.join(' '));
    console.error = console.log;
    try {
      for (const file of targets) {
        printed.length = 0;
        let code: number;
        try {
          code = await verifyAudit([file]);
        } catch (thrown) {
          if (!(thrown instanceof CliError))
            throw new Error(`${file}: verify-audit threw ${(thrown as Error)?.name}: ${(thrown as Error)?.message}`, {
              cause: thrown,
            });
          code = thrown.exitCode;
          printed.push(thrown.message);
        }
        // 3: a mutation that only removed or replaced the signature leaves the chain intact but the signer unknown.
        expect([1, 2, 3], `${file}: ${printed.join('\n').slice(0, 400)}`).toContain(code);
        expect(printed.join('\n').trim().length, file).toBeGreaterThan(0);
      }
    } finally {
      console.log = log;
      console.error = error;
    }
    // The real process for the worst three (binary, signed without entries, deep nesting) and the good file.
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(realExport()));
    const [binary, noEntries, deep, ok] = await Promise.all(
      [join(dir, 'binary.json'), join(dir, 'no-entries.json'), join(dir, 'deep.json'), good].map(runCli),
    );
    expectCleanFailure(binary as Awaited<ReturnType<typeof runCli>>, 'binary.json');
    expectCleanFailure(noEntries as Awaited<ReturnType<typeof runCli>>, 'no-entries.json');
    expectCleanFailure(deep as Awaited<ReturnType<typeof runCli>>, 'deep.json');
    // Intact but checked against no trusted key: not "verified".
    expect(ok?.code, `${ok?.stdout}${ok?.stderr}`).toBe(3);
    expect(ok?.stdout).toContain('NOT VERIFIED');
  });

  it('verify-audit exit codes say what was proved: 0 trusted signer, 3 intact but signer untrusted or unknown, 1 tampered', async () => {
    const doc = realExport();
    const file = join(dir, 'codes.json');
    writeFileSync(file, JSON.stringify(doc));
    const trustedKey = doc.signature?.publicKey as string;
    const quiet = async (args: string[]) => {
      const log = console.log;
      const error = console.error;
      const printed: string[] = [];
      console.log = (...a: unknown[]) => printed.push(a.join(' '));
      console.error = console.log;
      try {
        return { code: await verifyAudit(args), out: printed.join('\n') };
      } finally {
        console.log = log;
        console.error = error;
      }
    };
    expect(await quiet([file, '--public-key', trustedKey])).toMatchObject({
      code: 0,
      out: expect.stringContaining('signed by trusted key'),
    });
    expect(await quiet([file, '--public-key', 'ab'.repeat(32)])).toMatchObject({
      code: 3,
      out: expect.stringContaining('not one of the trusted keys'),
    });
    expect(await quiet([file])).toMatchObject({ code: 3, out: expect.stringContaining('no trusted key was given') });
    // Re-signed by someone else's key: intact, but not by a trusted signer.
    const resigned = sealRecord(
      {
        summary: doc.summary,
        entries: doc.entries.map(({ at, kind, summary, data }) => ({ at, kind, summary, data })),
      },
      { workflowId: doc.workflowId, namespace: doc.namespace, generatedAt: doc.generatedAt },
      randomBytes(32).toString('hex'),
    );
    writeFileSync(file, JSON.stringify(resigned));
    expect(await quiet([file, '--public-key', trustedKey])).toMatchObject({ code: 3 });
    writeFileSync(file, JSON.stringify({ ...doc, summary: { ...doc.summary, approvers: ['mallory'] } }));
    expect(await quiet([file, '--public-key', trustedKey])).toMatchObject({
      code: 1,
      out: expect.stringContaining('tampered'),
    });
  });
});
