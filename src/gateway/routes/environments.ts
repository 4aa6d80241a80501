// GET /api/environments[/{owner}/{repo}[/{environment}]]: per environment of each configured repository, the
// release running there now (SHA, change, approvers, deployed at), the changes waiting for its lane, and the
// last releases, as the environment's lane workflow answers.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { FoureyesConfig } from '../../config/schema.ts';
import { laneIdFor, type EnvironmentView, type LaneState } from '../../shared/lane.ts';

export type { EnvironmentView };
import { laneStateQuery } from '../../workflows/lane.ts';
import type { RouteHandler } from '../app.ts';
import { HttpError, sendJson } from '../http.ts';
import { bearerToken } from '../approvals/github-token.ts';
import { ReadAccess } from '../read-access.ts';
import { ChangeRefError, validateRepoName } from '../../shared/change-ref.ts';

export const DEFAULT_LAST = 10;
const MAX_LAST = 200;

/** Each configured environment of `repos` (default: every configured repository), in configured order. */
export async function environmentsOf(
  client: Client,
  config: FoureyesConfig,
  options: { repo?: string; environment?: string; last?: number; taskQueue?: string } = {},
): Promise<EnvironmentView[]> {
  const repos = options.repo
    ? config.repositories.filter((r) => r.name.toLowerCase() === options.repo?.toLowerCase())
    : config.repositories;
  if (options.repo && repos.length === 0)
    throw new HttpError(404, `repository ${options.repo} is not configured in foureyes.yaml`);
  const views: EnvironmentView[] = [];
  for (const repo of repos) {
    const names = repo.environments ?? config.environments.map((e) => e.name);
    if (options.environment && !names.includes(options.environment))
      throw new HttpError(404, `${repo.name} has no environment ${options.environment} (it has ${names.join(', ')})`);
    for (const environment of options.environment ? [options.environment] : names) {
      const lane = laneIdFor(repo.name, environment, options.taskQueue);
      const state = await laneStateOf(client, lane);
      views.push({
        repo: repo.name,
        environment,
        lane,
        ...(state?.running ? { running: state.running } : {}),
        ...(state?.holder ? { holder: state.holder } : {}),
        ...(state?.grace && Date.parse(state.grace.until) > Date.now() ? { grace: state.grace } : {}),
        queue: state?.queue ?? [],
        releases: (state?.releases ?? []).slice(-(options.last ?? DEFAULT_LAST)).reverse(),
      });
    }
  }
  return views;
}

/** The lane's state; undefined when nothing deployed there through a lane yet. */
export async function laneStateOf(client: Client, lane: string): Promise<LaneState | undefined> {
  try {
    return await client.workflow.getHandle(lane).query(laneStateQuery);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return undefined;
    throw error;
  }
}

export function lastParam(raw: string | null): number {
  if (raw === null) return DEFAULT_LAST;
  if (!/^[0-9]{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LAST)
    throw new HttpError(
      400,
      `last: expected a whole number from 1 to ${MAX_LAST}, found ${JSON.stringify(raw.slice(0, 20))}`,
    );
  return Number(raw);
}

export const handleGetEnvironments: RouteHandler = async (req, res, params, ctx) => {
  bearerToken(req.headers); // 401 at once without a token
  const url = new URL(req.url ?? '/', 'http://gateway');
  const last = lastParam(url.searchParams.get('last'));
  const repo = params.owner && params.repo ? `${params.owner}/${params.repo}` : undefined;
  if (repo) {
    try {
      validateRepoName(params.owner ?? '', params.repo ?? '');
    } catch (error) {
      if (error instanceof ChangeRefError) throw new HttpError(400, error.message);
      throw error;
    }
  }
  const environment = params.environment;
  const taskQueue = ctx.env.FOUREYES_TASK_QUEUE || 'foureyes';
  const access = ctx.readAccess ?? new ReadAccess();
  const config = ctx.config();
  // Asked before saying whether a repository is configured, so a stranger learns nothing about the set-up.
  if (repo) await access.requireReader(req, ctx.env, repo);
  const readable = repo
    ? undefined
    : await access.readable(
        req,
        ctx.env,
        config.repositories.map((r) => r.name),
      );
  if (readable && readable.length === 0 && config.repositories.length > 0)
    throw new HttpError(
      403,
      'your GitHub token cannot read any repository foureyes delivers: ask for read access, or use a token that has it',
    );
  const visible = readable
    ? { ...config, repositories: config.repositories.filter((r) => readable.includes(r.name)) }
    : config;
  sendJson(res, 200, {
    environments: await environmentsOf(ctx.client, visible, {
      ...(repo ? { repo } : {}),
      ...(environment ? { environment } : {}),
      last,
      taskQueue,
    }),
  });
};
