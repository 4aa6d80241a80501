// The command table of the CLI. Commands are loaded lazily so `foureyes status` does not pay for `up`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ChangeRefError, parseChangeRef, type ChangeRef } from '../shared/change-ref.ts';

export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** A change reference given on the command line; a malformed one is a usage error (exit 2) that says why. */
export function changeRefArg(text: string): ChangeRef {
  try {
    return parseChangeRef(text);
  } catch (error) {
    if (error instanceof ChangeRefError) throw new CliError(error.message, 2);
    throw error;
  }
}

export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number | void>;
}

const lazy = (
  summary: string,
  usageText: string,
  load: () => Promise<{ run(args: string[]): Promise<number | void> }>,
): Command => ({
  summary,
  usage: usageText,
  run: async (args) => (await load()).run(args),
});

// Development commands live in src/dev, which the production image leaves out (.dockerignore). They are
// reached only through import() here, so every other command loads without that folder.
const devFolder = fileURLToPath(new URL('../dev/', import.meta.url));

const dev = (
  name: string,
  summary: string,
  usageText: string,
  load: () => Promise<{ run(args: string[]): Promise<number | void> }>,
): Command =>
  lazy(summary, usageText, async () => {
    if (!existsSync(devFolder))
      throw new CliError(
        `${name} is a development command; it is not in the production image — run it from a checkout`,
      );
    return load();
  });

export const commands: Record<string, Command> = {
  up: dev(
    'up',
    'start the local stack: Temporal, OpenBao, the three workers and the gateway',
    'foureyes up',
    () => import('../dev/cli/up.ts'),
  ),
  setup: dev(
    'setup',
    "github: create foureyes' GitHub App in one step (App manifest flow); `up` then uses it",
    'foureyes setup github [--github-url URL] [--org NAME] [--webhook-url URL] [--print]',
    () => import('../dev/cli/setup-github.ts'),
  ),
  tools: dev(
    'tools',
    'install the pinned temporal and bao binaries if they are missing',
    'foureyes tools',
    () => import('../dev/cli/tools.ts'),
  ),
  status: lazy(
    'show a change: stage, head SHA, initiators, approvals, deployments',
    'foureyes status <owner/repo#number> [--json]',
    () => import('./status.ts'),
  ),
  environments: lazy(
    'show what runs where: per environment the running release, the queue of its lane, the last releases',
    'foureyes environments [owner/repo] [--env name] [--last N] [--json] [--gateway URL]',
    () => import('./environments.ts'),
  ),
  approve: lazy(
    'approve (or --reject) a change as yourself, with your GitHub token',
    'foureyes approve <owner/repo#number> [--reject] [--comment text] [--env name] [--gateway URL]',
    () => import('./approve.ts'),
  ),
  rollback: lazy(
    'ask for an environment to run an earlier release of it again (approved and delivered there before)',
    'foureyes rollback <owner/repo> <environment> [--to <sha>] --reason <text> [--gateway URL] [--json] [--timeout 30m]',
    () => import('./rollback.ts'),
  ),
  emergency: lazy(
    "break-glass: declare that a change's head must deploy before its approvals (reviewed retroactively)",
    'foureyes emergency <owner/repo#number> --reason <text> [--sha <head>] [--env name]... [--gateway URL] [--json]',
    () => import('./emergency.ts'),
  ),
  audit: lazy(
    'export the audit record of a change (or of a repository over a period)',
    'foureyes audit <owner/repo#number> [--format md|json|csv] [--run <runId>] | --repo owner/repo --since <date> [--until <date>] [--format json|md|csv] [--table changes|emergencies]',
    () => import('./audit.ts'),
  ),
  'verify-audit': lazy(
    'check the hash chain and signature of an audit export (and, with --rederive, against history)',
    'foureyes verify-audit <file.json> [--public-key hex] [--rederive]',
    () => import('./verify-audit.ts'),
  ),
  bundle: lazy(
    'build the workflow bundle into FOUREYES_WORKFLOW_BUNDLE (image build time)',
    'foureyes bundle',
    () => import('./bundle.ts'),
  ),
  gateway: lazy('run the HTTP gateway (production entry point)', 'foureyes gateway', () => import('./gateway.ts')),
  worker: lazy(
    "run one trust zone's worker (production entry point)",
    'foureyes worker orchestrator|checks|deploy',
    () => import('./worker.ts'),
  ),
  sandbox: dev(
    'sandbox',
    'act as people in the offline GitHub stand-in: open a pull request, push, review, show',
    'foureyes sandbox <open|push|review|dismiss|close|show|token> [options]',
    () => import('../dev/cli/sandbox.ts'),
  ),
};

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: foureyes <command> [options]',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `foureyes <command> --help` for its options.',
  ].join('\n');
}

/** Minimal flag parsing: --name value, --flag, and positionals; `lists` holds every value of a repeated option. */
export function parseArgs(
  args: string[],
  spec: { flags?: string[]; options?: string[] },
): { positionals: string[]; flags: Set<string>; options: Map<string, string>; lists: Map<string, string[]> } {
  const positionals: string[] = [];
  const flags = new Set<string>();
  const options = new Map<string, string>();
  const lists = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg.startsWith('--')) {
      const [key, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
      if (spec.flags?.includes(key)) flags.add(key);
      else if (spec.options?.includes(key)) {
        const value = inline ?? args[++i];
        if (value === undefined) throw new CliError(`option --${key} needs a value`, 2);
        options.set(key, value);
        lists.set(key, [...(lists.get(key) ?? []), value]);
      } else throw new CliError(`unknown option --${key}`, 2);
    } else positionals.push(arg);
  }
  return { positionals, flags, options, lists };
}
