// `foureyes sandbox`: act as people in the GitHub stand-in of offline mode (open a pull request as one
// person, push as another, review as a third) and look at what foureyes reported on the pull request.
// Talks to the stand-in's control API: FOUREYES_GITHUB_STANDIN_URL, else the URL `foureyes up` wrote to
// <data>/github/standin.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dataDir } from '../paths.ts';
import { standinInfoFile } from '../github-standin/offline.ts';
import { CliError, parseArgs } from '../../cli/commands.ts';

const USAGE = `usage: foureyes sandbox <action> [options]

  open    --as LOGIN --title TEXT [--repo owner/repo] [--file PATH] [--content TEXT] [--message TEXT] [--co-author "Name <email>"]
  push    <number> --as LOGIN [--repo owner/repo] [--file PATH] [--content TEXT] [--message TEXT] [--co-author "Name <email>"]
  review  <number> --as LOGIN [--approve | --request-changes | --comment] [--body TEXT] [--commit SHA] [--repo owner/repo]
  dismiss <number> <review-id> --as LOGIN [--message TEXT] [--repo owner/repo]
  close   <number> --as LOGIN [--repo owner/repo]
  show    <number> [--repo owner/repo]        the pull request, its reviews, statuses, deployments and foureyes' comment
  token   LOGIN                               a stand-in token of LOGIN (for \`foureyes approve\` as that person)

The repository defaults to the first one of the stand-in (acme/shop with foureyes.example.yaml).`;

function standinUrl(): string {
  if (process.env.FOUREYES_GITHUB_STANDIN_URL) return process.env.FOUREYES_GITHUB_STANDIN_URL.replace(/\/+$/, '');
  const file = standinInfoFile(join(dataDir(), 'github'));
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { url: string }).url;
  } catch {
    throw new CliError(
      `no GitHub stand-in found (${file}): start foureyes without GitHub credentials (\`npm start\`) or set FOUREYES_GITHUB_STANDIN_URL`,
    );
  }
}

async function call(method: string, path: string, body?: unknown, token?: string): Promise<Record<string, unknown>> {
  const base = standinUrl();
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `token ${token}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new CliError(`the GitHub stand-in at ${base} does not answer; is \`npm start\` running?`);
  }
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new CliError(`stand-in: ${String(json.message ?? res.statusText)}`);
  return json;
}

function commitOf(options: Map<string, string>, fallback: string) {
  const message = options.get('message') ?? fallback;
  const coAuthor = options.get('co-author');
  const file = options.get('file') ?? `changes/${Date.now()}.txt`;
  return {
    message: coAuthor ? `${message}\n\nCo-authored-by: ${coAuthor}` : message,
    files: { [file]: `${options.get('content') ?? message}\n` },
  };
}

/** What every action needs: its arguments, the repository, and who acts on which pull request. */
interface Invocation {
  positionals: string[];
  flags: Set<string>;
  options: Map<string, string>;
  repo: string;
  as: () => string;
  number: () => number;
  report: (text: string, r: Record<string, unknown>) => void;
}

/** The stand-in's state as `show` reads it. */
interface StandinState {
  pulls: Array<{
    repo: string;
    number: number;
    title: string;
    author: string;
    headSha: string;
    state: string;
    merged: boolean;
  }>;
  reviews: Array<{ repo: string; pull: number; id: number; user: string; state: string; commitId: string }>;
  statuses: Array<{ repo: string; sha: string; context: string; state: string; description: string | null }>;
  checkRuns: Array<{ repo: string; headSha: string; name: string; status: string; conclusion: string | null }>;
  deployments: Array<{ repo: string; id: number; sha: string; environment: string }>;
  deploymentStatuses: Array<{ deploymentId: number; state: string }>;
  comments: Array<{ repo: string; issue: number; user: string; body: string }>;
}

type StandinPull = StandinState['pulls'][number];

async function open({ options, repo, as, report }: Invocation): Promise<number> {
  const title =
    options.get('title') ??
    (() => {
      throw new CliError('open needs --title', 2);
    })();
  const r = await call('POST', `/_standin/repos/${repo}/pulls`, {
    author: as(),
    title,
    commits: [commitOf(options, title)],
  });
  report(`opened ${repo}#${String(r.number)} as ${as()} at ${String(r.headSha).slice(0, 7)}`, r);
  return 0;
}

async function push({ options, repo, as, number, report }: Invocation): Promise<number> {
  const r = await call('POST', `/_standin/repos/${repo}/pulls/${number()}/commits`, {
    pusher: as(),
    commits: [commitOf(options, 'more changes')],
  });
  report(`pushed ${String(r.headSha).slice(0, 7)} to ${repo}#${number()} as ${as()}`, r);
  return 0;
}

async function review({ flags, options, repo, as, number, report }: Invocation): Promise<number> {
  const event = flags.has('request-changes') ? 'REQUEST_CHANGES' : flags.has('comment') ? 'COMMENT' : 'APPROVE';
  const r = await call('POST', `/_standin/repos/${repo}/pulls/${number()}/reviews`, {
    reviewer: as(),
    event,
    body: options.get('body') ?? '',
    ...(options.get('commit') ? { commitId: options.get('commit') } : {}),
  });
  report(
    `review ${String(r.reviewId)} (${event}) of ${String(r.commitId).slice(0, 7)} on ${repo}#${number()} by ${as()}`,
    r,
  );
  return 0;
}

