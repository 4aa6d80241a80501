// The patches a workflow history was recorded with (`patched(id)` markers), so that readers of histories — the
// audit, the change's own history activity — know which rules the run followed.
import { defaultPayloadConverter, type Payload } from '@temporalio/common';

/** The patch marker of the change workflow's second core: such a run takes only gateway-signed events. */
export const CORE_V2_PATCH = 'core-v2';

interface MarkerEvent {
  markerRecordedEventAttributes?: { markerName?: string | null; details?: Record<string, { payloads?: Payload[] | null }> | null } | null;
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
