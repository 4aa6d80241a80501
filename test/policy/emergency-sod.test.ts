// The break-glass rule as pure functions: who may declare, for which head, what opens a gate, what counts as review.
import { describe, expect, it } from 'vitest';
import {
  decideEmergency,
  emergencyGateRefusal,
  emergencyReviewRefusal,
  gateState,
  type ChangeFacts,
  type EmergencyDecisionInput,
} from '../../src/policy/sod.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import { signEmergency, type EmergencyClaim, type EmergencyRecord } from '../../src/shared/emergency.ts';
import type { ApprovalRecord, ChangePolicy, EnvironmentPolicy } from '../../src/shared/types.ts';
import { emergencyPolicy, environmentPolicy } from './emergency-fixtures.ts';

const key = generateSigningKey();
const HEAD = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
const NOW = Date.parse('2026-03-01T12:00:00Z');
const policy: ChangePolicy = emergencyPolicy({
  key: key.publicKey,
  environments: ['staging', 'production'].map((name) => environmentPolicy(name, ['alex', 'jo', 'lee'])),
  people: ['sam', 'alex', 'jo', 'lee'],
  allowed: ['lee', 'sam'],
});
const facts = (extra: Partial<ChangeFacts> = {}): ChangeFacts => ({
  change: 'acme/shop#1',
  headSha: HEAD,
  head: {
    sha: HEAD,
    baseRef: 'main',
    commits: [{ sha: HEAD, author: { login: 'sam' }, committer: { login: 'sam' }, message: 'fix' }],
    files: ['src/a.ts'],
  },
  initiators: { sam: ['author of the pull request'] },
  policyChange: false,
  ...extra,
});
const declaration = (extra: Partial<EmergencyClaim> = {}): EmergencyClaim => ({
  v: 1,
  kind: 'emergency',
  change: 'acme/shop#1',
  sha: HEAD,
  person: 'lee',
  channel: 'cli',
  evidence: { tokenLogin: 'lee' },
  reason: 'checkout down',
  at: new Date(NOW).toISOString(),
  nonce: `n-${Math.random()}`,
  ...extra,
});
const decide = (extra: Partial<EmergencyDecisionInput> = {}, c: Partial<EmergencyClaim> = {}) =>
  decideEmergency({
    signed: signEmergency(declaration(c), key),
    policy,
    facts: facts(),
    emergencies: [],
    checks: 'passed',
    closed: false,
    nonceSeen: () => false,
    now: NOW,
    ...extra,
  });
const emergency = (extra: Partial<EmergencyRecord> = {}): EmergencyRecord => ({
  id: 'e1',
  sha: HEAD,
  declaredBy: 'lee',
  channel: 'cli',
  reason: 'checkout down',
  declaredAt: new Date(NOW).toISOString(),
  windowEndsAt: new Date(NOW + 3_600_000).toISOString(),
  reviewDueAt: new Date(NOW + 7_200_000).toISOString(),
  environments: ['staging', 'production'],
  keyId: key.publicKey,
  signature: 'x',
  usedFor: [],
  ...extra,
});

