// A copy of a change's history whose last EMERGENCY_MEMO_KEY memo was edited (as an insider with write access to
// the history store might): the audit must hold it against the signed declaration.
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { RunHistory } from '../../src/audit/history.ts';
import { EMERGENCY_MEMO_KEY, type EmergencyRecord } from '../../src/shared/emergency.ts';

export function forgeMemo(runs: readonly RunHistory[], edit: Partial<EmergencyRecord>): RunHistory[] {
  // A deep copy through the protobuf encoding (event times are Longs, which structuredClone would not keep).
  const { History } = temporal.api.history.v1;
  const copy = runs.map((r) => ({
    runId: r.runId,
    events: History.decode(History.encode({ events: r.events }).finish()).events,
  }));
  const memos = copy.flatMap((r) =>
    r.events.flatMap((e) => {
      const fields = e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields;
      return fields?.[EMERGENCY_MEMO_KEY] ? [fields] : [];
    }),
  );
  const last = memos.at(-1);
  if (!last) throw new Error('the history holds no emergency memo');
  const records = defaultPayloadConverter.fromPayload(last[EMERGENCY_MEMO_KEY] as Payload) as EmergencyRecord[];
  last[EMERGENCY_MEMO_KEY] = defaultPayloadConverter.toPayload(records.map((r) => ({ ...r, ...edit }))) as never;
  return copy;
}
