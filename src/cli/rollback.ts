// `foureyes rollback <owner/repo> <environment> [--to <sha>] --reason <text> [--gateway URL] [--json] [--timeout 30m]`:
// ask for an environment to run an earlier release again, as yourself (your GitHub token). The gateway signs the
// request; the rollback workflow decides whether you may and which release, and this command follows it until
// it is done, failed or refused.
import { ChangeRefError, validateRepoName } from '../shared/change-ref.ts';
import { formatDuration, parseDuration } from '../shared/duration.ts';
import type { RollbackStatus } from '../shared/rollback.ts';
import { githubToken, readRefusal } from './approve.ts';
import { CliError, parseArgs } from './commands.ts';
import { callGateway, gatewayUrl, tokenRefused } from './gateway-client.ts';

const USAGE =
  'usage: foureyes rollback <owner/repo> <environment> [--to <sha>] --reason <text> [--gateway URL] [--json] [--timeout 30m]';
const POLL_MS = 500;
const DEFAULT_TIMEOUT_MS = 30 * 60_000;

type View = RollbackStatus & { status?: string };

function checkRepo(repo: string): void {
  const [owner, name, extra] = repo.split('/');
  try {
    if (extra !== undefined || name === undefined)
      throw new ChangeRefError(`invalid repository ${JSON.stringify(repo.slice(0, 80))}: expected owner/repo`);
    validateRepoName(owner ?? '', name);
  } catch (error) {
    if (error instanceof ChangeRefError) throw new CliError(`${error.message}\n${USAGE}`, 2);
    throw error;
  }
}

export async function run(args: string[]): Promise<number> {
  const { positionals, flags, options } = parseArgs(args, {
    flags: ['json', 'help'],
    options: ['to', 'reason', 'gateway', 'timeout'],
  });
  if (flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 2) throw new CliError(USAGE, 2);
  const [repo, environment] = positionals as [string, string];
  checkRepo(repo);
  const reason = options.get('reason')?.trim();
  // Checked here so that nothing is sent: the reason is part of the record of every rollback.
  if (!reason) throw new CliError(`--reason is required: say why you roll back (it is recorded)\n${USAGE}`, 2);
  const to = options.get('to');
  if (to !== undefined && !/^[0-9a-fA-F]{7,64}$/.test(to))
    throw new CliError(
      `--to: expected a commit SHA or its prefix (7 to 64 hex characters), found ${JSON.stringify(to.slice(0, 80))}`,
      2,
    );
  const timeoutMs = options.has('timeout') ? parseDuration(options.get('timeout') as string) : DEFAULT_TIMEOUT_MS;
  if (!timeoutMs || timeoutMs <= 0)
    throw new CliError(
      `--timeout: expected a duration such as 90s or 30m, found ${JSON.stringify(options.get('timeout'))}`,
      2,
    );
  const gateway = gatewayUrl(options.get('gateway'));
  const json = flags.has('json');
  const say = (line: string) => {
    // With --json, stdout carries the final status only; progress goes to stderr.
    if (json) console.error(line);
    else console.log(line);
  };
  const token = await githubToken();
  const headers = { authorization: `Bearer ${token}`, 'user-agent': 'foureyes-cli' };
  const asked = await callGateway(gateway, '/api/rollbacks', {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', 'x-foureyes-client': 'cli' },
    body: JSON.stringify({ repo, environment, ...(to ? { to } : {}), reason }),
  });
  const error = typeof asked.body.error === 'string' ? asked.body.error : `HTTP ${asked.status}`;
  if (asked.status === 401) throw tokenRefused(error);
  if (asked.status === 400 || asked.status === 404)
    throw new CliError(`the gateway refused the request: ${error}. Nothing was started`, 2);
  if (asked.status !== 202) throw new CliError(`the gateway could not start the rollback (${asked.status}): ${error}`);
  const id = String(asked.body.rollback);
  const statusPath = String(asked.body.status);
  say(`foureyes: rollback of ${repo} @ ${environment} asked (${id}); following it`);

  const deadline = Date.now() + timeoutMs;
  let last = '';
  let view: View | undefined;
  for (;;) {
    // Unreachable gateway or a 5xx while following: the rollback goes on regardless, so keep asking until the timeout.
    const answer = await callGateway(gateway, statusPath, { headers }).catch(() => undefined);
    if (answer) {
      const why = String(answer.body.error ?? `HTTP ${answer.status}`);
      const refused = readRefusal(answer.status, why);
      if (refused) throw new CliError(refused);
      if (answer.status === 404) throw new CliError(`${why}; the gateway started it but cannot find it now`);
      if (answer.status === 200) {
        view = answer.body as unknown as View;
        const line = `  ${view.stage.padEnd(16)} ${view.summary}`;
        if (line !== last) say(line);
        last = line;
        if (view.stage === 'done' || view.stage === 'failed' || view.stage === 'refused') break;
      }
    }
    if (Date.now() > deadline)
      throw new CliError(
        `rollback ${id} is still ${view ? `at ${view.stage}` : 'starting'} after ${formatDuration(timeoutMs)}; it goes on without this command: follow it at ${gateway}${statusPath}`,
      );
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  if (json) console.log(JSON.stringify(view, null, 2));
  else if (view.stage === 'done')
    say(
      `foureyes: done: ${repo} @ ${environment} runs ${view.headSha.slice(0, 12)} (${view.change}) again, approved by ${view.approvedBy.join(', ') || 'nobody recorded'}`,
    );
  else say(`foureyes: rollback ${view.stage.toUpperCase()}: ${view.summary}`);
  return view.stage === 'done' ? 0 : 1;
}
