// Hostile change references: `../`, control characters, NUL, absurd lengths and unicode look-alikes in
// `owner/repo#number` (parseChangeRef, makeChangeRef, the workflow ID derived from them) and in the CLI's
// status / approve / audit arguments. Every one is refused with a message that says what was expected;
// whatever is accepted is a canonical, safe reference. (The gateway's path parameters and webhook
// repository names are covered over HTTP in approval-api.test.ts and webhook.test.ts.)
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ChangeRefError,
  changeRefFromWorkflowId,
  formatChangeRef,
  makeChangeRef,
  parseChangeRef,
  workflowIdFor,
  type ChangeRef,
} from '../../src/shared/change-ref.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SAFE_OWNER = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}$/;
const SAFE_REPO = /^[A-Za-z0-9._-]{1,100}$/;

const HOSTILE = [
  '../etc/passwd#1',
  'acme/../shop#1',
  'acme/shop/..#1',
  'acme/..#1',
  'acme/.#1',
  '..%2f..%2fetc/x#1',
  'acme/shop#1/../2',
  'acme\u0000/shop#1',
  'acme/shop\u0000#1',
  'acme/shop#1\u0000',
  'acme/sh\u0007op#1',
  'acme/shop\r\n#1',
  'acme/shop#1\nX: y',
  'acme/\u202eshop#1',
  'аcme/shop#1', // Cyrillic a
  'acme/ѕhop#1', // Cyrillic s
  'acme∕shop#1', // division slash
  'acme/shop＃1', // fullwidth number sign
  'acme/shop#１', // fullwidth digit
  'acme/shop#١', // Arabic-Indic digit
  `${'a'.repeat(40)}/shop#1`,
  `acme/${'s'.repeat(101)}#1`,
  `acme/shop#${'9'.repeat(10)}`,
  `acme/shop#${'9'.repeat(5000)}`,
  'x'.repeat(100_000),
  'acme/shop#0',
  'acme/shop#-1',
  'acme/shop#1.5',
  'acme/shop#1e3',
  'acme/shop#0x10',
  '-acme/shop#1',
  'acme shop#1',
  'acme/shop',
  '#1',
  '',
];

function expectClearRefusal(run: () => unknown, label: string): ChangeRefError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught, label).toBeInstanceOf(ChangeRefError);
  const message = (caught as Error).message;
  expect(message, label).toMatch(/^invalid (change reference|repository owner|repository name|pull request number)/);
  // The message quotes the input escaped and bounded: no raw control characters, no 100 kB echo.
  expect(message, label).not.toMatch(/[\u0000-\u001f\u007f\u202e]/);
  expect(message.length, label).toBeLessThan(400);
  return caught as ChangeRefError;
}

function expectSafe(ref: ChangeRef, label: string): void {
  expect(ref.owner, label).toMatch(SAFE_OWNER);
  expect(ref.repo, label).toMatch(SAFE_REPO);
  expect(['.', '..']).not.toContain(ref.repo);
  expect(Number.isSafeInteger(ref.number) && ref.number >= 1 && ref.number <= 999_999_999, label).toBe(true);
  // The workflow ID is built from these parts only, and reads back as the same reference.
  expect(changeRefFromWorkflowId(workflowIdFor(ref))).toEqual(ref);
  expect(parseChangeRef(formatChangeRef(ref))).toEqual(ref);
}

