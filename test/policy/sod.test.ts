// The SoD rule as a pure function: initiators, identity resolution, decisions and the gate.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  collectInitiators,
  decideApproval,
  decideClaim,
  gateState,
  globToRegExp,
  parseCoAuthors,
  policyFilesTouched,
  principalsOf,
  resolvePerson,
  type DecisionContext,
} from '../../src/policy/sod.ts';
import { generateSigningKey, signClaim } from '../../src/shared/approval-signature.ts';
import type { ApprovalClaim, ApprovalRecord, ChangePolicy } from '../../src/shared/types.ts';

const key = generateSigningKey();
const HEAD = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
const OLD = '1a2b3c4d5e6f708192a3b4c5d6e7f80912345678';
const NOW = Date.parse('2026-03-01T12:00:00Z');

const policy: ChangePolicy = {
  repo: 'acme/shop',
  environments: [
    { name: 'staging', required: 1, eligible: [], expiryMs: 3_600_000, confirm: false, deployTimeoutMs: 60_000, leaseTtlMs: 60_000 },
    { name: 'production', required: 2, eligible: ['alex', 'jo', 'kim'], expiryMs: 600_000, confirm: false, deployTimeoutMs: 60_000, leaseTtlMs: 60_000 },
  ],
  people: [
    { github: 'sam', emails: ['sam@example.com'] },
    { github: 'alex', emails: ['alex@example.com', 'a.lex@corp.example'] },
    { github: 'jo', emails: ['jo@example.com'] },
    { github: 'kim', emails: ['kim@example.com'] },
    { github: 'lee', emails: [] },
  ],
  policyOwners: ['jo'],
  policyPaths: ['foureyes.yaml', '.foureyes/**', 'deploy/**', '**/*.policy'],
  checks: [],
  merge: false,
  approvalKeys: [key.publicKey],
  claimMaxAgeMs: 15 * 60_000,
  temporalUiUrl: '',
  namespace: 'foureyes',
};

function claim(person: string, extra: Partial<ApprovalClaim> = {}): ApprovalClaim {
  return { v: 1, change: 'acme/shop#1', sha: HEAD, person, channel: 'cli', decision: 'approve', evidence: {}, at: new Date(NOW).toISOString(), nonce: `n-${person}-${Math.random()}`, ...extra };
}

function ctx(initiators: Record<string, string[]> = { sam: ['author of the pull request'] }, extra: Partial<DecisionContext> = {}): DecisionContext {
  return { policy, change: 'acme/shop#1', headSha: HEAD, initiators, now: NOW, nonceSeen: () => false, ...extra };
}

function record(person: string, environments: string[], recordedAt = NOW, extra: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return { claim: claim(person), recordedAt: new Date(recordedAt).toISOString(), counted: true, reason: 'counted', environments, ...extra };
}

