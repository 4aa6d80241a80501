// An insider who can reach Temporal runs a worker of their own, on a queue of their own, and schedules
// foureyes' ORCHESTRATOR activities (not the deploy zone's) onto the orchestrator's task queue. Those run with
// foureyes' GitHub App credentials and, unlike the deploy zone, ask nobody who scheduled them: an unapproved
// pull request is merged into the default branch, and GitHub is told it was approved and delivered.
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ChangeStatus } from '../../src/shared/types.ts';
import { testWorkerConnection, uniqueQueue } from '../helpers/temporal.ts';
import { startInsiderStack, type InsiderStack } from './harness.ts';

let stack: InsiderStack;
let rogue: Worker;
let rogueRun: Promise<void>;
const rogueQueue = uniqueQueue('rogue-orch');

beforeAll(async () => {
  stack = await startInsiderStack('insider-rogue-orch', { repository: ['merge: true'] });
  rogue = await Worker.create({
    connection: await testWorkerConnection(),
    namespace: inject('temporalNamespace'),
    taskQueue: rogueQueue,
    workflowsPath: join(import.meta.dirname, 'fixtures', 'rogue-orchestrator.ts'),
  });
  rogueRun = rogue.run();
});
afterAll(async () => {
  rogue?.shutdown();
  await rogueRun;
  await stack?.stop();
});

/** Runs the insider's workflow; its result, or the failure it ended with. */
async function runRogue(workflowType: 'rogueMerge' | 'rogueReport', args: unknown): Promise<unknown> {
  const handle = await stack.client.workflow.start(workflowType, {
    workflowId: `rogue-${workflowType}-${Date.now()}`,
    taskQueue: rogueQueue,
    args: [args],
    workflowExecutionTimeout: '1 minute',
  });
  return handle.result().catch((error: unknown) => error);
}

describe('a worker of the insider’s own scheduling orchestrator activities', () => {
  it('cannot merge a pull request nobody approved', async () => {
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Unreviewed',
      commits: [{ message: 'backdoor' }],
    });
    const number = opened.pull.number;
    const head = opened.pull.headSha;
    await stack.until(
      number,
      'the change awaiting approval',
      (s) => s.headSha === head && s.stage === 'awaiting-approval',
    );
    const before = stack.mainSha();

    const outcome = await runRogue('rogueMerge', { queue: stack.taskQueue, change: `acme/shop#${number}`, sha: head });

    // What should hold: nothing merged, and the activity refused a caller that is not the change's own workflow.
    expect({ merged: stack.github.standin.requirePull('acme/shop', number).merged, main: stack.mainSha() }).toEqual({
      merged: false,
      main: before,
    });
    expect(outcome).toBeInstanceOf(WorkflowFailedError);
  });

  it('cannot tell GitHub an unapproved head was approved and deployed', async () => {
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Looks approved',
      commits: [{ message: 'backdoor 2' }],
    });
    const number = opened.pull.number;
    const head = opened.pull.headSha;
    const real = await stack.until(
      number,
      'the change awaiting approval',
      (s) => s.headSha === head && s.stage === 'awaiting-approval',
    );
    const forged: ChangeStatus = {
      ...real,
      stage: 'delivered',
      waitingFor: '',
      approvals: [],
      environments: real.environments.map((e) => ({ ...e, state: 'deployed', approvedBy: ['jo-platform'] })),
    };

    const outcome = await runRogue('rogueReport', { queue: stack.taskQueue, status: forged });

    const runs = stack.github.standin.state.checkRuns.filter((r) => r.repo === 'acme/shop' && r.headSha === head);
    const latest = (name: string) => runs.filter((r) => r.name === name).at(-1)?.conclusion ?? null;
    expect({ approval: latest('foureyes / approval'), production: latest('foureyes / production') }).not.toEqual({
      approval: 'success',
      production: 'success',
    });
    expect(outcome).toBeInstanceOf(WorkflowFailedError);
  });
});
