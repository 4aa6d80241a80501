import { condition, setHandler } from '@temporalio/workflow';
import { pullRequestClosedSignal, type ChangeWorkflowInput } from './definitions.ts';

// Placeholder until the change workflow lands (issue 3).
export async function changeWorkflow(_input: ChangeWorkflowInput): Promise<string> {
  let closed = false;
  setHandler(pullRequestClosedSignal, () => {
    closed = true;
  });
  await condition(() => closed);
  return 'abandoned';
}
