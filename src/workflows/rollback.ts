// rollbackWorkflow: an environment runs an earlier release of itself again (PCI DSS 6.5.1 back-out).
//
//   1. the request must be the gateway's, signed for exactly this workflow ID, recent, and run once;
//   2. who asked must be eligible to approve the environment, and the target must be a release that was
//      approved and delivered there before — that release's approval is the evidence, read again from the change
//      that delivered it and taken only if it still stands under the policy now (src/policy/sod.ts decides);
//   3. then only the pipeline deploys it, as for a change: the environment's lane, lease -> deploy -> verify in
//      the environment's deploy zone, the leases revoked and the lane given back whatever happens.
// Everything the run did is in its history and in the lane's release history (kind `rollback`).
import { ApplicationFailure, CancellationScope, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  decideRollback,
  decideRollbackEvidence,
  decideRollbackRequest,
  eligibleFor,
  shortSha,
  type InputDecision,
} from '../policy/sod.ts';
import type { LaneRelease } from '../shared/lane.ts';
import { ROLLBACK_REVERIFY_PATCH } from '../shared/patches.ts';
import { parseRollbackId, type RollbackStatus, type RollbackWorkflowInput } from '../shared/rollback.ts';
import type { DeployInput, EnvironmentPolicy } from '../shared/types.ts';
import { deployZone, laneActivities, orchestrator } from './activities.ts';
import { rollbackStatusQuery } from './definitions.ts';
import { failureMessage } from './failures.ts';

export interface RollbackResult {
  outcome: 'done' | 'failed' | 'refused';
  summary: string;
  sha?: string;
  change?: string;
}

export async function rollbackWorkflow(input: RollbackWorkflowInput): Promise<RollbackResult> {
  const run = new RollbackRun(input);
  setHandler(rollbackStatusQuery, () => run.status);
  const decided = await run.decide();
  if (!decided) return run.result();
  const lane = { repo: run.status.repo, environment: decided.env.name };
  try {
    run.step('waiting-for-lane', `waiting for its turn in the ${lane.environment} lane of ${lane.repo}`);
    const grant = await laneActivities('acquire', lane.repo, lane.environment).acquireLane(lane);
    if (!grant.granted) return run.fail(`the ${lane.environment} lane refused the rollback: ${grant.reason}`);
    run.note('lane-acquired', `${grant.lane} is the rollback's`);
    if (await run.stillStands(decided.target)) await run.deploy(decided.env, decided.target);
  } finally {
    await CancellationScope.nonCancellable(async () => {
      await laneActivities('release', lane.repo, lane.environment)
        .releaseLane(lane)
        .then(() => run.note('lane-released', `the ${lane.environment} lane is free again`))
        .catch((error: unknown) => run.note('lane-release-failed', failureMessage(error)));
    });
  }
  return run.result();
}

interface Decided {
  env: EnvironmentPolicy;
  target: LaneRelease;
  running?: LaneRelease;
  person: string;
  reason: string;
}

class RollbackRun {
  readonly status: RollbackStatus;
  private readonly nonce: string;

  constructor(private readonly input: RollbackWorkflowInput) {
    const id = workflowInfo().workflowId;
    const ref = parseRollbackId(id);
    const claim = input?.request?.claim;
    this.nonce = ref?.nonce ?? '';
    this.status = {
      kind: 'rollback',
      rollback: id,
      repo: ref?.repo ?? '',
      environment: ref?.environment ?? '',
      requestedBy: typeof claim?.person === 'string' ? claim.person.slice(0, 100) : '',
      reason: typeof claim?.reason === 'string' ? claim.reason.slice(0, 500) : '',
      stage: 'checking',
      summary: 'checking the request',
      change: '',
      headSha: '',
      approvedBy: [],
      environments: [],
      timeline: [],
    };
  }

  note(what: string, detail: string): void {
    this.status.timeline.push({ at: new Date(Date.now()).toISOString(), what, detail });
  }

  step(stage: RollbackStatus['stage'], summary: string): void {
    this.status.stage = stage;
    this.status.summary = summary;
    this.note(stage, summary);
  }

  /** The request verified, the policy and the lane's releases read, and the target decided; or refused. */
  async decide(): Promise<Decided | undefined> {
    if (!this.status.repo)
      return this.refuse(`${workflowInfo().workflowId} is not a rollback ID (rollback:owner/repo@env:nonce)`);
    const decided = await this.evaluate(true);
    if (typeof decided === 'string') return this.refuse(decided);
    const { target, running, person, reason } = decided;
    if (running) this.status.from = { sha: running.sha, change: running.change };
    Object.assign(this.status, { change: target.change, headSha: target.sha, approvedBy: target.approvers });
    this.status.environments = [{ name: this.status.environment, state: 'pending', approvedBy: target.approvers }];
    this.note('accepted', `${person}: ${reason}`);
    return decided;
  }

  /**
   * At its turn in the lane (which may be long after it asked): the same decision again, under the policy and
   * releases as they are now. What the asker saw running must still run, and the target must be the same.
   */
  async stillStands(target: LaneRelease): Promise<boolean> {
    const now = await this.evaluate(false);
    if (typeof now === 'string') {
      this.refuse(`at its turn in the lane: ${now}`);
      return false;
    }
    const { environment, from } = this.status;
    if (now.running?.sha !== from?.sha || now.target.sha !== target.sha) {
      this.refuse(
        `${environment} changed while the rollback waited for its lane: it runs ${now.running ? `${shortSha(now.running.sha)} of ${now.running.change}` : 'nothing'} now, not ${from ? shortSha(from.sha) : 'nothing'}: ask again`,
      );
      return false;
    }
    this.note('confirmed', `${environment} still runs ${from ? shortSha(from.sha) : 'nothing'}; ${now.reason}`);
    return true;
  }

