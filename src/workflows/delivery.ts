// What only the pipeline does: run the change's own checks on the exact head in the checks zone, and deliver it
// to one environment in that environment's deploy zone — lease, deploy, verify, and revoke whatever happens.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import { shortSha } from '../policy/sod.ts';
import type { ChangeStage, DeployInput, EnvironmentPolicy, EnvironmentStatus } from '../shared/types.ts';
import { ENVIRONMENT_LANE_PATCH } from '../shared/patches.ts';
import { reportOfFailure, stepFailureText } from '../shared/step-report.ts';
import { checksZone, deployZone, laneActivities } from './activities.ts';
import { note, type ChangeRecord } from './change-record.ts';
import { failureMessage } from './failures.ts';

/** What delivery needs of the run it belongs to. */
export interface DeliveryHost {
  readonly record: ChangeRecord;
  now(): number;
  changed(): void;
  setStage(stage: ChangeStage, waitingFor: string): void;
}

/** The change's checks on `head`, unless one of its own runs already passed them there. */
export async function runChecks(run: DeliveryHost, head: string): Promise<boolean> {
  const record = run.record;
  run.setStage('checking', `checks on ${shortSha(head)}`);
  try {
    record.checks = {
      ...(await checksZone().runChecks({ change: record.change, sha: head })),
      runId: workflowInfo().runId,
    };
  } catch (error) {
    if (isCancellation(error)) throw error;
    record.checks = { sha: head, passed: false, results: [], durationMs: 0, runId: workflowInfo().runId };
    note(record, run.now(), 'checks-error', `the checks could not run: ${failureMessage(error)}`, { sha: head });
    run.setStage('checks-failed', `new commits: the checks could not run on ${shortSha(head)}`);
    return false;
  }
  const checks = record.checks;
  const failed = checks.results.filter((r) => !r.passed).map((r) => (r.timedOut ? `${r.name} (timed out)` : r.name));
  note(
    record,
    run.now(),
    checks.passed ? 'checks-passed' : 'checks-failed',
    checks.passed ? `checks passed on ${shortSha(head)}` : `checks failed on ${shortSha(head)}: ${failed.join(', ')}`,
    { sha: head },
  );
  if (!checks.passed) run.setStage('checks-failed', `new commits: the checks failed on ${shortSha(head)}`);
  run.changed();
  return checks.passed;
}

/** The environment's lane, then lease -> deploy -> verify -> revoke, then the lane given back. */
export async function deliver(run: DeliveryHost, env: EnvironmentPolicy, head: string): Promise<boolean> {
  if (!patched(ENVIRONMENT_LANE_PATCH)) return deliverNow(run, env, head);
  const record = run.record;
  const lane = { repo: record.change.split('#')[0] as string, environment: env.name };
  try {
    run.setStage('deploying', `its turn in the ${env.name} lane of ${lane.repo}`);
    const grant = await laneActivities('acquire', lane.repo, env.name).acquireLane(lane);
    if (!grant.granted)
      return failDelivery(
        run,
        environmentStatus(record, env.name),
        head,
        `${shortSha(head)} is not deployed to ${env.name}: ${grant.reason}`,
      );
    note(
      record,
      run.now(),
      'lane-acquired',
      `${grant.lane} is ${shortSha(head)}'s${grant.running ? ` (running there: ${shortSha(grant.running)})` : ''}`,
      { sha: head },
    );
    return await deliverNow(run, env, head);
  } finally {
    // Given back whatever happened, after the revoke (deliverNow's own finally) and even when cancelled.
    await CancellationScope.nonCancellable(async () => {
      try {
        const released = await laneActivities('release', lane.repo, env.name).releaseLane(lane);
        if (released.released)
          note(record, run.now(), 'lane-released', `the ${env.name} lane is free again`, { sha: head });
      } catch (error) {
        note(
          record,
          run.now(),
          'lane-release-failed',
          `giving back the ${env.name} lane failed: ${failureMessage(error)}; the lane reclaims it when this change ends`,
          { sha: head },
        );
      }
      run.changed();
    });
  }
}