describe('identities', () => {
  it('parses every Co-authored-by trailer, whatever the case', () => {
    const message = 'Fix it\n\nCo-authored-by: Jo Platform <jo@example.com>\nCO-AUTHORED-BY:Kim <KIM@example.com>\nSigned-off-by: Sam <sam@example.com>\nco-authored-by: <nameless@example.com>';
    expect(parseCoAuthors(message)).toEqual([{ name: 'Jo Platform', email: 'jo@example.com' }, { name: 'Kim', email: 'KIM@example.com' }, { email: 'nameless@example.com' }]);
    expect(parseCoAuthors('Mentions Co-authored-by: inline text <x@y.z> mid-line')).toEqual([]);
  });

  it('resolves people by login or any e-mail (case-insensitive) and by GitHub noreply addresses', () => {
    expect(resolvePerson(policy.people, { login: 'ALEX' })).toBe('alex');
    expect(resolvePerson(policy.people, { email: 'A.Lex@Corp.Example' })).toBe('alex');
    expect(resolvePerson(policy.people, { email: '12345+Jo@users.noreply.github.com' })).toBe('jo');
    expect(resolvePerson(policy.people, { email: 'kim@users.noreply.github.com' })).toBe('kim');
    expect(resolvePerson(policy.people, { email: 'nobody@example.com' })).toBeUndefined();
  });

  it('keeps unresolved identities visible, and both people when a login and an e-mail disagree', () => {
    expect(principalsOf(policy.people, { email: 'Stranger@Elsewhere.org', name: 'S' })).toEqual(['email:stranger@elsewhere.org']);
    expect(principalsOf(policy.people, { login: 'alex', email: 'sam@example.com' })).toEqual(['alex', 'sam']);
  });

  it('collects the PR author, commit authors, committers, co-authors and pushers with the part each took', () => {
    const initiators = collectInitiators(policy.people, {
      author: 'Sam',
      commits: [{ sha: OLD, author: { email: 'kim@example.com' }, committer: { login: 'lee' }, message: 'x\n\nCo-authored-by: J <JO@example.com>' }],
      pushers: ['alex'],
    });
    expect(initiators).toEqual({
      sam: ['author of the pull request'],
      kim: ['author of commit 1a2b3c4'],
      lee: ['committer of commit 1a2b3c4'],
      jo: ['co-author of commit 1a2b3c4'],
      alex: ['pusher'],
    });
  });
});

describe('decideApproval', () => {
  it('counts an eligible non-initiator for every environment they may approve', () => {
    expect(decideApproval(signClaim(claim('alex'), key), ctx())).toEqual({ counted: true, reason: 'counted: alex approves 9f8e7d6 for staging, production', environments: ['staging', 'production'] });
    expect(decideApproval(signClaim(claim('lee'), key), ctx()).environments).toEqual(['staging']);
  });

  it('refuses with a reason a person can act on', () => {
    const refusal = (c: ApprovalClaim, context = ctx()) => decideApproval(signClaim(c, key), context).reason;
    expect(refusal(claim('alex'), ctx({ alex: ['author of commit 1a2b3c4'] }))).toBe('refused: alex is an initiator (author of commit 1a2b3c4)');
    expect(refusal(claim('alex', { sha: OLD }))).toBe('refused: approval names 1a2b3c4 but the head is 9f8e7d6');
    expect(refusal(claim('lee', { environment: 'production' }))).toBe('refused: lee is not eligible for production (eligible: alex, jo, kim)');
    expect(refusal(claim('alex', { change: 'acme/shop#2' }))).toBe('refused: the approval is for acme/shop#2, not acme/shop#1');
    expect(refusal(claim('alex', { at: new Date(NOW - 16 * 60_000).toISOString() }))).toBe('refused: the claim is 960s old (at most 900s)');
    expect(refusal(claim('alex', { at: new Date(NOW + 61_000).toISOString() }))).toBe('refused: the claim is dated in the future');
    expect(refusal(claim('alex', { environment: 'moon' }))).toContain('refused: unknown environment moon');
    expect(decideApproval(signClaim(claim('alex'), key), ctx(undefined, { nonceSeen: () => true })).reason).toBe('refused: this claim was already received (replayed nonce)');
  });

  it('refuses a claim not signed by a trusted gateway key, or altered after signing', () => {
    expect(decideApproval(signClaim(claim('alex'), generateSigningKey()), ctx()).reason).toMatch(/^refused: the signature/);
    const signed = signClaim(claim('alex', { sha: OLD }), key);
    expect(decideApproval({ ...signed, claim: { ...signed.claim, sha: HEAD } }, ctx()).counted).toBe(false);
  });

  it('never counts an initiator, whoever they are and however their identity is spelled', () => {
    const logins = policy.people.map((p) => p.github);
    fc.assert(
      fc.property(fc.constantFrom(...logins), fc.constantFrom('author of the pull request', 'pusher', 'co-author of commit 1a2b3c4'), fc.boolean(), fc.option(fc.constantFrom('staging', 'production'), { nil: undefined }), (who, role, upper, environment) => {
        const person = upper ? who.toUpperCase() : who;
        const result = decideClaim(claim(person, environment ? { environment } : {}), ctx({ [who]: [role] }));
        return !result.counted && result.reason.includes('is an initiator');
      }),
    );
  });

  it('never counts an approval whose author, committer or co-author e-mail resolves to the approver', () => {
    fc.assert(
      fc.property(fc.constantFrom(...policy.people.filter((p) => p.emails.length > 0)), fc.constantFrom('author', 'committer', 'co-author'), fc.boolean(), (person, part, upper) => {
        const email = upper ? (person.emails[0] as string).toUpperCase() : (person.emails[0] as string);
        const someone = { email: 'other@elsewhere.org' };
        const commit = {
          sha: OLD,
          author: part === 'author' ? { email } : someone,
          committer: part === 'committer' ? { email } : someone,
          message: part === 'co-author' ? `x\n\nCo-authored-by: P <${email}>` : 'x',
        };
        return !decideClaim(claim(person.github), ctx(collectInitiators(policy.people, { commits: [commit] }))).counted;
      }),
    );
  });
});

