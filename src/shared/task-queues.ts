// One task queue per trust zone (docs/architecture.md): a worker polls only its own queue and holds only its own credentials.
export const TASK_QUEUES = {
  orchestrator: 'foureyes',
  checks: 'foureyes-checks',
  deploy: 'foureyes-deploy',
} as const;

/**
 * The activity queues of a workflow follow from its own queue: `foureyes` -> `foureyes-checks`,
 * `foureyes-deploy`. Tests run the workflow on a unique queue and get unique activity queues with it.
 */
export function zoneQueue(workflowQueue: string, zone: 'checks' | 'deploy'): string {
  return `${workflowQueue}-${zone}`;
}

/**
 * The deploy zone of one environment: `foureyes-deploy-staging`, `foureyes-deploy-production`. Each is served by
 * a deploy worker holding only that environment's AppRole, so a staging deploy can never obtain production's
 * credentials (docs/operations.md, one deployer identity per environment). The shared `<queue>-deploy` serves
 * only runs recorded before the `per-environment-deployer` patch.
 */
export function deployQueue(workflowQueue: string, environment: string): string {
  return `${zoneQueue(workflowQueue, 'deploy')}-${environment}`;
}

/**
 * Whether an activity of `environment` ran in a deploy zone: its own `<queue>-deploy-<env>`, or the shared
 * `<queue>-deploy` of runs recorded before the per-environment deployers. Another environment's queue is not.
 */
export function isDeployZoneQueue(queue: string, environment: string): boolean {
  return queue.endsWith('-deploy') || queue.endsWith(`-deploy-${environment}`);
}
