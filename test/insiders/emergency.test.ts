// Insiders against break-glass, on the change's record as the workflow keeps it (the same functions its handlers
// run): escaping the retroactive review with an approval of another environment or one that was dismissed, and
// making the review impossible by pushing after the emergency deploy (which also wedges the change open and
// refuses every later emergency for it).
import { describe, expect, it } from 'vitest';
import { generateSigningKey, signClaim } from '../../src/shared/approval-signature.ts';
import { signEmergency, type EmergencyClaim } from '../../src/shared/emergency.ts';
import type { ApprovalClaim, ChangePolicy, HeadFacts } from '../../src/shared/types.ts';
import { emergencyPolicy, environmentPolicy } from '../policy/emergency-fixtures.ts';
import {
  alignEnvironments,
  gateOf,
  newRecord,
  receiveApproval,
  receiveEmergency,
  reviewEmergencies,
  useEmergency,
  voidApprovals,
  type ChangeRecord,
} from '../../src/workflows/change-record.ts';

const key = generateSigningKey();
const HEAD = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
const NEXT = '1234567890abcdef1234567890abcdef12345678';
const NOW = Date.parse('2026-03-01T12:00:00Z');
const CHANGE = 'acme/shop#1';
// alex may approve staging only; production needs two of jo, kim, lee.
const policy: ChangePolicy = emergencyPolicy({
  key: key.publicKey,
  environments: [
    environmentPolicy('staging', ['alex', 'jo', 'kim', 'lee']),
    environmentPolicy('production', ['jo', 'kim', 'lee'], 2),
  ],
  people: ['sam', 'alex', 'jo', 'kim', 'lee'],
  allowed: ['lee'],
});
const headFacts = (sha: string): HeadFacts => ({
  sha,
  baseRef: 'main',
  commits: [{ sha, author: { login: 'sam' }, committer: { login: 'sam' }, message: 'fix' }],
  files: ['src/a.ts'],
  identityRules: 2,
  pushedBy: 'sam',
});

function changeAt(sha: string): ChangeRecord {
  const record = newRecord(CHANGE);
  record.headSha = sha;
  record.head = headFacts(sha);
  record.initiators = { sam: ['author of the pull request', `pusher of ${sha.slice(0, 7)}`] };
  record.runs.push({ runId: 'run-1', startedAt: new Date(NOW).toISOString(), how: 'first' });
  alignEnvironments(record, policy);
  return record;
}

let n = 0;
function declare(record: ChangeRecord, at: number) {
  const claim: EmergencyClaim = {
    v: 1,
    kind: 'emergency',
    change: CHANGE,
    sha: record.headSha,
    person: 'lee',
    channel: 'cli',
    evidence: { tokenLogin: 'lee' },
    reason: 'checkout down',
    at: new Date(at).toISOString(),
    nonce: `e-${++n}`,
  };
  const outcome = receiveEmergency(record, policy, signEmergency(claim, key), at);
  expect(outcome.taken).toBe(true);
  return outcome.emergency!.id;
}

function send(record: ChangeRecord, person: string, at: number, extra: Partial<ApprovalClaim> = {}) {
  const claim: ApprovalClaim = {
    v: 1,
    change: CHANGE,
    sha: record.headSha,
    person,
    channel: 'cli',
    decision: 'approve',
    evidence: { tokenLogin: person },
    at: new Date(at).toISOString(),
    nonce: `a-${++n}`,
    ...extra,
  };
  const decision = receiveApproval(record, policy, signClaim(claim, key), at);
  // What the approve handler does after every approval.
  reviewEmergencies(record, policy, at);
  return decision;
}

/** What confirmed() does when the gate opens under the emergency. */
function deployUnder(record: ChangeRecord, name: string, at: number) {
  const gate = gateOf(
    record,
    policy,
    policy.environments.find((e) => e.name === name)!,
    at,
  );
  expect(gate).toMatchObject({ open: true });
  expect(gate.emergency).toBeDefined();
  useEmergency(record, gate.emergency!, name, at);
  reviewEmergencies(record, policy, at);
}

describe('the retroactive review cannot be escaped', () => {
  it('an approval for staging only does not review the production deploy made under the emergency', () => {
    const record = changeAt(HEAD);
    declare(record, NOW);
    deployUnder(record, 'staging', NOW + 1000);
    deployUnder(record, 'production', NOW + 2000);
    // alex is eligible for staging only: never allowed to approve production, yet this closed its review.
    expect(send(record, 'alex', NOW + 3000)).toMatchObject({ verdict: 'counted', environments: ['staging'] });
    expect(record.emergencies?.[0]?.closedHow).toBeUndefined();
    // Someone eligible for production reviews it: closed.
    expect(send(record, 'jo', NOW + 4000)).toMatchObject({ verdict: 'counted' });
    expect(record.emergencies?.[0]).toMatchObject({ closedHow: 'reviewed' });
    expect(record.emergencies?.[0]?.reviewedBy).toContain('jo');
  });

  it('an approval its reviewer dismissed is no review', () => {
    const record = changeAt(HEAD);
    declare(record, NOW);
    // jo approves (production needs two, so the gate stays shut), then withdraws the approval.
    expect(send(record, 'jo', NOW + 1000).verdict).toBe('counted');
    expect(send(record, 'jo', NOW + 2000, { decision: 'dismiss' }).verdict).toBe('counted');
    expect(record.approvals.find((a) => a.claim.decision === 'approve')?.voidedAt).toBeDefined();
    deployUnder(record, 'production', NOW + 3000);
    // Any later approval, even the declarer's own, re-runs the review: jo's withdrawn approval closed it.
    send(record, 'lee', NOW + 4000);
    expect(record.emergencies?.[0]?.closedHow).toBeUndefined();
    send(record, 'kim', NOW + 5000);
    expect(record.emergencies?.[0]).toMatchObject({ closedHow: 'reviewed', reviewedBy: 'kim' });
  });

  it('an approval given before the gate opened under the emergency, still standing, is the review', () => {
    const record = changeAt(HEAD);
    declare(record, NOW);
    expect(send(record, 'jo', NOW + 1000).verdict).toBe('counted');
    deployUnder(record, 'production', NOW + 2000);
    expect(record.emergencies?.[0]).toMatchObject({ closedHow: 'reviewed', reviewedBy: 'jo' });
  });
});

describe('a push after the emergency deploy', () => {
  it('leaves the review possible: an eligible non-initiator still approves the emergency head', () => {
    const record = changeAt(HEAD);
    const id = declare(record, NOW);
    deployUnder(record, 'production', NOW + 1000);
    // sam pushes a new commit: the head moves on, what went out under the emergency still owes its review.
    voidApprovals(record, NOW + 2000, () => true, 'void: new commits pushed');
    record.superseded.push(HEAD);
    record.headSha = NEXT;
    record.head = headFacts(NEXT);
    const review = send(record, 'jo', NOW + 3000, { sha: HEAD });
    expect(review.verdict).toBe('counted');
    expect(record.emergencies?.find((e) => e.id === id)).toMatchObject({ closedHow: 'reviewed', reviewedBy: 'jo' });
    // The review of the old head opens no gate of the new one.
    const production = policy.environments[1]!;
    expect(gateOf(record, policy, production, NOW + 3000)).toMatchObject({ open: false, approvers: [] });
    // And nobody's approval of a head that owes no review counts.
    expect(send(record, 'kim', NOW + 4000, { sha: HEAD }).verdict).toBe('refused');
    // A new emergency can be declared for the new head once the old one is reviewed.
    declare(record, NOW + 5000);
  });
});