describe('gateState', () => {
  it('counts distinct people: the same person twice is one approver', () => {
    const twice = [record('alex', ['staging', 'production']), record('alex', ['staging', 'production'])];
    const prod = policy.environments[1]!;
    expect(gateState(policy, prod, twice, HEAD, NOW, false)).toMatchObject({ open: false, approvers: ['alex'] });
    expect(gateState(policy, prod, twice, HEAD, NOW, false).waitingFor).toContain('by 1 more eligible person');
    expect(gateState(policy, prod, [...twice, record('kim', ['production'])], HEAD, NOW, false)).toMatchObject({ open: true, approvers: ['alex', 'kim'] });
  });

  it('ignores voided, expired and other-SHA approvals', () => {
    const staging = policy.environments[0]!;
    expect(gateState(policy, staging, [record('alex', ['staging'], NOW, { voidedAt: 'x', voidReason: 'void: new commits pushed' })], HEAD, NOW, false).open).toBe(false);
    expect(gateState(policy, staging, [record('alex', ['staging'], NOW - 3_600_000)], HEAD, NOW, false).open).toBe(false);
    expect(gateState(policy, staging, [record('alex', ['staging'], NOW - 3_599_000)], HEAD, NOW, false).open).toBe(true);
    expect(gateState(policy, staging, [{ ...record('alex', ['staging']), claim: claim('alex', { sha: OLD }) }], HEAD, NOW, false).open).toBe(false);
  });

  it('a change to policy paths also needs a policy owner', () => {
    const staging = policy.environments[0]!;
    const byAlex = [record('alex', ['staging', 'production'])];
    expect(gateState(policy, staging, byAlex, HEAD, NOW, true)).toMatchObject({ open: false, waitingFor: 'the change touches policy paths: approval of 9f8e7d6 by a policy owner (jo)' });
    expect(gateState(policy, staging, [...byAlex, record('jo', ['production'])], HEAD, NOW, true).open).toBe(true);
  });

  it('matches policy paths with ** and *', () => {
    expect(policyFilesTouched(['src/a.ts', 'foureyes.yaml', '.foureyes/x/y.yaml', 'deploy/prod/run.sh', 'a/b/c.policy', 'deployment.md', 'x/foureyes.yaml'], policy.policyPaths)).toEqual([
      'foureyes.yaml',
      '.foureyes/x/y.yaml',
      'deploy/prod/run.sh',
      'a/b/c.policy',
    ]);
    expect(globToRegExp('src/*.ts').test('src/a/b.ts')).toBe(false);
    expect(globToRegExp('src/**/*.ts').test('src/b.ts')).toBe(true);
  });
});
