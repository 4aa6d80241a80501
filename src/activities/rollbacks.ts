// Orchestrator activity: what a rollback run needs to decide, looked up by the orchestrator itself — the policy
// from trusted configuration, how many runs its workflow ID already had (a signed request runs once), and the
// environment's release history from its lane, believed only from a lane running foureyes' code; and the
// approvals its target was delivered with, from the change run that delivered it.
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FoureyesConfig } from '../config/schema.ts';
import { laneIdFor, type LaneRelease, type LaneState } from '../shared/lane.ts';
import type { RollbackEvidence } from '../shared/rollback.ts';
import type { ChangePolicy, ChangeStatus } from '../shared/types.ts';
import { policyFor } from './policy.ts';

export interface BeginRollbackInput {
  workflowId: string;
  runId: string;
  repo: string;
  environment: string;
}

export interface BeginRollbackResult {
  policy: ChangePolicy;
  /** Other runs under this workflow ID, as the server lists them. */
  earlierRuns: number;
  lane: string;
  /** The environment's releases, oldest first (none: nothing was ever deployed through its lane). */
  releases: LaneRelease[];
  running?: LaneRelease;
}

export interface RollbackEvidenceInput {
  /** The rollback run asking. */
  workflowId: string;
  runId: string;
  /** The change run that delivered the target (its LaneRelease), and the SHA. */
  release: { workflowId: string; runId: string; sha: string };
}

export function createRollbackActivities(getConfig: () => FoureyesConfig, approvalKeys: string[]) {
  return {
    async beginRollback(input: BeginRollbackInput): Promise<BeginRollbackResult> {
      const policy = policyFor(getConfig(), input.repo, approvalKeys);
      const client = Context.current().client;
      const taskQueue = (await client.workflow.getHandle(input.workflowId, input.runId).describe()).taskQueue;
      let earlierRuns = 0;
      for await (const e of client.workflow.list({ query: `WorkflowId = ${JSON.stringify(input.workflowId)}` }))
        if (e.runId !== input.runId) earlierRuns++;
      const lane = laneIdFor(input.repo, input.environment, taskQueue);
      const handle = client.workflow.getHandle(lane);
      let described;
      try {
        described = await handle.describe();
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return { policy, earlierRuns, lane, releases: [] };
        throw error;
      }
      // Anyone with Temporal access can start a workflow under a lane's ID; only foureyes' own lane is believed.
      if (described.type !== 'laneWorkflow' || described.taskQueue !== taskQueue)
        return { policy, earlierRuns, lane, releases: [] };
      // A lane terminated by someone with Temporal access still answers from its history, and the run that the
      // rollback's own request starts takes over the same releases; each target's approvals are looked up again anyway.
      const state = await handle.query<LaneState>('state').catch((error: unknown) => {
        if (described.status.name === 'RUNNING') throw error;
        return undefined;
      });
      if (!state || state.v !== 1 || state.lane !== lane) return { policy, earlierRuns, lane, releases: [] };
      return {
        policy,
        earlierRuns,
        lane,
        releases: state.releases,
        ...(state.running ? { running: state.running } : {}),
      };
    },

    /**
     * The target's approvals as the change run that delivered it answers (its status query, replayed from its
     * history), believed only from a foureyes change on the rollback's own task queue.
     */
    async lookUpRollbackEvidence(input: RollbackEvidenceInput): Promise<RollbackEvidence> {
      const client = Context.current().client;
      const taskQueue = (await client.workflow.getHandle(input.workflowId, input.runId).describe()).taskQueue;
      const { workflowId, runId, sha } = input.release;
      const handle = client.workflow.getHandle(workflowId, runId);
      const none = (reason: string): RollbackEvidence => ({ found: false, reason, initiators: [], approvals: [] });
      let described;
      try {
        described = await handle.describe();
      } catch (error) {
        if (error instanceof WorkflowNotFoundError)
          return none(`run ${runId} of ${workflowId} is no longer in Temporal`);
        throw error;
      }
      // Only the run the lane recorded delivering it: an empty run ID would read the change's latest run instead.
      if (described.runId !== runId) return none(`the release names no run of ${workflowId} (run ${runId || 'empty'})`);
      if (described.type !== 'changeWorkflow' || described.taskQueue !== taskQueue)
        return none(`run ${runId} of ${workflowId} is not a foureyes change on ${taskQueue}`);
      let status: ChangeStatus;
      try {
        status = await handle.query<ChangeStatus>('status');
      } catch (error) {
        return none(
          `run ${runId} of ${workflowId} did not answer: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      return {
        found: true,
        initiators: status.initiators ?? [],
        approvals: (status.approvals ?? []).filter((a) => a.claim?.sha === sha),
      };
    },
  };
}
