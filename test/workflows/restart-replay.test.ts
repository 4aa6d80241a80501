// The orchestrator dies (kill -9) between two workflow tasks of a change; a new orchestrator answers a status
// query, then the checks result and an approval arrive. Whatever the new worker records must be what a replay
// of the history produces, or the change stops with a nondeterminism error at the next restart.
//
// The timing is the one the long worker-kills drill hit (histories in drills/histories/): with a workflow cache
// (FOUREYES_WORKFLOW_CACHE > 0) the query waits 10 s on the dead worker's sticky queue, falls back to the new
// worker, which applies the checks result to answer it and keeps that state; the task that times out on the
// sticky queue 10 s after the checks finished then brings the approval alone, and the commands come out in an
// order no replay produces. With the default (no cache) every task is handled from the full history.
import { Worker } from '@temporalio/worker';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect, inject, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitHubModel, orchestratorDoubles } from './orchestrator-doubles.ts';
import { parseConfig } from '../../src/config/load.ts';
import { generateSigningKey, signClaim } from '../../src/shared/approval-signature.ts';
import { zoneQueue } from '../../src/shared/task-queues.ts';
import type { DeployInput } from '../../src/shared/types.ts';
import { workflowCacheSize } from '../../src/workers/cache.ts';
import { untracedWorkflowSinks } from '../../src/workers/tracing.ts';
import { approvalSignal, statusQuery } from '../../src/workflows/definitions.ts';
import { deployZoneQueues, testClient, testWorker, uniqueQueue, workflowBundle } from '../helpers/temporal.ts';
import { CONFIG, claim, newChange, openChange, opened, sha, waitForStatus } from './harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('a change whose orchestrator was killed between tasks still replays after a status query, the checks result and an approval', async () => {
  const config = parseConfig(CONFIG, 'test.yaml');
  const key = generateSigningKey();
  const taskQueue = uniqueQueue('restart');
  const github = new GitHubModel(mkdtempSync(join(tmpdir(), 'foureyes-github-model-')));
  let releaseChecks!: () => void;
  const checksReleased = new Promise<void>((r) => (releaseChecks = r));
  let checksStarted!: () => void;
  const checksRunning = new Promise<void>((r) => (checksStarted = r));
  const checks = await testWorker({
    taskQueue: zoneQueue(taskQueue, 'checks'),
    activities: {
      async runChecks(input: { sha: string }) {
        checksStarted();
        await checksReleased;
        return {
          sha: input.sha,
          passed: true,
          durationMs: 1,
          results: [{ name: 'unit', passed: true, exitCode: 0, durationMs: 1, timedOut: false, outputTail: 'ok' }],
        };
      },
    },
  });
  const deployers = await Promise.all(
    deployZoneQueues(taskQueue, config.environments).map(({ taskQueue: deployQueue }) =>
      testWorker({
        taskQueue: deployQueue,
        activities: {
          async deploy(input: DeployInput) {
            return {
              environment: input.environment,
              sha: input.sha,
              status: 'deployed' as const,
              exitCode: 0,
              durationMs: 1,
              outputTail: 'deployed',
              leases: [],
            };
          },
          async verify(input: DeployInput) {
            return {
              environment: input.environment,
              sha: input.sha,
              passed: true,
              exitCode: 0,
              durationMs: 1,
              outputTail: 'ok',
              leases: [],
            };
          },
          async revokeOutstanding() {
            return [];
          },
        },
      }),
    ),
  );
  const running = [checks.run(), ...deployers.map((d) => d.run())];
  const client = await testClient();
  // The first orchestrator runs in a process of its own: only a real kill -9 leaves its sticky queue without a
  // poller while the server still routes the change's tasks and queries there.
  const first = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('./fixtures/orchestrator-process.ts', import.meta.url).pathname],
    {
      env: {
        ...process.env,
        TEST_TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEST_TEMPORAL_NAMESPACE: inject('temporalNamespace'),
        TEST_TASK_QUEUE: taskQueue,
        TEST_WORKFLOW_BUNDLE: inject('workflowBundle'),
        TEST_APPROVAL_PUBLIC_KEY: key.publicKey,
        TEST_CONFIG: CONFIG,
        TEST_GITHUB_MODEL_DIR: github.dir,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      first.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      first.on('exit', (code) => reject(new Error(`the first orchestrator exited early (${code})`)));
    });
    const change = newChange();
    const head = sha();
    const handle = await openChange({ client, taskQueue, key, github }, change, opened(head));
    await checksRunning;
    await sleep(1000); // the report of 'checking' is done: nothing but the checks is outstanding
    first.kill('SIGKILL');
    await once(first, 'exit');

    const query = handle.query(statusQuery);
    const second = await testWorker({
      taskQueue,
      workflows: true,
      sinks: untracedWorkflowSinks,
      maxCachedWorkflows: workflowCacheSize(process.env),
      activities: orchestratorDoubles(config, key.publicKey, github),
    });
    const secondRun = second.run();
    try {
      await sleep(2000);
      releaseChecks();
      // Approve as soon as the change asks for it, as a reviewer watching `foureyes status` would.
      // (Without a cache the first query was answered at once, before the checks finished.)
      // A loaded machine may let the server give up on that first query while the new worker starts; the next
      // query is then the one the new worker answers from the unfinished history, which is the case under test.
      const answer = await query.catch(() => handle.query(statusQuery));
      if (answer.stage !== 'awaiting-approval')
        await waitForStatus(handle, (s) => s.stage === 'awaiting-approval', 30_000);
      await handle.signal(approvalSignal, signClaim(claim(change, head, 'alex-reviewer'), key));
      const done = await waitForStatus(handle, (s) => s.environments.every((e) => e.state === 'deployed'), 60_000);
      expect(done.environments.map((e) => `${e.name}:${e.state}`)).toEqual(['staging:deployed', 'production:deployed']);
    } finally {
      second.shutdown();
      await secondRun;
    }

    const history = await handle.fetchHistory();
    const failedTasks = (history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes);
    expect(failedTasks.map((e) => e.workflowTaskFailedEventAttributes?.failure?.message)).toEqual([]);
    // What the next orchestrator (after a restart or an eviction) does with this change.
    // Under its own workflow ID: a run checks that its input names the change it runs for.
    await expect(
      Worker.runReplayHistory(
        { workflowBundle: workflowBundle(), replayName: 'restart-replay', sinks: untracedWorkflowSinks },
        history,
        handle.workflowId,
      ),
    ).resolves.toBeUndefined();
  } finally {
    first.kill('SIGKILL');
    for (const w of [checks, ...deployers]) w.shutdown();
    await Promise.all(running);
    await client.connection.close();
  }
});
