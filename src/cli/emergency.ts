// `foureyes emergency <owner/repo#number> --reason <text> [--sha <head>] [--env name]... [--gateway URL] [--json]`:
// break-glass, as yourself (your GitHub token). The gateway signs the declaration; the change's workflow decides
// whether you may, opens the gates for that exact head for a while, and holds the change until someone eligible
// who took no part in it reviews it. This prints what was decided and what is owed now.
import { reasonText } from '../policy/sod.ts';
import { formatChangeRef } from '../shared/change-ref.ts';
import type { EmergencyOutcome } from '../shared/emergency.ts';
import { githubToken } from './approve.ts';
import { changeRefArg, CliError, parseArgs } from './commands.ts';
import { callGateway, gatewayUrl, tokenRefused } from './gateway-client.ts';

const USAGE =
  'usage: foureyes emergency <owner/repo#number> --reason <text> [--sha <head>] [--env name]... [--gateway URL] [--json]';

export async function run(args: string[]): Promise<number> {
  const { positionals, flags, options, lists } = parseArgs(args, {
    flags: ['json', 'help'],
    options: ['reason', 'sha', 'env', 'gateway'],
  });
  if (flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(USAGE, 2);
  const ref = changeRefArg(positionals[0] as string);
  const change = formatChangeRef(ref);
  const reason = options.get('reason')?.trim();
  // Checked here so that nothing is sent: the reason is recorded and announced with the emergency.
  if (!reason) throw new CliError(`--reason is required: say why this is an emergency (it is recorded)\n${USAGE}`, 2);
  const sha = options.get('sha');
  if (sha !== undefined && !/^[0-9a-fA-F]{40}$/.test(sha))
    throw new CliError(`--sha: expected the full 40-character head SHA, found ${JSON.stringify(sha.slice(0, 80))}`, 2);
  // `--env a --env b` or `--env a,b`.
  const environments = (lists.get('env') ?? [])
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter(Boolean);
  const gateway = gatewayUrl(options.get('gateway'));
  const token = await githubToken();
  const path = `/api/changes/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}/${ref.number}/emergency`;
  const answer = await callGateway(gateway, path, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'user-agent': 'foureyes-cli',
      'content-type': 'application/json',
      'x-foureyes-client': 'cli',
    },
    body: JSON.stringify({ reason, ...(sha ? { sha } : {}), ...(environments.length ? { environments } : {}) }),
  });
  const error = typeof answer.body.error === 'string' ? answer.body.error : `HTTP ${answer.status}`;
  if (answer.status === 401) throw tokenRefused(error);
  if (answer.status === 400) throw new CliError(`the gateway refused the request: ${error}. Nothing was declared`, 2);
  if (answer.status === 404) throw new CliError(`${error}. Check the reference, or open the pull request first`);
  // 403: you may not declare here; 409: the workflow refused this declaration. Both are answers, not failures.
  if (answer.status === 403 || (answer.status === 409 && typeof answer.body.taken === 'boolean')) {
    if (flags.has('json')) console.log(JSON.stringify({ taken: false, reason: error }, null, 2));
    else console.log(`foureyes: the emergency for ${change} was REFUSED: ${reasonText(error)}`);
    return 1;
  }
  if (answer.status !== 200)
    throw new CliError(`the gateway could not declare the emergency (${answer.status}): ${error}`);
  const outcome = answer.body as unknown as EmergencyOutcome;
  if (flags.has('json')) {
    console.log(JSON.stringify(outcome, null, 2));
    return 0;
  }
  const e = outcome.emergency;
  if (!e) {
    console.log(`foureyes: EMERGENCY declared for ${change}: ${outcome.reason}`);
    return 0;
  }
  const short = e.sha.slice(0, 7);
  console.log(
    `EMERGENCY declared for ${change} @ ${short} (${e.environments.join(', ')}) by ${e.declaredBy}: gates open until ${e.windowEndsAt}; retroactive review due ${e.reviewDueAt}: an eligible person who took no part in it approves ${short} (foureyes approve ${change})`,
  );
  return 0;
}
