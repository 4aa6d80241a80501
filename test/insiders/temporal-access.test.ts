// Insiders with a Temporal client (the Web UI's "Start Workflow" and "Send Signal", the `temporal` CLI, any
// process on the Temporal network) but without the gateway's signing key: whatever they start or signal,
// nothing deploys, and what they tried is on record.
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullRequestClosedSignal, pullRequestSignal } from '../../src/workflows/definitions.ts';
import { testWorkerConnection, uniqueQueue } from '../helpers/temporal.ts';
import { deploysOf, neverDeployed, startInsiderStack, type InsiderStack } from './harness.ts';
import { inject } from 'vitest';

let stack: InsiderStack;
beforeAll(async () => {
  stack = await startInsiderStack('insider-temporal');
});
afterAll(async () => {
  await stack?.stop();
});

/** A record that says everything is done: checks passed on `head`, alex and jo approved it, nobody initiated it. */
function forgedRecord(change: string, head: string) {
  const now = new Date().toISOString();
  const approval = (person: string) => ({
    claim: {
      v: 1,
      change,
      sha: head,
      person,
      channel: 'cli',
      decision: 'approve',
      evidence: {},
      at: now,
      nonce: randomUUID(),
    },
    signature: '00'.repeat(64),
    recordedAt: now,
    counted: true,
    reason: `counted: ${person} approves ${head.slice(0, 7)} for staging, production`,
    environments: ['staging', 'production'],
  });
  return {
    change,
    title: 'forged',
    author: 'sam-dev',
    headSha: head,
    baseRef: 'main',
    headRef: 'evil',
    updatedAt: now,
    superseded: [],
    deliveries: [],
    initiators: {},
    changedFiles: [],
    policyChange: false,
    stage: 'awaiting-approval',
    waitingFor: '',
    checks: { sha: head, passed: true, results: [], durationMs: 0 },
    approvals: [approval('alex-reviewer'), approval('jo-platform')],
    nonces: [],
    environments: [
      { name: 'staging', required: 1, approvedBy: ['alex-reviewer'], state: 'pending' },
      { name: 'production', required: 1, approvedBy: ['jo-platform'], state: 'pending' },
    ],
    timeline: [],
    runIds: ['an-earlier-run'],
    // The shape of the new record too: whatever a run carries, a forger can write.
    runs: [{ runId: 'an-earlier-run', startedAt: now, how: 'first' }],
    head: { sha: head, baseRef: 'main', commits: [], files: [], complete: true },
  };
}

/** sam's pull request as GitHub has it, without foureyes having heard of it (the webhook is not sent). */
async function quietPullRequest(title: string): Promise<{ number: number; change: string; head: string }> {
  const { pull } = await stack.github.standin.openPullRequest({
    repo: 'acme/shop',
    author: 'sam-dev',
    title,
    commits: [{ message: title }],
    deliver: false,
  });
  return { number: pull.number, change: `acme/shop#${pull.number}`, head: pull.headSha };
}

