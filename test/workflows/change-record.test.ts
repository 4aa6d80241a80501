// The change record's inbox rules, as pure functions: what a signed pull request close does to the record.
import { describe, expect, it } from 'vitest';
import { generateSigningKey, signEvent } from '../../src/shared/approval-signature.ts';
import type { ChangePolicy, PullRequestClosed } from '../../src/shared/types.ts';
import { newRecord, receiveClosed } from '../../src/workflows/change-record.ts';

const key = generateSigningKey();
const change = 'acme/shop#7';
const policy = {
  repo: 'acme/shop',
  environments: [],
  people: [],
  policyOwners: [],
  policyPaths: [],
  checks: [],
  merge: false,
  approvalKeys: [key.publicKey],
  claimMaxAgeMs: 3_600_000,
  temporalUiUrl: '',
  namespace: 'foureyes',
} satisfies ChangePolicy;

function signedClose(deliveryId: string, at: string): PullRequestClosed {
  return signEvent({ change, deliveryId, merged: false, closedBy: 'sam-dev', at }, key);
}

const closedAt = (record: { closed?: { at: string } }) => record.closed?.at;

describe('a signed close', () => {
  it('replayed after its delivery ID was forgotten does not end the reopened change', () => {
    const record = newRecord(change);
    const first = signedClose('close-1', '2026-12-01T10:00:00Z');
    expect(receiveClosed(record, policy, first, 0)).toBe('queued');
    // The pull request reopens (the next run starts from this record), and 500 deliveries later the close's
    // delivery ID has left the bounded list: an insider who kept the signal from the history sends it again.
    delete record.closed;
    record.deliveries = [];
    expect(receiveClosed(record, policy, first, 1)).toBe('refused');
    expect(record.closed).toBeUndefined();
    expect(record.timeline.at(-1)?.summary).toBe(
      'refused a close: it is the close of 2026-12-01T10:00:00Z, not later than the close of 2026-12-01T10:00:00Z already taken: a replayed close',
    );
    // A real later close still ends it.
    expect(receiveClosed(record, policy, signedClose('close-2', '2026-12-02T09:00:00Z'), 2)).toBe('queued');
    expect(closedAt(record)).toBe('2026-12-02T09:00:00Z');
  });

  it('in a run recorded before closes were ordered, is taken as it was then', () => {
    const record = newRecord(change);
    expect(receiveClosed(record, policy, signedClose('close-1', '2026-12-01T10:00:00Z'), 0, () => false)).toBe(
      'queued',
    );
    delete record.closed;
    record.deliveries = [];
    const again = signedClose('close-1', '2026-12-01T10:00:00Z');
    expect(receiveClosed(record, policy, again, 1, () => false)).toBe('queued');
  });
});