describe('hostile change references', () => {
  it('named hostile references are refused with a clear message', () => {
    for (const text of HOSTILE) expectClearRefusal(() => parseChangeRef(text), JSON.stringify(text.slice(0, 60)));
    expectClearRefusal(() => makeChangeRef('acme', '..', 1), '..');
    expectClearRefusal(() => makeChangeRef('acme', 'shop', Number.NaN), 'NaN');
    expectClearRefusal(() => makeChangeRef('acme', 'shop', 1e12), '1e12');
    expectClearRefusal(() => makeChangeRef('acme/evil', 'shop', 1), 'slash in owner');
    expectClearRefusal(() => makeChangeRef('acme', 'shop#2', 1), '# in repo');
  });

  it('property: any string is either refused with a clear message or is a safe, canonical reference', () => {
    const refLike = fc
      .tuple(
        fc.oneof(fc.string({ maxLength: 45 }), fc.constantFrom('acme', '..', '.', 'a-b', 'аcme', '-x')),
        fc.oneof(fc.string({ maxLength: 105 }), fc.constantFrom('shop', '..', '.', 'a.b_c-d', 'ѕhop')),
        fc.oneof(
          fc.nat().map(String),
          fc.string({ maxLength: 12 }),
          fc.constantFrom('0', '007', '999999999', '1000000000'),
        ),
        fc.constantFrom('/', '\\', '∕', '%2f'),
        fc.constantFrom('#', '＃', ' #'),
      )
      .map(([o, r, n, slash, hash]) => `${o}${slash}${r}${hash}${n}`);
    fc.assert(
      fc.property(
        fc.oneof(refLike, fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 60 })),
        (text) => {
          let ref: ChangeRef | undefined;
          try {
            ref = parseChangeRef(text);
          } catch {
            expectClearRefusal(() => parseChangeRef(text), JSON.stringify(text.slice(0, 60)));
            return;
          }
          expectSafe(ref, JSON.stringify(text));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('property: makeChangeRef (the gateway path parameters) accepts only safe parts', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 50 }),
        fc.string({ maxLength: 110 }),
        fc.oneof(fc.integer(), fc.double(), fc.constant(Number.NaN)),
        (owner, repo, number) => {
          let ref: ChangeRef | undefined;
          try {
            ref = makeChangeRef(owner, repo, number);
          } catch {
            expectClearRefusal(() => makeChangeRef(owner, repo, number), `${owner}/${repo}#${number}`);
            return;
          }
          expectSafe(ref, `${owner}/${repo}#${number}`);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('the CLI refuses hostile references for status, approve and audit with exit 2 and the reason, before connecting anywhere', async () => {
    // One real process per command (tsx start-up dominates); the parsing itself is covered above.
    const cases: Array<[string, string]> = [
      ['status', 'acme/../shop#1'],
      ['approve', 'acme/shop#1\u0007'],
      ['audit', `acme/${'s'.repeat(5000)}#1`],
    ];
    const run = (command: string, ref: string) =>
      new Promise<{ code: number; output: string }>((resolve) => {
        // An unreachable Temporal and GitHub: a refusal must come before any connection attempt.
        const env = {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          TEMPORAL_ADDRESS: '127.0.0.1:9',
          FOUREYES_GATEWAY_URL: 'http://127.0.0.1:9',
          GITHUB_TOKEN: 'not-used',
        };
        execFile(
          'node',
          ['bin/foureyes.js', command, ref],
          { cwd: ROOT, env, timeout: 60_000 },
          (error, stdout, stderr) => {
            resolve({
              code: error ? Number((error as { code?: unknown }).code ?? 1) : 0,
              output: `${stdout}${stderr}`,
            });
          },
        );
      });
    for (let i = 0; i < cases.length; i += 3) {
      const batch = cases.slice(i, i + 3);
      const results = await Promise.all(batch.map(([c, r]) => run(c, r)));
      results.forEach((result, j) => {
        const [command, ref] = batch[j] as [string, string];
        const label = `${command} ${JSON.stringify(ref.slice(0, 40))}: ${result.output.slice(0, 300)}`;
        expect(result.code, label).toBe(2);
        expect(result.output, label).toMatch(
          /invalid (change reference|repository owner|repository name|pull request number)/,
        );
        expect(result.output, label).not.toMatch(/^\s+at .+[:(]\d+/m);
        expect(result.output, label).not.toMatch(/ECONNREFUSED|127\.0\.0\.1:9/);
      });
    }
  });
});