async function dismiss({ positionals, options, repo, as, number, report }: Invocation): Promise<number> {
  const reviewId = Number(positionals[1]);
  if (!Number.isInteger(reviewId)) throw new CliError('dismiss needs the review id', 2);
  const r = await call('POST', `/_standin/repos/${repo}/pulls/${number()}/reviews/${reviewId}/dismissals`, {
    by: as(),
    message: options.get('message') ?? '',
  });
  report(`dismissed review ${reviewId} on ${repo}#${number()} as ${as()}`, r);
  return 0;
}

async function close({ repo, as, number, report }: Invocation): Promise<number> {
  const r = await call('POST', `/_standin/repos/${repo}/pulls/${number()}/close`, { by: as() });
  report(`closed ${repo}#${number()} as ${as()}`, r);
  return 0;
}

async function token({ positionals }: Invocation): Promise<number> {
  const login =
    positionals[0] ??
    (() => {
      throw new CliError('token needs a LOGIN', 2);
    })();
  const r = await call('POST', '/_standin/users', { login });
  console.log(String(r.token));
  return 0;
}

/** The pull request, its reviews, checks, statuses, deployments and foureyes' comment, as text. */
function describePull(s: StandinState, repo: string, pull: StandinPull): string {
  const n = pull.number;
  const lines = [
    `${repo}#${n} "${pull.title}" by ${pull.author}: ${pull.merged ? 'merged' : pull.state}, head ${pull.headSha.slice(0, 7)}`,
    '',
    'reviews:',
  ];
  for (const r of s.reviews.filter((x) => x.repo === pull.repo && x.pull === n))
    lines.push(`  ${r.id}  ${r.user}  ${r.state}  on ${r.commitId.slice(0, 7)}`);
  lines.push('', 'checks on the head:');
  for (const c of s.checkRuns.filter((x) => x.repo === pull.repo && x.headSha === pull.headSha))
    lines.push(`  ${c.name}: ${c.conclusion ?? c.status}`);
  const latest = new Map<string, { state: string; description: string | null }>();
  for (const st of s.statuses.filter((x) => x.repo === pull.repo && x.sha === pull.headSha)) latest.set(st.context, st);
  for (const [context, st] of latest)
    lines.push(`  ${context}: ${st.state}${st.description ? ` (${st.description})` : ''}`);
  lines.push('', 'deployments of the head:');
  for (const d of s.deployments.filter((x) => x.repo === pull.repo && x.sha === pull.headSha))
    lines.push(
      `  ${d.environment}: ${s.deploymentStatuses.filter((x) => x.deploymentId === d.id).at(-1)?.state ?? 'created'}`,
    );
  const comment = s.comments.find(
    (c) => c.repo === pull.repo && c.issue === n && c.body.startsWith('<!-- foureyes:summary -->'),
  );
  lines.push(
    '',
    'foureyes comment:',
    comment
      ? comment.body.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
      : '  (none yet)',
  );
  return lines.join('\n');
}

async function show({ flags, repo, number }: Invocation): Promise<number> {
  const s = (await call('GET', '/_standin/state')) as unknown as StandinState;
  const n = number();
  const pull = s.pulls.find((p) => p.repo.toLowerCase() === repo.toLowerCase() && p.number === n);
  if (!pull) throw new CliError(`no pull request ${repo}#${n}`);
  if (flags.has('json')) {
    console.log(
      JSON.stringify({ pull, reviews: s.reviews.filter((r) => r.repo === pull.repo && r.pull === n) }, null, 2),
    );
    return 0;
  }
  console.log(describePull(s, repo, pull));
  return 0;
}

const ACTIONS: Record<string, (invocation: Invocation) => Promise<number>> = {
  open,
  push,
  review,
  dismiss,
  close,
  token,
  show,
};

export async function run(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (!action || action === '--help' || action === '-h') {
    console.log(USAGE);
    return action ? 0 : 2;
  }
  const { positionals, flags, options } = parseArgs(rest, {
    flags: ['approve', 'request-changes', 'comment', 'json'],
    options: ['as', 'title', 'repo', 'file', 'content', 'message', 'co-author', 'body', 'commit'],
  });
  const state = async () => (await call('GET', '/_standin/state')) as { repos: Array<{ owner: string; name: string }> };
  const repo =
    options.get('repo') ??
    (await state().then((s) => (s.repos[0] ? `${s.repos[0].owner}/${s.repos[0].name}` : undefined)));
  if (!repo) throw new CliError('the stand-in has no repository; pass --repo');
  const as = () =>
    options.get('as') ??
    (() => {
      throw new CliError(`${action} needs --as LOGIN (who acts)`, 2);
    })();
  const number = () => {
    const n = Number(positionals[0]);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`${action} needs the pull request number`, 2);
    return n;
  };
  const report = (text: string, r: Record<string, unknown>) =>
    console.log(
      `${text}${r.status ? ` (webhook answered ${String(r.status)})` : r.deliveryId ? ' (webhook not answered: is the gateway up?)' : ''}`,
    );
  const act = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
  if (!act) throw new CliError(`unknown sandbox action "${action}"\n\n${USAGE}`, 2);
  return act({ positionals, flags, options, repo, as, number, report });
}
