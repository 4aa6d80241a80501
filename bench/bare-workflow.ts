// The baseline of the orchestration benchmarks: a bare workflow that runs the same number of activities on
// the same three task queues as changeWorkflow and waits for one signal, and does nothing else.
import { condition, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';

export interface BareActivities {
  /** `mark`: the first activity after the signal reports its start (the approval-latency baseline). */
  bareStep(input: { id: string; step: number; mark?: boolean }): Promise<void>;
  /** Tells the bench the workflow waits for its signal (the counterpart of changeWorkflow's notifySlack). */
  bareAwaiting(input: { id: string }): Promise<void>;
}

export interface BareInput {
  /** Activities before the signal, as zone names (orchestrator | checks | deploy). */
  before: string[];
  /** Activities after the signal. */
  after: string[];
}

export const goSignal = defineSignal('go');

export async function bareWorkflow(input: BareInput): Promise<string> {
  let go = false;
  setHandler(goSignal, () => void (go = true));
  const id = workflowInfo().workflowId;
  const on = (zone: string) =>
    proxyActivities<BareActivities>({
      taskQueue: zone === 'orchestrator' ? workflowInfo().taskQueue : `${workflowInfo().taskQueue}-${zone}`,
      startToCloseTimeout: '1 minute',
    });
  let step = 0;
  for (const zone of input.before) await on(zone).bareStep({ id, step: step++ });
  await on('orchestrator').bareAwaiting({ id });
  await condition(() => go);
  for (const [i, zone] of input.after.entries())
    await on(zone).bareStep({ id, step: step++, ...(i === 0 ? { mark: true } : {}) });
  return id;
}
