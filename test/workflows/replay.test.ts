// Replays the saved histories of changeWorkflow runs against the current workflow bundle: a change to the
// workflow that would break running changes (non-determinism) fails here. Refresh the histories with
// FOUREYES_WRITE_HISTORIES=1 npx vitest run test/workflows/change.test.ts (traced-happy-path.json: a run started
// with tracing on, from test/workers/tracing.test.ts; replayed with the exporter sink every worker registers).
import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { untracedWorkflowSinks } from '../../src/workers/tracing.ts';
import { workflowBundle } from '../helpers/temporal.ts';
import { decodeHistory } from './harness.ts';

const dir = join(import.meta.dirname, 'histories');

it('replays every saved change history deterministically with the current workflow code', async () => {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  expect(files.length).toBeGreaterThanOrEqual(8);
  const histories = files.map((f) => decodeHistory(readFileSync(join(dir, f), 'utf8')));
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories(
    { workflowBundle: workflowBundle(), replayName: 'foureyes-replay', sinks: untracedWorkflowSinks },
    histories,
  )) {
    replayed++;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
  expect(replayed).toBe(files.length);
});
