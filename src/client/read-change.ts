// Reading a change as its operators see it: the workflow's status query plus what only the Temporal server knows
// (the steps it is retrying, a failed run's error), and what its environments' lanes know of it since (a release
// rolled back). One reader for the CLI and the gateway.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { laneIdFor, type LaneState } from '../shared/lane.ts';
import type { RollbackStatus } from '../shared/rollback.ts';
import type { ChangeStatus, EnvironmentStatus, RetryingStep } from '../shared/types.ts';
import { statusQuery } from '../workflows/definitions.ts';

/** The workflow's status plus the steps Temporal is retrying and why (the workflow cannot see its retries). */
export async function changeStatus(handle: WorkflowHandle): Promise<ChangeStatus> {
  const status = await handle.query(statusQuery);
  const described = await handle.describe().catch(() => undefined);
  const retrying: RetryingStep[] = (described?.raw.pendingActivities ?? [])
    .filter((a) => (a.attempt ?? 0) > 1 && a.lastFailure?.message)
    .map((a) => ({
      activity: a.activityType?.name ?? 'activity',
      attempt: a.attempt ?? 0,
      lastFailure: String(a.lastFailure?.message).slice(0, 500),
      ...(a.nextAttemptScheduleTime?.seconds
        ? { nextAttemptAt: new Date(Number(a.nextAttemptScheduleTime.seconds) * 1000).toISOString() }
        : {}),
    }));
  const failure = described?.status.name === 'FAILED' ? await failureOf(handle) : undefined;
  if (described) await markRolledBack(handle, status, described.taskQueue);
  return { ...status, ...(retrying.length > 0 ? { retrying } : {}), ...(failure ? { failure } : {}) };
}

/**
 * Each environment the change deployed to whose lane has since replaced that release by a rollback to another
 * (and does not run it again): from foureyes' own lane on the change's task queue, as that lane answers.
 */
async function markRolledBack(handle: WorkflowHandle, status: ChangeStatus, taskQueue: string): Promise<void> {
  const repo = status.change.split('#')[0] as string;
  for (const env of status.environments) {
    const sha = env.deploy?.sha;
    if (env.state !== 'deployed' || !sha) continue;
    const state = await laneState(handle, laneIdFor(repo, env.name, taskQueue), taskQueue);
    const rolledBack = state && (await rollbackOf(handle, state, env, sha));
    if (rolledBack) env.rolledBack = rolledBack;
  }
}

async function laneState(handle: WorkflowHandle, lane: string, taskQueue: string): Promise<LaneState | undefined> {
  const laneHandle = handle.client.getHandle(lane);
  const described = await laneHandle.describe().catch(() => undefined);
  // Anyone with Temporal access can start a workflow under a lane's ID; only foureyes' own lane is believed.
  if (described?.type !== 'laneWorkflow' || described.taskQueue !== taskQueue) return undefined;
  return laneHandle.query<LaneState>('state').catch(() => undefined);
}

async function rollbackOf(
  handle: WorkflowHandle,
  state: LaneState,
  env: EnvironmentStatus,
  sha: string,
): Promise<EnvironmentStatus['rolledBack']> {
  if (state.running?.sha === sha) return undefined;
  const releases = state.releases;
  let own = -1;
  for (let i = releases.length - 1; i >= 0 && own < 0; i--) {
    const r = releases[i];
    if (r?.workflowId === handle.workflowId && r.sha === sha && r.kind === 'change' && r.outcome === 'deployed')
      own = i;
  }
  if (own < 0) return undefined;
  // What replaced the change's release there: a rollback, or a newer release (then nothing to say).
  const next = releases.slice(own + 1).find((r) => r.outcome === 'deployed' && r.sha !== sha);
  if (next?.kind !== 'rollback') return undefined;
  const asked = await handle.client
    .getHandle(next.workflowId, next.runId)
    .query<RollbackStatus>('status')
    .catch(() => undefined);
  return {
    sha: next.sha,
    change: next.change,
    rollback: next.workflowId,
    at: next.endedAt,
    ...(asked?.requestedBy ? { by: asked.requestedBy } : {}),
  };
}

/** A failed run's error as the Temporal UI shows it (e.g. a refused start), for `foureyes status`. */
async function failureOf(handle: WorkflowHandle): Promise<ChangeStatus['failure']> {
  const error = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  const cause = (error instanceof WorkflowFailedError ? error.cause : error) as
    { type?: string; name?: string; message?: string } | undefined;
  return cause
    ? { type: cause.type ?? cause.name ?? 'Error', message: String(cause.message ?? '').slice(0, 1000) }
    : undefined;
}
