// Hostile configuration files: arbitrary YAML, garbage bytes and a valid configuration with one value
// replaced by anything. parseConfig/loadConfig must throw a ConfigError naming the file and the field,
// never an error of another type, and never accept a value that breaks the schema.
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { applyRemoteOverrides, ConfigError, loadConfig, parseConfig } from '../../src/config/load.ts';

const FILE = 'hostile/foureyes.yaml';
const dir = mkdtempSync(join(tmpdir(), 'foureyes-hostile-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE = {
  people: [
    { github: 'sam-dev', slack: 'U0SAM', emails: ['sam@example.com'] },
    { github: 'alex-reviewer', emails: ['alex@example.com'] },
  ],
  teams: { platform: ['alex-reviewer'] },
  environments: [
    {
      name: 'staging',
      deploy: { run: './deploy.sh', timeout: '10m' },
      approval: { required: 1, eligible: ['team:platform'], expiry: '72h' },
    },
    {
      name: 'production',
      deploy: { run: './deploy.sh', timeout: '10m' },
      approval: { required: 1, expiry: '1h', confirm: true },
    },
  ],
  repositories: [
    {
      name: 'acme/shop',
      remote: 'https://github.com/acme/shop.git',
      checks: [{ name: 'unit', run: 'npm test', timeout: '5m' }],
    },
  ],
};

/** Every failure must be a ConfigError that names the file and says something per problem. */
function expectConfigErrorOrConfig(run: () => unknown): { error?: ConfigError } {
  try {
    run();
    return {};
  } catch (error) {
    if (!(error instanceof ConfigError))
      throw new Error(
        `expected a ConfigError, got ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`,
        { cause: error },
      );
    expect(error.message.startsWith(`${error.file}: invalid configuration`)).toBe(true);
    expect(error.problems.length).toBeGreaterThan(0);
    for (const p of error.problems) expect(p.trim().length).toBeGreaterThan(0);
    return { error };
  }
}

/** All paths to leaves (and containers) of a JSON-like value. */
function paths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

function setAt(root: unknown, path: Array<string | number>, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path.at(-1) as string | number] = value;
  return copy;
}

const anyValue = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.constantFrom(
    '',
    '../../etc/passwd',
    '$(rm -rf /)',
    '-1s',
    '0',
    'NaN',
    'x'.repeat(5000),
    '\u0000',
    'acme/../shop',
    'team:nobody',
    'ѕam-dev',
  ),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
);

describe('hostile configuration files', () => {
  it('the base configuration is valid (so every refusal below comes from the mutation)', () => {
    expect(parseConfig(stringify(BASE), FILE).repositories[0]?.name).toBe('acme/shop');
  });

  it('arbitrary text and garbage bytes: a ConfigError naming the file, never another error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 500 }),
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString('utf8')),
          fc.jsonValue({ maxDepth: 4 }).map((v) => stringify(v)),
          fc.constantFrom(
            'a: &a [*a]',
            '&x [*x, *x]',
            '!!binary ZZZ',
            '!!js/function "x"',
            'people: !!set {a}',
            '<<: *nope',
            'key: value\nkey: again',
            '---\n---\n',
            'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
            '%YAML 9.9\n---\na: 1',
            `${'- '.repeat(2000)}x`,
            `${'['.repeat(5000)}`,
          ),
        ),
        (text) => {
          const { error } = expectConfigErrorOrConfig(() => parseConfig(text, FILE));
          expect(error?.file ?? FILE).toBe(FILE);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a valid configuration with one value replaced by anything: valid, or a ConfigError naming that field', () => {
    const all = paths(BASE).filter((p) => p.length > 0);
    fc.assert(
      fc.property(fc.constantFrom(...all), anyValue, (path, value) => {
        const mutated = setAt(BASE, path, value);
        const { error } = expectConfigErrorOrConfig(() => parseConfig(stringify(mutated), FILE));
        if (error) {
          // The problem list names the field by its path (people[0].github) or its section.
          const top = String(path[0]);
          expect(error.message, `${path.join('.')} = ${JSON.stringify(value)?.slice(0, 80)}`).toMatch(
            new RegExp(`${top}|\\(root\\)|YAML`),
          );
        }
      }),
      { numRuns: 400 },
    );
  });

  it('named hostile values are refused with the field', () => {
    const cases: Array<[Array<string | number>, unknown, RegExp]> = [
      [['repositories', 0, 'name'], '../../etc', /repositories\[0\]\.name/],
      [['repositories', 0, 'name'], 'acme/shop\u0000', /repositories\[0\]\.name/],
      [['repositories', 0, 'name'], `acme/${'x'.repeat(300)}`, /repositories\[0\]\.name/],
      [['repositories', 0, 'name'], 'аcme/shop\n', /repositories\[0\]\.name/],
      [['environments', 0, 'name'], '../prod', /environments\[0\]\.name/],
      [['environments', 0, 'approval', 'required'], -1, /environments\[0\]\.approval\.required/],
      [['environments', 0, 'approval', 'required'], 1e9, /environments\[0\]\.approval/],
      [['environments', 0, 'deploy', 'timeout'], '-5m', /environments\[0\]\.deploy\.timeout/],
      [['people', 0, 'github'], 'sam dev', /people\[0\]\.github/],
      [['people', 0, 'github'], '@sam', /people\[0\]\.github/],
    ];
    for (const [path, value, field] of cases) {
      const { error } = expectConfigErrorOrConfig(() => parseConfig(stringify(setAt(BASE, path, value)), FILE));
      expect(error, `${path.join('.')} = ${JSON.stringify(value)}`).toBeDefined();
      expect(error?.message, `${path.join('.')} = ${JSON.stringify(value)}`).toMatch(field);
    }
  });

  it('loadConfig on binary, huge, missing and unreadable files: a ConfigError naming the file', () => {
    const binary = join(dir, 'binary.yaml');
    writeFileSync(binary, Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x0a, 0x3a, 0x3a]));
    const huge = join(dir, 'huge.yaml');
    writeFileSync(huge, `people:\n${'  - github: x\n'.repeat(20_000)}`);
    const directory = join(dir, 'a-directory.yaml');
    mkdirSync(directory);
    for (const file of [binary, huge, directory, join(dir, 'missing.yaml')]) {
      const { error } = expectConfigErrorOrConfig(() => loadConfig(file));
      expect(error, file).toBeDefined();
      expect(error?.file).toBe(file);
    }
  });

  it('FOUREYES_REMOTE_OVERRIDES with garbage: a ConfigError, never another error', () => {
    const config = parseConfig(stringify(BASE), FILE);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 100 }),
          fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
          fc.constant('{"__proto__": {"x": 1}}'),
          fc.constant('{"acme/shop": 5}'),
        ),
        (raw) => {
          expectConfigErrorOrConfig(() => applyRemoteOverrides(config, FILE, { FOUREYES_REMOTE_OVERRIDES: raw }));
          // Whatever happened, the prototype of plain objects is untouched.
          expect(({} as Record<string, unknown>).x).toBeUndefined();
        },
      ),
      { numRuns: 200 },
    );
  });
});
