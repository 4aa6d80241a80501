// Worker Versioning for the orchestrator (the only zone that runs workflow code). With
// FOUREYES_DEPLOYMENT_NAME and FOUREYES_BUILD_ID set, the worker joins that Worker Deployment Version and
// every changeWorkflow it starts is PINNED to it by default: a change runs to its end (through
// continue-as-new) on the code that started it, so changed workflow code never meets a running change's
// history. FOUREYES_VERSIONING_BEHAVIOR=auto-upgrade moves running changes to the current version instead;
// then every workflow change must go through patched() (docs/operations.md). Unset: unversioned, as before.
import type { WorkerDeploymentOptions } from '@temporalio/worker';

export class DeploymentConfigError extends Error {
  override name = 'DeploymentConfigError';
}

export function workerDeploymentFromEnv(env: NodeJS.ProcessEnv): WorkerDeploymentOptions | undefined {
  const deploymentName = env.FOUREYES_DEPLOYMENT_NAME?.trim();
  const buildId = env.FOUREYES_BUILD_ID?.trim();
  if (!deploymentName && !buildId) return undefined;
  if (!deploymentName || !buildId) {
    throw new DeploymentConfigError(
      `Worker Versioning needs both FOUREYES_DEPLOYMENT_NAME and FOUREYES_BUILD_ID; only ${deploymentName ? 'FOUREYES_DEPLOYMENT_NAME' : 'FOUREYES_BUILD_ID'} is set`,
    );
  }
  const behavior = (env.FOUREYES_VERSIONING_BEHAVIOR ?? 'pinned').trim().toLowerCase();
  if (behavior !== 'pinned' && behavior !== 'auto-upgrade') {
    throw new DeploymentConfigError(
      `FOUREYES_VERSIONING_BEHAVIOR: expected "pinned" or "auto-upgrade", found "${behavior}"`,
    );
  }
  return {
    version: { deploymentName, buildId },
    useWorkerVersioning: true,
    defaultVersioningBehavior: behavior === 'pinned' ? 'PINNED' : 'AUTO_UPGRADE',
  };
}
