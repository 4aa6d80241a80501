// Who may schedule a deploy-zone activity. Anyone who can reach Temporal can run a worker of their own and
// schedule an activity onto the deploy queue from a workflow they wrote, so the deploy zone checks its
// caller against what the Temporal server records for it, not against what the caller says.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { parseChangeRef, repoFullName, workflowIdFor } from '../shared/change-ref.ts';
import { isRollbackNonce, rollbackWorkflowId } from '../shared/rollback.ts';

export interface CallerRule {
  /** The workflow type the server recorded for the caller. */
  workflowType: string;
  /** The workflow ID that caller must have for this activity input (undefined: the input names no such ID). */
  workflowIdFor(input: unknown): string | undefined;
  /**
   * The caller must be the only run under its workflow ID: a reset (or a second start) replays a decision
   * recorded in an earlier run's history, which the run itself cannot tell from its own.
   */
  soleRun?: boolean;
}

/** A change's own workflow, acting for its own change: `change:<owner>/<repo>#<n>` for `input.change` (or `input.status.change`). */
export const CHANGE_WORKFLOW_CALLER: CallerRule = {
  workflowType: 'changeWorkflow',
  workflowIdFor(input) {
    const given = input as { change?: unknown; status?: { change?: unknown } } | undefined;
    const change = given?.change ?? given?.status?.change;
    if (typeof change !== 'string') return undefined;
    try {
      return workflowIdFor(parseChangeRef(change));
    } catch {
      return undefined;
    }
  },
};

/**
 * A rollback's own workflow, deploying for its own request: `rollback:<owner>/<repo>@<env>:<nonce>` for an input
 * naming that repository's change, that environment and `rollback: <nonce>`.
 */
export const ROLLBACK_WORKFLOW_CALLER: CallerRule = {
  workflowType: 'rollbackWorkflow',
  soleRun: true,
  workflowIdFor(input) {
    const given = input as { change?: unknown; environment?: unknown; rollback?: unknown } | undefined;
    if (typeof given?.change !== 'string' || typeof given.environment !== 'string' || !isRollbackNonce(given.rollback))
      return undefined;
    try {
      return rollbackWorkflowId(repoFullName(parseChangeRef(given.change)), given.environment, given.rollback);
    } catch {
      return undefined;
    }
  },
};

export interface CallerFacts {
  workflowType: string;
  workflowId: string;
  runId: string;
  /** The task queue of the caller's workflow as the server has it. */
  taskQueue: string;
}

/** The reason a caller is refused, or undefined when one of the rules admits it. */
export function refuseCaller(
  caller: CallerFacts,
  input: unknown,
  rules: CallerRule[],
  workflowQueues: string[],
): string | undefined {
  const rule = rules.find((r) => r.workflowType === caller.workflowType);
  if (!rule)
    return `these activities are scheduled only by ${rules.map((r) => r.workflowType).join(', ')}; this call came from a ${caller.workflowType} (${caller.workflowId})`;
  const expected = rule.workflowIdFor(input);
  if (expected === undefined || expected !== caller.workflowId)
    return `a ${caller.workflowType} may deliver only its own change: ${caller.workflowId} asked for ${expected ?? 'an input without a change'}`;
  if (!workflowQueues.includes(caller.taskQueue))
    return `${caller.workflowId} runs on task queue ${caller.taskQueue}, which no foureyes orchestrator polls (${workflowQueues.join(', ')}): the workflow code that scheduled this is not foureyes'`;
  return undefined;
}

/**
 * The orchestrator queue a zone queue belongs to: `foureyes-deploy` -> `foureyes`, and for an environment's
 * deployer `foureyes-deploy-staging` -> `foureyes` (the orchestrator's is its own).
 */
export function workflowQueueOf(
  zoneQueue: string,
  zone: 'orchestrator' | 'checks' | 'deploy',
  environment?: string,
): string {
  if (zone === 'orchestrator') return zoneQueue;
  const suffix = environment ? `-${zone}-${environment}` : `-${zone}`;
  return zoneQueue.endsWith(suffix) ? zoneQueue.slice(0, -suffix.length) : zoneQueue;
}

