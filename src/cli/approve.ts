// `foureyes approve <ref> [--reject] [--comment text] [--env name] [--sha commit] [--gateway URL]`: approve (or
// reject) a change as yourself, at the commit you reviewed (the head it shows you, or --sha). Your identity is
// your GitHub token (GITHUB_TOKEN or `gh auth token`), which the gateway checks against GitHub; the answer
// says whether the approval counted and why.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dataDir, operatorTokenPath } from '../config/paths.ts';
import { reasonText } from '../policy/sod.ts';
import { formatStatus } from '../presentation/texts.ts';
import { promisify } from 'node:util';
import { formatChangeRef, type ChangeRef } from '../shared/change-ref.ts';
import type { ApprovalOutcome, ChangeStatus } from '../shared/types.ts';
import { changeRefArg, CliError, parseArgs } from './commands.ts';
import { callGateway, gatewayUrl, tokenRefused } from './gateway-client.ts';

const USAGE =
  'usage: foureyes approve <owner/repo#number> [--reject] [--comment text] [--env name] [--sha commit] [--gateway URL]';

export async function githubToken(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const fromEnv = env.GITHUB_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  try {
    const { stdout } = await promisify(execFile)('gh', ['auth', 'token'], { timeout: 10_000, env });
    const token = stdout.trim();
    if (token) return token;
  } catch {
    // fall through to the message below
  }
  throw new CliError(
    'no GitHub token: set GITHUB_TOKEN, or install the GitHub CLI and run `gh auth login` (foureyes uses `gh auth token`)',
  );
}

/**
 * The token the CLI reads changes and environments with: an operator token for the gateway
 * (FOUREYES_GATEWAY_TOKEN) when set, else your own GitHub token, which must be able to read the repository.
 */
export async function readToken(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const explicit = env.FOUREYES_GATEWAY_TOKEN?.trim();
  if (explicit) return explicit;
  // On the machine that runs `foureyes up`: its data folder (which holds the signing keys too) has one.
  try {
    const local = readFileSync(operatorTokenPath(dataDir(env)), 'utf8').trim();
    if (local) return local;
  } catch {
    // no local stack here: your own GitHub token
  }
  return githubToken(env);
}

/** What to do about a 401 or 403 from a read endpoint; undefined for any other status. */
export function readRefusal(status: number, reason: string): string | undefined {
  if (status === 401)
    return `the gateway did not accept your token: ${reason}. Set GITHUB_TOKEN to a valid token of your own (or run \`gh auth login\`), or FOUREYES_GATEWAY_TOKEN to an operator token of this gateway`;
  if (status === 403)
    return `the gateway refused: ${reason}. Ask for read access to the repository on GitHub, or set FOUREYES_GATEWAY_TOKEN to an operator token of this gateway`;
  return undefined;
}

function apiPath(ref: ChangeRef): string {
  return `/api/changes/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}/${ref.number}`;
}

export async function run(args: string[]): Promise<number> {
  const { positionals, flags, options } = parseArgs(args, {
    flags: ['reject', 'help'],
    options: ['comment', 'env', 'gateway', 'sha'],
  });
  if (flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(USAGE, 2);
  const ref = changeRefArg(positionals[0] as string);
  const gateway = gatewayUrl(options.get('gateway'));
  const token = await githubToken();
  const decision = flags.has('reject') ? 'reject' : 'approve';
  const change = formatChangeRef(ref);
  const headers = { authorization: `Bearer ${token}`, 'user-agent': 'foureyes-cli' };
  // An approval counts for the commit you saw: without --sha, the head is read and shown first, and sent.
  let sha = options.get('sha');
  if (!sha) {
    const current = await callGateway(gateway, apiPath(ref), { headers });
    const refused = readRefusal(current.status, String(current.body.error ?? `HTTP ${current.status}`));
    if (refused) throw new CliError(refused);
    if (current.status === 404)
      throw new CliError(
        `${String(current.body.error ?? `no change ${change}`)}. Check the reference, or open the pull request first`,
      );
    if (current.status !== 200)
      throw new CliError(
        `cannot read the head of ${change} from the gateway (${current.status}): ${String(current.body.error ?? '')}; pass the commit you reviewed with --sha`,
      );
    const status = current.body as unknown as ChangeStatus;
    if (!status.headSha)
      throw new CliError(`${change} has no head commit yet (${status.waitingFor}); try again in a moment`);
    sha = status.headSha;
    console.log(
      `foureyes: ${decision === 'reject' ? 'requesting changes to' : 'approving'} ${change} at ${sha.slice(0, 12)}: ${status.title}`,
    );
  }
  const body = {
    decision,
    sha,
    ...(options.has('comment') ? { comment: options.get('comment') } : {}),
    ...(options.has('env') ? { environment: options.get('env') } : {}),
  };
  const started = performance.now();
  const answer = await callGateway(gateway, `${apiPath(ref)}/approvals`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', 'x-foureyes-client': 'cli' },
    body: JSON.stringify(body),
  });
  const error = typeof answer.body.error === 'string' ? answer.body.error : `HTTP ${answer.status}`;
  if (answer.status === 401) throw tokenRefused(error);
  if (answer.status === 404) throw new CliError(`${error}. Check the reference, or open the pull request first`);
  if (answer.status === 400) throw new CliError(`the gateway refused the request: ${error}`, 2);
  if (answer.status !== 200)
    throw new CliError(`the gateway could not record the ${decision} (${answer.status}): ${error}`);
  const answeredMs = Math.round(performance.now() - started);
  const outcome = answer.body as unknown as ApprovalOutcome;
  const what = decision === 'reject' ? 'rejection' : 'approval';
  if (outcome.counted)
    console.log(
      `foureyes: your ${what} of ${change} was accepted${outcome.environments.length ? ` for ${outcome.environments.join(', ')}` : ''}: ${reasonText(outcome.reason)}`,
    );
  else console.log(`foureyes: your ${what} of ${change} was REFUSED: ${reasonText(outcome.reason)}`);
  console.log(`  (answered in ${answeredMs} ms; stage ${outcome.stage})`);

  const status = await callGateway(gateway, apiPath(ref), { headers }).catch(() => undefined);
  if (status?.status === 200) console.log(`\n${formatStatus(status.body as unknown as ChangeStatus)}`);
  else
    console.log(
      `\n(status unavailable: ${status ? String(status.body.error ?? status.status) : 'gateway unreachable'}; try \`foureyes status ${change}\`)`,
    );
  return outcome.counted ? 0 : 1;
}
