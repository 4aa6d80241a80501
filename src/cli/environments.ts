// `foureyes environments [owner/repo] [--env name] [--last N] [--json] [--gateway URL]`: what runs where — per
// environment the release running now (SHA, change, approvers, deployed at), the changes waiting for its lane,
// and the last releases. Read through the gateway (GET /api/environments/…) with FOUREYES_GATEWAY_TOKEN (an
// operator token) or your GitHub token (GITHUB_TOKEN or `gh auth token`), which must be able to read the repository.
import type { EnvironmentView } from '../shared/lane.ts';
import { validateRepoName, ChangeRefError } from '../shared/change-ref.ts';
import { CliError, parseArgs } from './commands.ts';
import { readRefusal, readToken } from './approve.ts';
import { gatewayUrl, unreachable } from './gateway-client.ts';

const USAGE = 'usage: foureyes environments [owner/repo] [--env name] [--last N] [--json] [--gateway URL]';

export async function run(args: string[]): Promise<number> {
  const { positionals, flags, options } = parseArgs(args, {
    flags: ['json', 'help'],
    options: ['env', 'last', 'gateway'],
  });
  if (flags.has('help')) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 1) throw new CliError(USAGE, 2);
  const repo = positionals[0];
  if (repo !== undefined) {
    const [owner, name, extra] = repo.split('/');
    try {
      if (extra !== undefined || name === undefined)
        throw new ChangeRefError(`invalid repository ${JSON.stringify(repo.slice(0, 80))}: expected owner/repo`);
      validateRepoName(owner ?? '', name);
    } catch (error) {
      if (error instanceof ChangeRefError) throw new CliError(error.message, 2);
      throw error;
    }
  }
  if (options.has('env') && !repo)
    throw new CliError('--env needs a repository: foureyes environments owner/repo --env name', 2);
  const gateway = gatewayUrl(options.get('gateway'));
  const path = [
    '/api/environments',
    ...(repo ? repo.split('/').map(encodeURIComponent) : []),
    ...(options.has('env') ? [encodeURIComponent(options.get('env') as string)] : []),
  ].join('/');
  const query = options.has('last') ? `?last=${encodeURIComponent(options.get('last') as string)}` : '';
  const token = await readToken();
  let response: Response;
  try {
    response = await fetch(`${gateway}${path}${query}`, {
      headers: { authorization: `Bearer ${token}`, 'user-agent': 'foureyes-cli' },
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw unreachable(gateway, error);
  }
  const body = (await response.json().catch(() => ({}))) as { environments?: EnvironmentView[]; error?: string };
  const refused = readRefusal(response.status, body.error ?? 'no reason given');
  if (refused) throw new CliError(refused);
  if (response.status !== 200)
    throw new CliError(
      `the gateway answered ${response.status}: ${body.error ?? 'no reason given'}`,
      response.status === 400 ? 2 : 1,
    );
  const views = body.environments ?? [];
  console.log(flags.has('json') ? JSON.stringify(views, null, 2) : formatEnvironments(views));
  return 0;
}

function releaseKind(r: { kind: string; emergency?: string }): string {
  if (r.emergency) return ` (EMERGENCY, declared by ${r.emergency}, no approval before it ran)`;
  return r.kind === 'rollback' ? ' (rollback)' : '';
}

export function formatEnvironments(views: EnvironmentView[]): string {
  const lines: string[] = [];
  for (const v of views) {
    lines.push(`${v.repo} @ ${v.environment}`);
    const r = v.running;
    lines.push(
      r
        ? `  running      ${r.sha.slice(0, 12)}  ${r.change}${releaseKind(r)}  approved by ${r.approvers.join(', ') || '(none)'}  deployed ${r.endedAt}`
        : '  running      nothing deployed through foureyes yet',
    );
    if (v.holder)
      lines.push(
        `  deploying    ${v.holder.sha.slice(0, 12)}  ${v.holder.change} since ${v.holder.grantedAt ?? v.holder.requestedAt}`,
      );
    if (v.grace) lines.push(`  holding      no grant before ${v.grace.until}: ${v.grace.reason}`);
    for (const [i, t] of v.queue.entries())
      lines.push(
        `  ${i === 0 ? 'waiting' : ''.padEnd(7)}      ${t.sha.slice(0, 12)}  ${t.change} since ${t.requestedAt}`,
      );
    if (v.releases.length) lines.push('  releases (newest first):');
    for (const x of v.releases)
      lines.push(
        `    ${x.endedAt}  ${x.sha.slice(0, 12)}  ${x.change}${releaseKind(x)}  ${x.outcome}${x.outcome === 'deployed' ? ` (approved by ${x.approvers.join(', ') || 'none'})` : `: ${x.reason}`}`,
      );
  }
  return lines.join('\n');
}
