// The patches a workflow history was recorded with (`patched(id)` markers), so that readers of histories — the
// audit, the change's own history activity — know which rules the run followed.
import { defaultPayloadConverter, type Payload } from '@temporalio/common';

/** The patch marker of the change workflow's second core: such a run takes only gateway-signed events. */
export const CORE_V2_PATCH = 'core-v2';

/**
 * Heads read under this patch carry what says who moved them there: the pusher a signed push named, or that
 * no push named one (any other event moving the head). Such heads refuse a pusher who is no configured person
 * and a noreply address GitHub did not link, as unknown identities.
 */
export const HEAD_EVIDENCE_PATCH = 'head-evidence';

/** A change's delivery to an environment takes that environment's lane first (src/workflows/lane.ts). */
export const ENVIRONMENT_LANE_PATCH = 'environment-lane';

/**
 * A lane publishes who holds it, who waits and whom it turned down in its memo, which the server answers
 * without the worker: a change waiting for its turn reads that, never a query (each replays the lane).
 */
export const LANE_MEMO_PATCH = 'lane-memo';

/**
 * A lane continues as new after 500 events instead of 5,000: on a worker without a workflow cache every task of
 * the lane replays its whole history, so a long history made every grant and release of a busy lane slow.
 */
export const LANE_SHORT_HISTORY_PATCH = 'lane-short-history';

/**
 * A lane continues as new after 150 events instead of 500 (the whole state goes with it): each of the three tasks
 * a grant takes replays the history, and at ~30 events a change that was most of the lane's part of a deploy.
 */
export const LANE_SHORTER_HISTORY_PATCH = 'lane-shorter-history';

/**
 * After reclaiming a holder that ended without giving the lane back, the lane waits a grace period before the next
 * grant: the dead holder's deploy activity runs on until its worker's next heartbeat learns the workflow is gone.
 */
export const LANE_RECLAIM_GRACE_PATCH = 'lane-reclaim-grace';

/**
 * Each environment's deploy, verify and revoke go to that environment's own deploy queue (`<queue>-deploy-<env>`),
 * served by a worker holding only that environment's AppRole. Runs without the marker keep the shared
 * `<queue>-deploy` queue, so its worker must run until they end (docs/operations.md, upgrade order).
 */
export const PER_ENVIRONMENT_DEPLOYER_PATCH = 'per-environment-deployer';

interface MarkerEvent {
  markerRecordedEventAttributes?: {
    markerName?: string | null;
    details?: Record<string, { payloads?: Payload[] | null }> | null;
  } | null;
}

/** The patch id a history event records, if it is a patch marker. */
export function patchOf(event: MarkerEvent): string | undefined {
  const marker = event.markerRecordedEventAttributes;
  if (marker?.markerName !== 'core_patch') return undefined;
  const payload = marker.details?.['patch-data']?.payloads?.[0];
  try {
    const data = payload ? (defaultPayloadConverter.fromPayload(payload) as { id?: unknown }) : undefined;
    return typeof data?.id === 'string' ? data.id : undefined;
  } catch {
    return undefined;
  }
}

/** At each approval decision and each open gate the change writes its own view (AUDIT_VIEW_KEY) to its memo. */
export const AUDIT_VIEW_MEMO_PATCH = 'audit-view-memo';

/** A signed close is refused unless it is newer than every close already taken (no replayed close). */
export const CLOSE_ORDER_PATCH = 'close-order';

/** Break-glass: a change takes signed emergency declarations, and its gates open under one for the declared head. */
export const EMERGENCY_CHANGE_PATCH = 'emergency-change';

/** A lane grants a request read in the same workflow task on that request's look-up, without a second one. */
export const LANE_FRESH_LOOKUP_PATCH = 'lane-fresh-lookup';

/** A lane takes the compare with what runs from the caller's look-up (it asks for it), without a compare task. */
export const LANE_FOLDED_COMPARE_PATCH = 'lane-folded-compare';

/**
 * A run that is a reset of another run (workflowInfo().runId is not the originalExecutionRunId its start keeps)
 * takes, in its first workflow task past the reset point, the emergencies and nonces that the run it was reset
 * from published after that point: a deploy under an emergency made there still owes its review.
 */
export const RESET_RECOVERY_PATCH = 'reset-recovery';

/**
 * A rollback reads its target's approvals from the change that delivered it and takes them only if they still
 * stand under the policy now (eligible approvers, trusted keys); its default target is the release before the
 * running one on the release stack, so that a second rollback goes further back.
 */
export const ROLLBACK_REVERIFY_PATCH = 'rollback-reverify';