  /** The rule, from what the orchestrator reads now; the request's age counts only when it first arrives. */
  private async evaluate(checkAge: boolean): Promise<Decided | string> {
    const info = workflowInfo();
    const { repo, environment } = this.status;
    const begun = await orchestrator.beginRollback({
      workflowId: info.workflowId,
      runId: info.runId,
      repo,
      environment,
    });
    const request = decideRollbackRequest({
      workflowId: info.workflowId,
      signed: this.input?.request,
      trustedKeys: begun.policy.approvalKeys,
      now: Date.now(),
      maxAgeMs: checkAge ? begun.policy.claimMaxAgeMs : Number.POSITIVE_INFINITY,
      earlierRuns: begun.earlierRuns,
    });
    if (request.verdict === 'refused' || !request.claim) return request.reason;
    const env = begun.policy.environments.find((e) => e.name === environment);
    if (!env) return `${repo} has no environment ${environment} in the policy`;
    const reverify = patched(ROLLBACK_REVERIFY_PATCH);
    const eligible = reverify
      ? eligibleFor(begun.policy, env)
      : env.eligible.length > 0
        ? env.eligible
        : begun.policy.people.map((p) => p.github.toLowerCase());
    const decision = decideRollback({
      person: request.claim.person,
      environment,
      eligible,
      releases: begun.releases,
      ...(begun.running ? { running: begun.running } : {}),
      ...(request.claim.to !== undefined ? { to: request.claim.to } : {}),
      latestOther: !reverify,
    });
    if (decision.verdict === 'refused' || !decision.target) return decision.reason;
    let reason = decision.reason;
    if (reverify) {
      const standing = await this.reverify(env, eligible, begun.policy.approvalKeys, decision.evidence);
      if (standing.verdict === 'refused') return standing.reason;
      reason = `${reason}; ${standing.reason}`;
    }
    return {
      env,
      target: decision.target,
      ...(begun.running ? { running: begun.running } : {}),
      person: request.claim.person,
      reason,
    };
  }

  /** The target's approvals, read again from the change that delivered it, against the policy now. */
  private async reverify(
    env: EnvironmentPolicy,
    eligible: string[],
    trustedKeys: string[],
    release: LaneRelease | undefined,
  ): Promise<InputDecision> {
    const info = workflowInfo();
    const evidence = release
      ? await orchestrator.lookUpRollbackEvidence({
          workflowId: info.workflowId,
          runId: info.runId,
          release: { workflowId: release.workflowId, runId: release.runId, sha: release.sha },
        })
      : undefined;
    return decideRollbackEvidence({ env, eligible, trustedKeys, release, evidence });
  }

  /** lease -> deploy -> verify in the environment's deploy zone; the revoke runs whatever happens. */
  async deploy(env: EnvironmentPolicy, target: LaneRelease): Promise<void> {
    const { deployer, verifier, revoker } = deployZone(env);
    const state = this.status.environments[0] as RollbackStatus['environments'][number];
    const job: DeployInput = {
      change: target.change,
      environment: env.name,
      sha: target.sha,
      idempotencyKey: `${this.status.rollback}@${env.name}@${target.sha}`,
      rollback: this.nonce,
    };
    try {
      state.state = 'deploying';
      this.step('deploying', `deploy of ${shortSha(target.sha)} (${target.change}) to ${env.name}`);
      const deployed = await deployer.deploy(job);
      const { sha, status, exitCode, outputTail } = deployed;
      state.deploy = { sha, status, exitCode, outputTail };
      if (deployed.status === 'failed') return void this.fail(`the deploy command failed (exit ${exitCode})`);
      if (env.verifyTimeoutMs !== undefined) {
        state.state = 'verifying';
        this.step('verifying', `verification of ${shortSha(target.sha)} in ${env.name}`);
        const verified = await verifier.verify(job);
        if (!verified.passed) return void this.fail(`verification failed (exit ${verified.exitCode})`);
      }
      state.state = 'deployed';
      this.step('done', `${env.name} runs ${shortSha(target.sha)} of ${target.change} again`);
    } catch (error) {
      this.fail(`delivery failed: ${failureMessage(error)}`);
      throw error;
    } finally {
      await CancellationScope.nonCancellable(async () => {
        await revoker
          .revokeOutstanding({ change: target.change, environment: env.name, rollback: this.nonce })
          .then((revoked) => revoked.length > 0 && this.note('leases-revoked', `${revoked.length} lease(s) revoked`))
          .catch((error: unknown) =>
            this.note('revoke-failed', `${failureMessage(error)}; they expire with their TTL`),
          );
      });
    }
  }

  fail(summary: string): RollbackResult {
    const env = this.status.environments[0];
    if (env) env.state = 'failed';
    this.step('failed', summary);
    return this.result();
  }

  private refuse(reason: string): undefined {
    this.step('refused', reason);
    return undefined;
  }

  result(): RollbackResult {
    const { stage, summary, headSha, change } = this.status;
    if (stage === 'refused')
      // A refusal fails the run, so that it shows as failed in the Temporal UI, with the reason.
      throw ApplicationFailure.nonRetryable(summary, 'RollbackRefused');
    return {
      outcome: stage === 'done' ? 'done' : 'failed',
      summary,
      ...(headSha ? { sha: headSha, change } : {}),
    };
  }
}