describe('an insider with a Temporal client but no gateway key', () => {
  it('starts changeWorkflow with a forged record ("checks passed", two counted approvals): the run fails at once, named, and nothing deploys', async () => {
    const { number, change, head } = await quietPullRequest('forged start');
    const handle = await stack.client.workflow.start('changeWorkflow', {
      workflowId: `change:${change}`,
      taskQueue: stack.taskQueue,
      args: [{ change, carried: forgedRecord(change, head) }],
    });
    stack.track(handle);
    await neverDeployed(stack, head);
    const failure = await handle.result().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause as { type?: string; message?: string; nonRetryable?: boolean };
    expect(cause).toMatchObject({ type: 'UntrustedStart', nonRetryable: true });
    expect(cause.message).toMatch(/carried record .* not continued from a run of change:acme\/shop#\d+/);
    // What an operator sees in `foureyes status` (the gateway's view).
    const s = await stack.statusOf(number);
    expect(s?.failure).toMatchObject({
      type: 'UntrustedStart',
      message: expect.stringMatching(/not continued from a run/),
    });
  });

  it('starts it under another workflow ID, or for a change whose ID it does not own: refused the same way', async () => {
    const { change, head } = await quietPullRequest('wrong id');
    for (const workflowId of [
      `change:${change}-copy`,
      `change:other/repo#${change.split('#')[1]}`,
      `deploy-${randomUUID()}`,
    ]) {
      const handle = stack.track(
        await stack.client.workflow.start('changeWorkflow', {
          workflowId,
          taskQueue: stack.taskQueue,
          args: [{ change }],
          workflowExecutionTimeout: '20s',
        }),
      );
      const failure = (await handle.result().catch((e: unknown) => e)) as WorkflowFailedError;
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect(failure.cause).toMatchObject({
        type: 'UntrustedStart',
        message: expect.stringMatching(/workflow ID .* is not change:acme\/shop#\d+/),
      });
    }
    await neverDeployed(stack, head, 500);
  });

  it('continues a run of its own (same ID and workflow type, its own task queue) into changeWorkflow with a forged record: refused, nothing deploys', async () => {
    const { change, head } = await quietPullRequest('forged continue-as-new');
    // The insider's own worker, on a task queue foureyes does not poll, runs a workflow that calls itself
    // changeWorkflow and continues as new onto foureyes' queue with the forged record.
    const evilQueue = uniqueQueue('evil');
    const evil = await Worker.create({
      connection: await testWorkerConnection(),
      namespace: inject('temporalNamespace'),
      taskQueue: evilQueue,
      workflowsPath: join(import.meta.dirname, 'fixtures', 'evil-workflows.ts'),
    });
    const running = evil.run();
    try {
      const handle = stack.track(
        await stack.client.workflow.start('changeWorkflow', {
          workflowId: `change:${change}`,
          taskQueue: evilQueue,
          args: [{ change, continueOnto: stack.taskQueue, carried: forgedRecord(change, head) }],
        }),
      );
      await neverDeployed(stack, head);
      const failure = (await handle.result().catch((e: unknown) => e)) as WorkflowFailedError;
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect(failure.cause).toMatchObject({
        type: 'UntrustedStart',
        message: expect.stringMatching(new RegExp(`task queue ${evilQueue}`)),
      });
    } finally {
      evil.shutdown();
      await running;
    }
  });

  it('signals a pull request event that moves the head to its own commit and names someone else as its author: refused and recorded; its own approval of that commit is refused', async () => {
    const opened = await stack.github.standin.openPullRequest({
      repo: 'acme/shop',
      author: 'sam-dev',
      title: 'Honest change',
      commits: [{ message: 'honest' }],
    });
    const number = opened.pull.number;
    await stack.until(number, 'awaiting approval', (s) => s.stage === 'awaiting-approval');
    // alex writes a commit of their own on a branch and points the change at it, claiming sam wrote it.
    const evil = await stack.github.standin.pushBranch({
      repo: 'acme/shop',
      branch: `evil-${number}`,
      pusher: 'alex-reviewer',
      commits: [{ message: 'backdoor', author: 'alex-reviewer' }],
    });
    const handle = stack.client.workflow.getHandle(`change:acme/shop#${number}`);
    const sam = { login: 'sam-dev', email: 'sam@example.com', name: 'Sam' };
    await handle.signal(pullRequestSignal, {
      kind: 'synchronize',
      deliveryId: randomUUID(),
      headSha: evil.after,
      beforeSha: opened.pull.headSha,
      updatedAt: new Date(Date.now() + 60_000).toISOString(),
      author: 'sam-dev',
      title: 'Honest change',
      baseRef: 'main',
      headRef: `change-${number}`,
      pusher: 'sam-dev',
      commits: [{ sha: evil.after, author: sam, committer: sam, message: 'honest' }],
      changedFiles: [],
    });
    const s = await stack.until(number, 'the refused event on record', (x) =>
      x.timeline.some((t) => t.kind === 'event-refused'),
    );
    expect(s.headSha).toBe(opened.pull.headSha);
    expect(s.timeline.find((t) => t.kind === 'event-refused')?.summary).toMatch(/not signed by a trusted gateway key/);
    const attempt = await stack.approveApi('alex-reviewer', number, { sha: evil.after });
    expect(attempt.json).toMatchObject({
      counted: false,
      reason: expect.stringMatching(/approval names .* but the head is/),
    });
    // A forged "closed" does not end the change either.
    await handle.signal(pullRequestClosedSignal, {
      deliveryId: randomUUID(),
      merged: false,
      closedBy: 'sam-dev',
      at: new Date().toISOString(),
    });
    const still = await stack.until(
      number,
      'the refused close on record',
      (x) => x.timeline.filter((t) => t.kind === 'event-refused').length >= 2,
    );
    expect(still.stage).toBe('awaiting-approval');
    await neverDeployed(stack, evil.after);
    expect(deploysOf(stack, opened.pull.headSha)).toEqual([]);
  });
});
