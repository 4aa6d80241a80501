// Loading the trusted configuration with errors a person can act on: the file, the field path,
// what was found and what was expected, all in one message.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type FoureyesConfig } from './schema.ts';
import { checkReferences } from './references.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: invalid configuration\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.FOUREYES_CONFIG ?? 'foureyes.yaml');
}

export function loadConfig(file: string = configPath()): FoureyesConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === 'ENOENT'
        ? 'not found; copy foureyes.example.yaml to foureyes.yaml or set FOUREYES_CONFIG'
        : `cannot be read (${code ?? String(error)})`;
    throw new ConfigError(file, [hint]);
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, file = 'foureyes.yaml'): FoureyesConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map(
        (e) =>
          `YAML syntax error at line ${e.linePos?.[0]?.line ?? '?'}, column ${e.linePos?.[0]?.col ?? '?'}: ${e.message.split('\n')[0]}`,
      ),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (error) {
    // Aliases are resolved only here: an unresolved one in a merge key (`<<: *nope`) or an alias bomb throws.
    throw new ConfigError(file, [`YAML error: ${(error as Error).message.split('\n')[0]}`]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [
      `(root): expected a mapping with people, environments and repositories, found ${describe(raw)}`,
    ]);
  }
  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new ConfigError(file, parsed.error.issues.map(formatIssue));
  const problems = checkReferences(parsed.data);
  if (problems.length > 0) throw new ConfigError(file, problems);
  return applyRemoteOverrides(parsed.data, file);
}

/**
 * FOUREYES_REMOTE_OVERRIDES: a JSON object `{"owner/repo": "<git remote>"}` that replaces the `remote` of
 * configured repositories. Offline mode sets it so checks and deploys fetch from the GitHub stand-in's
 * local git repositories; names that are not configured are an error.
 */
export function applyRemoteOverrides(
  config: FoureyesConfig,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): FoureyesConfig {
  const raw = env.FOUREYES_REMOTE_OVERRIDES;
  if (!raw) return config;
  let overrides: unknown;
  try {
    overrides = JSON.parse(raw);
  } catch {
    throw new ConfigError(file, [
      'FOUREYES_REMOTE_OVERRIDES: expected a JSON object {"owner/repo": "remote"}, found text that is not JSON',
    ]);
  }
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides))
    throw new ConfigError(file, ['FOUREYES_REMOTE_OVERRIDES: expected a JSON object {"owner/repo": "remote"}']);
  const problems: string[] = [];
  const repositories = config.repositories.map((r) => ({ ...r }));
  for (const [name, remote] of Object.entries(overrides as Record<string, unknown>)) {
    const repo = repositories.find((r) => r.name.toLowerCase() === name.toLowerCase());
    if (!repo) problems.push(`FOUREYES_REMOTE_OVERRIDES: repository "${name}" is not configured`);
    else if (typeof remote !== 'string' || remote === '')
      problems.push(`FOUREYES_REMOTE_OVERRIDES: the remote of "${name}" must be a non-empty string`);
    else repo.remote = remote;
  }
  if (problems.length > 0) throw new ConfigError(file, problems);
  return { ...config, repositories };
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return `${where}: missing; expected ${issue.expected}`;
      return `${where}: expected ${issue.expected}, found ${describe(input)}`;
    case 'unrecognized_keys':
      return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; check the spelling against foureyes.example.yaml`;
    case 'invalid_value':
      return `${where}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, found ${describe(input)}`;
    default:
      return `${where}: ${issue.message}${input !== undefined ? `, found ${describe(input)}` : ''}`;
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `a list`;
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}
