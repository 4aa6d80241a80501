// changeWorkflow: one pull request from first push to production, under Segregation of Duties.
//
//   1. whoever opens the change, writes, commits or pushes any of it is an initiator; new commits void every
//      approval; what a head is and who wrote it comes from GitHub, read by the orchestrator itself;
//   2. the change's own checks run against the exact head commit, in the checks zone;
//   3. per environment, in order: the gate opens once enough eligible people who took no part in the change
//      approved that exact head (src/policy/sod.ts decides), confirmed under the policy in force and at GitHub;
//   4. then only the pipeline delivers: lease -> deploy -> verify in the environment's deploy zone, and the
//      leases are revoked whatever happens.
// The event history is the audit trail; the record spans every run of the change.
import { patched } from '@temporalio/workflow';
import { CORE_V2_PATCH } from '../shared/patches.ts';
import { ChangeRun, type ChangeResult, type HeadOutcome } from './change-run.ts';
import type { ChangeWorkflowInput } from './definitions.ts';
import { deliver, runChecks } from './delivery.ts';
import { changeWorkflowV1 } from './v1/change.ts';

export type { ChangeResult };

export async function changeWorkflow(input: ChangeWorkflowInput): Promise<ChangeResult> {
  // Runs started before core v2 keep the code they started with (src/workflows/v1).
  if (!patched(CORE_V2_PATCH)) return changeWorkflowV1(input);
  const run = new ChangeRun(input);
  run.listen();
  await run.begin();
  for (;;) {
    await run.firstHead();
    while (!run.closed) {
      const head = run.record.headSha;
      const outcome = await run.whileHeadStands(head, () => deliverHead(run, head));
      if (outcome === 'continue-as-new') return await run.continueAsNew();
      if (outcome === 'delivered' && (await run.mergeIfConfigured(head))) break;
      if (outcome === 'superseded' || outcome === 'closed') continue;
      await run.untilNewHead(head, outcome);
      if (run.historyTooLong() && run.record.headSha === head && !run.closed) return await run.continueAsNew();
    }
    const result = await run.finish();
    if (result) return result;
  }
}

/** Checks, then per environment: the approval gate, then delivery. */
async function deliverHead(run: ChangeRun, head: string): Promise<HeadOutcome> {
  if (!run.record.head) {
    run.setStage('failed', run.record.blocked ?? `the pull request from GitHub (${head.slice(0, 7)})`);
    return 'unreadable';
  }
  // Checks always run; only an emergency that may override them lets a head whose checks failed on to its gates.
  const overrides = () => run.emergencyOverridesChecks(head);
  const checked = run.checksPassed(head) || (run.checksRanOn(head) && overrides()) || (await runChecks(run, head));
  if (!checked && !overrides()) return 'checks-failed';
  for (const env of run.environments()) {
    if (run.deployedAt(env, head)) continue;
    const gate = await run.gate(env, head);
    if (gate !== 'open') return gate;
    if (!(await deliver(run, env, head))) return 'failed';
  }
  run.delivered(head);
  return 'delivered';
}
