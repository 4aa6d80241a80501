// FROZEN (core v1): the code that runs started before core v2 (the patch `core-v2` in ../change.ts) keep
// running and replaying with, unchanged. New behaviour goes into the v2 modules beside ../change.ts, never here.
// GitHub reporting runs beside the change and never blocks or fails it: whenever the status changed, one
// `syncGitHub` call with the latest status (changes in between coalesce), bounded retries, errors logged.
import { condition, isCancellation, log, proxyActivities } from '@temporalio/workflow';
import type { OrchestratorActivities } from './activity-types.ts';
import type { ChangeStatus } from '../../shared/types.ts';

const { syncGitHub } = proxyActivities<OrchestratorActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
});

export interface Reporter {
  /** The status changed: report it when the previous report is done. */
  changed(): void;
  /** Waits (at most a minute) until the latest status was reported or given up on. */
  flush(): Promise<void>;
}

export function startReporter(snapshot: () => ChangeStatus): Reporter {
  let version = 0;
  let reported = 0;
  let busy = false;
  const loop = async () => {
    for (;;) {
      await condition(() => version > reported);
      const target = version;
      busy = true;
      try {
        await syncGitHub({ status: snapshot() });
      } catch (error) {
        if (isCancellation(error)) throw error;
        log.warn('GitHub report failed; the change goes on', {
          error: error instanceof Error ? error.message : String(error),
        });
      } finally {
        busy = false;
      }
      reported = target;
    }
  };
  loop().catch((error: unknown) => {
    if (!isCancellation(error)) log.error('GitHub reporter stopped', { error: String(error) });
  });
  return {
    changed: () => void version++,
    flush: async () => void (await condition(() => reported >= version && !busy, '1 minute')),
  };
}