/** lease -> deploy -> verify -> revoke, in the environment's deploy zone; revoke runs even when cancelled. */
async function deliverNow(run: DeliveryHost, env: EnvironmentPolicy, head: string): Promise<boolean> {
  const record = run.record;
  const { deployer, verifier, revoker } = deployZone(env);
  const status = environmentStatus(record, env.name);
  const job: DeployInput = {
    change: record.change,
    environment: env.name,
    sha: head,
    idempotencyKey: `${record.change}@${env.name}@${head}`,
  };
  try {
    status.state = 'deploying';
    run.setStage('deploying', `deploy of ${shortSha(head)} to ${env.name}`);
    const deployed = await deployer.deploy(job);
    status.deploy = deployed;
    if (deployed.status === 'failed') return failDelivery(run, status, head, stepFailureText('deploy', deployed));
    note(record, run.now(), 'deployed', `${shortSha(head)} ${deployed.status} to ${env.name}`, { sha: head });
    if (env.verifyTimeoutMs !== undefined) {
      status.state = 'verifying';
      run.setStage('verifying', `verification of ${shortSha(head)} in ${env.name}`);
      const verified = await verifier.verify(job);
      status.verify = verified;
      if (!verified.passed) return failDelivery(run, status, head, stepFailureText('verify', verified));
      note(record, run.now(), 'verified', `${shortSha(head)} verified in ${env.name}`, { sha: head });
    }
    status.state = 'deployed';
    run.changed();
    return true;
  } catch (error) {
    if (isCancellation(error)) {
      status.state = 'pending';
      note(record, run.now(), 'delivery-cancelled', `delivery of ${shortSha(head)} to ${env.name} cancelled`, {
        sha: head,
      });
      throw error;
    }
    // Runs recorded before failed commands were results: the report rode in the failure's details.
    const failed = commandFailure(error);
    if (failed) {
      if (failed.step === 'deploy') status.deploy = failed.report;
      else status.verify = failed.report;
      return failDelivery(run, status, head, stepFailureText(failed.step, failed.report));
    }
    return failDelivery(
      run,
      status,
      head,
      `delivery of ${shortSha(head)} to ${env.name} failed: ${failureMessage(error)}`,
    );
  } finally {
    await CancellationScope.nonCancellable(async () => {
      try {
        const revoked = await revoker.revokeOutstanding({ change: record.change, environment: env.name });
        if (revoked.length > 0)
          note(record, run.now(), 'leases-revoked', `${revoked.length} lease(s) for ${env.name} revoked`, {
            sha: head,
          });
      } catch (error) {
        note(
          record,
          run.now(),
          'revoke-failed',
          `revoking the leases for ${env.name} failed: ${failureMessage(error)}; they expire with their TTL`,
          { sha: head },
        );
        log.error('revokeOutstanding failed', {
          change: record.change,
          environment: env.name,
          error: failureMessage(error),
        });
      }
      run.changed();
    });
  }
}

function commandFailure(error: unknown): ReturnType<typeof reportOfFailure> {
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  return cause instanceof ApplicationFailure ? reportOfFailure(cause.type, cause.details?.[0]) : undefined;
}

function failDelivery(run: DeliveryHost, status: EnvironmentStatus, head: string, summary: string): false {
  status.state = 'failed';
  note(run.record, run.now(), 'delivery-failed', summary, { sha: head });
  run.setStage('failed', `new commits: ${summary}`);
  return false;
}

export function environmentStatus(record: ChangeRecord, name: string): EnvironmentStatus {
  const found = record.environments.find((e) => e.name === name);
  if (found) return found;
  const added: EnvironmentStatus = { name, required: 0, approvedBy: [], state: 'pending' };
  record.environments.push(added);
  return added;
}
