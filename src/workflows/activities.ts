// Every activity the change workflow calls, with its options, in one place: the orchestrator's own (trusted
// configuration, the change's history, GitHub, chat), the checks zone and each environment's deploy zone.
import { ActivityCancellationType, patched, proxyActivities, uuid4, workflowInfo } from '@temporalio/workflow';
import type { ChecksActivities, DeployActivities, OrchestratorActivities } from '../activities/interfaces.ts';
import { laneActivityPrefix } from '../shared/lane.ts';
import { PER_ENVIRONMENT_DEPLOYER_PATCH } from '../shared/patches.ts';
import { deployQueue, zoneQueue } from '../shared/task-queues.ts';
import type { EnvironmentPolicy } from '../shared/types.ts';

/** Trusted configuration and the change's own history: a few quick retries; an unknown repository is final. */
export const orchestrator = proxyActivities<OrchestratorActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['UnknownRepository'] },
});

/**
 * Reads of the pull request at GitHub. Retried for a few minutes (GitHub or the network down, rate limits);
 * after that the head fails safe: nobody can approve it and nothing delivers it.
 */
export const github = proxyActivities<OrchestratorActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['UnknownRepository'],
  },
});

/** Reporting to GitHub and chat: best effort, bounded; never holds up or fails the change. */
export const reporting = proxyActivities<OrchestratorActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
});

export function checksZone(): ChecksActivities {
  return proxyActivities<ChecksActivities>({
    taskQueue: zoneQueue(workflowInfo().taskQueue, 'checks'),
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '30 seconds',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['UnknownRepository'] },
  });
}

/** A deploy step may take its configured timeout, plus the time to lease and revoke. */
const DEPLOY_MARGIN_MS = 120_000;

/**
 * The deploy zone of one environment: deploy, verify and the revoke backstop, on the environment's own queue
 * (its worker holds only that environment's AppRole). Runs recorded before the patch keep the shared queue.
 */
export function deployZone(env: EnvironmentPolicy): {
  deployer: DeployActivities;
  verifier: DeployActivities;
  revoker: DeployActivities;
} {
  const workflowQueue = workflowInfo().taskQueue;
  const taskQueue = patched(PER_ENVIRONMENT_DEPLOYER_PATCH)
    ? deployQueue(workflowQueue, env.name)
    : zoneQueue(workflowQueue, 'deploy');
  return {
    deployer: proxyActivities<DeployActivities>({
      taskQueue,
      startToCloseTimeout: env.deployTimeoutMs + DEPLOY_MARGIN_MS,
      heartbeatTimeout: '30 seconds',
      // Revoke only once the step has really stopped, or it could lease again after the revoke.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      // What throws retryably is infrastructure (OpenBao or the git remote unreachable, a dead worker): wait for it
      // with backoff instead of failing the change after three quick attempts. Status shows the last failure.
      retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
    }),
    verifier: proxyActivities<DeployActivities>({
      taskQueue,
      startToCloseTimeout: (env.verifyTimeoutMs ?? 0) + DEPLOY_MARGIN_MS,
      heartbeatTimeout: '30 seconds',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { maximumAttempts: 2 },
    }),
    revoker: proxyActivities<DeployActivities>({
      taskQueue,
      startToCloseTimeout: '2 minutes',
      retry: { maximumAttempts: 10 },
    }),
  };
}

/**
 * The environment's lane, taken and given back from the orchestrator. The activity ID names the lane: the lane
 * believes a request only while an activity of this workflow with such an ID is pending. Each waits for the
 * lane's answer; cancelled, it ends before delivery goes on (so a release never overtakes its own request).
 */
export function laneActivities(kind: 'acquire' | 'release', repo: string, environment: string): OrchestratorActivities {
  return proxyActivities<OrchestratorActivities>({
    activityId: `${laneActivityPrefix(repo, environment, kind)}${uuid4()}`,
    startToCloseTimeout: kind === 'acquire' ? '30 days' : '10 minutes',
    heartbeatTimeout: '3 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  });
}
