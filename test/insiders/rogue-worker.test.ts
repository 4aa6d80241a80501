// An insider who can reach Temporal runs a worker of their own and schedules foureyes' deploy activity onto
// the deploy zone's queue from workflow code they wrote. The deploy zone asks the server who the caller is:
// only a change's own changeWorkflow, on a queue foureyes' orchestrators poll, for its own change, is served.
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deployQueue } from '../../src/shared/task-queues.ts';
import { testWorkerConnection, uniqueQueue } from '../helpers/temporal.ts';
import {
  approve,
  claim,
  newChange,
  openChange,
  opened,
  result,
  sha,
  startStack,
  waitForStatus,
  type Stack,
} from '../workflows/harness.ts';

let stack: Stack;
let rogue: Worker;
let rogueRun: Promise<void>;
const rogueQueue = uniqueQueue('rogue');

beforeAll(async () => {
  stack = await startStack();
  rogue = await Worker.create({
    connection: await testWorkerConnection(),
    namespace: inject('temporalNamespace'),
    taskQueue: rogueQueue,
    workflowsPath: join(import.meta.dirname, 'fixtures', 'rogue-deployer.ts'),
  });
  rogueRun = rogue.run();
});
afterAll(async () => {
  rogue?.shutdown();
  await rogueRun;
  await stack?.stop();
});

/** Runs the insider's workflow and returns the cause its deploy activity failed with. */
async function rogueDeploy(
  workflowType: 'changeWorkflow' | 'releaseNow',
  workflowId: string,
  change: string,
  taskQueue = rogueQueue,
): Promise<ApplicationFailure> {
  const head = sha();
  const handle = await stack.client.workflow.start(workflowType, {
    workflowId,
    taskQueue,
    args: [
      {
        deployQueue: deployQueue(stack.taskQueue, 'production'),
        deploy: { change, environment: 'production', sha: head, idempotencyKey: `${change}@production@${head}` },
      },
    ],
    workflowExecutionTimeout: '1 minute',
  });
  const failure = await handle.result().then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  const activity = (failure as WorkflowFailedError).cause;
  expect(activity).toBeInstanceOf(ActivityFailure);
  const cause = (activity as ActivityFailure).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

describe('a worker of the insider’s own scheduling deploys', () => {
  it('is refused when its workflow calls itself changeWorkflow and takes the change’s own ID', async () => {
    const change = newChange();
    const cause = await rogueDeploy('changeWorkflow', `change:${change}`, change);
    expect(cause.type).toBe('UntrustedCaller');
    expect(cause.nonRetryable).toBe(true);
    expect(cause.message).toMatch(new RegExp(`runs on task queue ${rogueQueue}, which no foureyes orchestrator polls`));
    expect(stack.calls.deploy.filter((d) => d.change === change)).toEqual([]);
  });

  it('is refused from a workflow of another type', async () => {
    const change = newChange();
    const cause = await rogueDeploy('releaseNow', `release-${change}`, change);
    expect(cause.type).toBe('UntrustedCaller');
    expect(cause.message).toMatch(
      /scheduled only by changeWorkflow, rollbackWorkflow; this call came from a releaseNow/,
    );
    expect(stack.calls.deploy.filter((d) => d.change === change)).toEqual([]);
  });

  it('is refused when a change’s workflow asks to deploy another change', async () => {
    const victim = newChange();
    const own = newChange();
    const cause = await rogueDeploy('changeWorkflow', `change:${own}`, victim);
    expect(cause.type).toBe('UntrustedCaller');
    expect(cause.message).toMatch(/may deliver only its own change/);
    expect(stack.calls.deploy.filter((d) => d.change === victim)).toEqual([]);
  });

  it('still serves a change’s own workflow on foureyes’ queue', async () => {
    const change = newChange();
    const head = sha();
    const handle = await openChange(stack, change, opened(head));
    await waitForStatus(handle, (s) => s.stage === 'awaiting-approval');
    expect(await approve(stack, handle, claim(change, head, 'alex-reviewer'))).toMatchObject({ counted: true });
    expect(await result(handle)).toMatchObject({ outcome: 'delivered', headSha: head });
    expect(stack.calls.deploy.filter((d) => d.change === change).map((d) => d.environment)).toEqual([
      'staging',
      'production',
    ]);
  });
});