describe('decideEmergency', () => {
  it('takes a declaration by an allowed person for the head, for every environment unless named', () => {
    expect(decide()).toMatchObject({ verdict: 'accepted', environments: ['staging', 'production'] });
    expect(decide({}, { environments: ['production'] })).toMatchObject({ environments: ['production'] });
    // The author may break the glass at 3 a.m.; the review then has to come from someone else.
    expect(decide({}, { person: 'sam', evidence: { tokenLogin: 'sam' } }).verdict).toBe('accepted');
  });

  it('refuses with a reason a person can act on', () => {
    const reasons = [
      decide({ policy: { ...policy, emergency: undefined } }),
      decide({}, { person: 'alex', evidence: { tokenLogin: 'alex' } }),
      decide({}, { sha: '1'.repeat(40) }),
      decide({ facts: facts({ policyChange: true }) }),
      decide({ checks: 'failed' }),
      decide({ closed: true }),
      decide({ emergencies: [emergency()] }),
      decide({ nonceSeen: () => true }),
      decide({ now: NOW + 20 * 60_000 }),
      decide({}, { environments: ['prod'] }),
      decideEmergency({
        ...{ policy, facts: facts(), emergencies: [], checks: 'passed', closed: false },
        now: NOW,
        nonceSeen: () => false,
        signed: signEmergency(declaration(), generateSigningKey()),
      }),
    ].map((d) => (d.verdict === 'refused' ? d.reason : 'ACCEPTED'));
    expect(reasons).toEqual([
      'break-glass is disabled for acme/shop: nobody is listed under emergency.allowed in foureyes.yaml',
      'alex may not declare an emergency (emergency.allowed: lee, sam)',
      expect.stringMatching(/^the emergency names 1111111 but the head is 9f8e7d6/),
      expect.stringMatching(/touches policy paths: an emergency cannot change the policy/),
      expect.stringMatching(/^the checks failed on 9f8e7d6/),
      'the pull request is closed: reopen it first',
      expect.stringMatching(/^an emergency is already open for acme\/shop#1: declared by lee/),
      'this declaration was already received (replayed nonce)',
      expect.stringMatching(/^the declaration is 1200s old/),
      'unknown environment prod (environments: staging, production)',
      expect.stringMatching(/not signed by a gateway key the policy trusts/),
    ]);
    expect(
      decide({
        checks: 'failed',
        policy: { ...policy, emergency: { ...policy.emergency!, overrideFailingChecks: true } },
      }).verdict,
    ).toBe('accepted');
  });

  it('an emergency whose window ended unused is no longer open: a new one may be declared', () => {
    const ended = emergency({ windowEndsAt: new Date(NOW - 1).toISOString() });
    expect(decide({ emergencies: [ended] }).verdict).toBe('accepted');
    expect(decide({ emergencies: [{ ...ended, usedFor: ['staging'] }] }).verdict).toBe('refused');
  });
});

describe('the gate under an emergency', () => {
  it('opens for the declared head and environments within the window, while the declarer is still allowed', () => {
    const staging = policy.environments[0] as EnvironmentPolicy;
    expect(gateState(policy, staging, facts(), [], NOW).open).toBe(false);
    expect(gateState(policy, staging, facts(), [], NOW, emergency())).toMatchObject({ open: true, emergency: 'e1' });
    expect(emergencyGateRefusal(policy, staging, facts(), emergency(), NOW + 3_600_000)).toMatch(/window ended/);
    expect(emergencyGateRefusal(policy, staging, facts({ headSha: '2'.repeat(40) }), emergency(), NOW)).toMatch(
      /the emergency is for 9f8e7d6/,
    );
    expect(emergencyGateRefusal(policy, staging, facts(), emergency({ environments: ['production'] }), NOW)).toBe(
      'the emergency does not cover staging',
    );
    const withoutLee = { ...policy, emergency: { ...policy.emergency!, allowed: ['sam'] } };
    expect(emergencyGateRefusal(withoutLee, staging, facts(), emergency(), NOW)).toMatch(/lee may not declare/);
    expect(emergencyGateRefusal({ ...policy, approvalKeys: [] }, staging, facts(), emergency(), NOW)).toMatch(
      /no longer trusted/,
    );
  });
});

describe('the retroactive review', () => {
  const approval = (person: string, extra: Partial<ApprovalRecord> = {}): ApprovalRecord => ({
    claim: {
      v: 1,
      change: 'acme/shop#1',
      sha: HEAD,
      person,
      channel: 'cli',
      decision: 'approve',
      evidence: {},
      at: new Date(NOW).toISOString(),
      nonce: 'n',
    },
    keyId: key.publicKey,
    recordedAt: new Date(NOW).toISOString(),
    counted: true,
    reason: 'counted',
    environments: ['staging', 'production'],
    ...extra,
  });
  const used = emergency({ usedFor: ['production'] });
  it('is a counted approval of the head by an eligible non-initiator who is not the declarer', () => {
    expect(emergencyReviewRefusal(policy, facts(), used, approval('alex'))).toBeUndefined();
    expect(emergencyReviewRefusal(policy, facts(), used, approval('lee'))).toBe(
      'lee declared the emergency and cannot review it',
    );
    expect(emergencyReviewRefusal(policy, facts(), used, approval('sam'))).toMatch(/sam is an initiator/);
    expect(emergencyReviewRefusal(policy, facts(), used, approval('jo', { counted: false }))).toBe(
      'not a counted approval',
    );
    expect(emergencyReviewRefusal(policy, facts(), used, approval('jo', { environments: ['staging'] }))).toBe(
      'it does not cover production',
    );
  });
});