/** The environment a deploy input names (`input.environment`), if any. */
function environmentOf(input: unknown): string | undefined {
  const environment = (input as { environment?: unknown } | undefined)?.environment;
  return typeof environment === 'string' ? environment : undefined;
}

/** For a rule that asks for it: the reason when the caller's workflow ID has had another run. */
async function refuseOtherRuns(caller: CallerFacts, rules: CallerRule[]): Promise<string | undefined> {
  if (!rules.find((r) => r.workflowType === caller.workflowType)?.soleRun) return undefined;
  const others: string[] = [];
  const query = `WorkflowId = ${JSON.stringify(caller.workflowId)}`;
  for await (const run of Context.current().client.workflow.list({ query }))
    if (run.runId !== caller.runId) others.push(`${run.runId} (${run.status.name.toLowerCase()})`);
  return others.length > 0
    ? `${caller.workflowId} has had another run (${others.join(', ')}): a reset or second start replays an earlier run's decision, and a signed request acts once`
    : undefined;
}

async function callerFacts(): Promise<CallerFacts> {
  const ctx = Context.current();
  const { workflowExecution, workflowType } = ctx.info;
  // An activity started on its own (no workflow) has no caller the server vouches for.
  if (!workflowExecution || !workflowType)
    return { workflowType: '(no workflow)', workflowId: '(none)', runId: '', taskQueue: '' };
  // The server's view of the caller: its type and ID come with the task, its queue only from a describe.
  const description = await ctx.client.workflow
    .getHandle(workflowExecution.workflowId, workflowExecution.runId)
    .describe();
  return {
    workflowType: description.type ?? workflowType,
    workflowId: workflowExecution.workflowId,
    runId: workflowExecution.runId,
    taskQueue: description.taskQueue,
  };
}

/**
 * Wraps a zone's activities so each call first checks its caller. A refusal is non-retryable and names the
 * caller; the activity itself never runs. Activities named in `open` (read-only ones) are left as they are;
 * with `only`, just the activities named there are guarded.
 */
export function guardCallers<T extends object>(
  activities: T,
  options: {
    zone: 'orchestrator' | 'deploy';
    rules?: CallerRule[];
    open?: string[];
    only?: string[];
    /** A deployer of one environment: it serves `<queue>-deploy-<env>` and only inputs for that environment. */
    environment?: string;
  },
): T {
  // A deploy is asked for by a change for itself, or by a rollback for its own request.
  const rules =
    options.rules ??
    (options.zone === 'deploy' ? [CHANGE_WORKFLOW_CALLER, ROLLBACK_WORKFLOW_CALLER] : [CHANGE_WORKFLOW_CALLER]);
  const guarded: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    if (typeof fn !== 'function' || options.open?.includes(name) || (options.only && !options.only.includes(name))) {
      guarded[name] = fn;
      continue;
    }
    guarded[name] = async (...args: unknown[]) => {
      const caller = await callerFacts();
      const asked = environmentOf(args[0]);
      const refusal =
        (options.environment !== undefined && asked !== options.environment
          ? `this deployer serves ${options.environment} alone; it was asked for ${asked ?? 'no environment'}`
          : refuseCaller(caller, args[0], rules, [
              workflowQueueOf(Context.current().info.taskQueue, options.zone, options.environment),
            ])) ?? (await refuseOtherRuns(caller, rules));
      if (refusal) {
        Context.current().log.warn(`refused ${name}: ${refusal}`, {
          workflowId: caller.workflowId,
          runId: caller.runId,
        });
        throw ApplicationFailure.nonRetryable(`refused ${name}: ${refusal}`, 'UntrustedCaller');
      }
      return (fn as (...a: unknown[]) => unknown).apply(activities, args);
    };
  }
  return guarded as T;
}
