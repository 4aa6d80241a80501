// The SoD rule as a pure function: initiators, identity resolution, decisions and the gate.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  collectInitiators,
  decideApproval,
  decideCarriedRecord,
  decideClaim,
  decideEvent,
  decideRunIdentity,
  gateState,
  globToRegExp,
  headRefusal,
  parseCoAuthors,
  policyFilesTouched,
  principalsOf,
  resolvePerson,
  unknownIdentities,
  type ChangeFacts,
  type DecisionContext,
} from '../../src/policy/sod.ts';
import { generateSigningKey, signClaim, signEvent } from '../../src/shared/approval-signature.ts';
import type { ApprovalClaim, ApprovalRecord, ChangePolicy, HeadFacts } from '../../src/shared/types.ts';

const key = generateSigningKey();
const HEAD = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
const OLD = '1a2b3c4d5e6f708192a3b4c5d6e7f80912345678';
const NOW = Date.parse('2026-03-01T12:00:00Z');

const policy: ChangePolicy = {
  repo: 'acme/shop',
  environments: [
    {
      name: 'staging',
      required: 1,
      eligible: [],
      expiryMs: 3_600_000,
      confirm: false,
      deployTimeoutMs: 60_000,
      leaseTtlMs: 60_000,
    },
    {
      name: 'production',
      required: 2,
      eligible: ['alex', 'jo', 'kim'],
      expiryMs: 600_000,
      confirm: false,
      deployTimeoutMs: 60_000,
      leaseTtlMs: 60_000,
    },
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
  defaultBranch: 'main',
};

const HEAD_FACTS: HeadFacts = {
  sha: HEAD,
  baseRef: 'main',
  commits: [{ sha: HEAD, author: { login: 'sam' }, committer: { login: 'sam' }, message: 'x' }],
  files: ['src/a.ts'],
};

function facts(
  initiators: Record<string, string[]> = { sam: ['author of the pull request'] },
  extra: Partial<ChangeFacts> = {},
): ChangeFacts {
  return { change: 'acme/shop#1', headSha: HEAD, head: HEAD_FACTS, initiators, policyChange: false, ...extra };
}

function claim(person: string, extra: Partial<ApprovalClaim> = {}): ApprovalClaim {
  return {
    v: 1,
    change: 'acme/shop#1',
    sha: HEAD,
    person,
    channel: 'cli',
    decision: 'approve',
    evidence: {},
    at: new Date(NOW).toISOString(),
    nonce: `n-${person}-${Math.random()}`,
    ...extra,
  };
}

function ctx(
  initiators: Record<string, string[]> = { sam: ['author of the pull request'] },
  extra: Partial<DecisionContext> = {},
  factExtra: Partial<ChangeFacts> = {},
): DecisionContext {
  return { policy, facts: facts(initiators, factExtra), now: NOW, nonceSeen: () => false, ...extra };
}

function record(
  person: string,
  environments: string[],
  recordedAt = NOW,
  extra: Partial<ApprovalRecord> = {},
): ApprovalRecord {
  return {
    claim: claim(person, { at: new Date(recordedAt).toISOString() }),
    keyId: key.publicKey,
    recordedAt: new Date(recordedAt).toISOString(),
    counted: true,
    reason: 'counted',
    environments,
    ...extra,
  };
}

describe('identities', () => {
  it('parses every Co-authored-by trailer, whatever the case', () => {
    const message =
      'Fix it\n\nCo-authored-by: Jo Platform <jo@example.com>\nCO-AUTHORED-BY:Kim <KIM@example.com>\nSigned-off-by: Sam <sam@example.com>\nco-authored-by: <nameless@example.com>';
    expect(parseCoAuthors(message)).toEqual([
      { name: 'Jo Platform', email: 'jo@example.com' },
      { name: 'Kim', email: 'KIM@example.com' },
      { email: 'nameless@example.com' },
    ]);
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
    expect(principalsOf(policy.people, { email: 'Stranger@Elsewhere.org', name: 'S' })).toEqual([
      'email:stranger@elsewhere.org',
    ]);
    expect(principalsOf(policy.people, { login: 'alex', email: 'sam@example.com' })).toEqual(['alex', 'sam']);
  });

  it('collects the PR author, commit authors, committers, co-authors and pushers with the part each took', () => {
    const initiators = collectInitiators(policy.people, {
      author: 'Sam',
      commits: [
        {
          sha: OLD,
          author: { email: 'kim@example.com' },
          committer: { login: 'lee' },
          message: 'x\n\nCo-authored-by: J <JO@example.com>',
        },
      ],
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
    expect(decideApproval(signClaim(claim('alex'), key), ctx())).toEqual({
      verdict: 'counted',
      reason: 'alex approves 9f8e7d6 for staging, production',
      environments: ['staging', 'production'],
      keyId: key.publicKey,
    });
    expect(decideApproval(signClaim(claim('lee'), key), ctx()).environments).toEqual(['staging']);
  });

  it('refuses with a reason a person can act on', () => {
    const refusal = (c: ApprovalClaim, context = ctx()) => decideApproval(signClaim(c, key), context).reason;
    expect(refusal(claim('alex'), ctx({ alex: ['author of commit 1a2b3c4'] }))).toBe(
      'alex is an initiator (author of commit 1a2b3c4)',
    );
    expect(refusal(claim('alex', { sha: OLD }))).toBe('approval names 1a2b3c4 but the head is 9f8e7d6');
    expect(refusal(claim('alex', { sha: '' }))).toBe(
      'the approval names no commit: approve the exact commit you reviewed',
    );
    expect(refusal(claim('lee', { environment: 'production' }))).toBe(
      'lee is not eligible for production (eligible: alex, jo, kim)',
    );
    expect(refusal(claim('alex', { change: 'acme/shop#2' }))).toBe('the approval is for acme/shop#2, not acme/shop#1');
    expect(refusal(claim('alex', { at: new Date(NOW - 16 * 60_000).toISOString() }))).toBe(
      'the claim is 960s old (at most 900s)',
    );
    expect(refusal(claim('alex', { at: new Date(NOW + 61_000).toISOString() }))).toBe(
      'the claim is dated in the future',
    );
    expect(refusal(claim('alex', { environment: 'moon' }))).toContain('unknown environment moon');
    expect(decideApproval(signClaim(claim('alex'), key), ctx(undefined, { nonceSeen: () => true })).reason).toBe(
      'this claim was already received (replayed nonce)',
    );
  });

  it('refuses a claim not signed by a trusted gateway key, or altered after signing', () => {
    expect(decideApproval(signClaim(claim('alex'), generateSigningKey()), ctx()).reason).toMatch(/^the signature/);
    const signed = signClaim(claim('alex', { sha: OLD }), key);
    expect(decideApproval({ ...signed, claim: { ...signed.claim, sha: HEAD } }, ctx()).verdict).toBe('refused');
  });

  it('never counts an initiator, whoever they are and however their identity is spelled', () => {
    const logins = policy.people.map((p) => p.github);
    fc.assert(
      fc.property(
        fc.constantFrom(...logins),
        fc.constantFrom('author of the pull request', 'pusher', 'co-author of commit 1a2b3c4'),
        fc.boolean(),
        fc.option(fc.constantFrom('staging', 'production'), { nil: undefined }),
        (who, role, upper, environment) => {
          const person = upper ? who.toUpperCase() : who;
          const result = decideClaim(claim(person, environment ? { environment } : {}), ctx({ [who]: [role] }));
          return result.verdict === 'refused' && result.reason.includes('is an initiator');
        },
      ),
    );
  });

  it('never counts an approval whose author, committer or co-author e-mail resolves to the approver', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...policy.people.filter((p) => p.emails.length > 0)),
        fc.constantFrom('author', 'committer', 'co-author'),
        fc.boolean(),
        (person, part, upper) => {
          const email = upper ? (person.emails[0] as string).toUpperCase() : (person.emails[0] as string);
          const someone = { email: 'other@elsewhere.org' };
          const commit = {
            sha: OLD,
            author: part === 'author' ? { email } : someone,
            committer: part === 'committer' ? { email } : someone,
            message: part === 'co-author' ? `x\n\nCo-authored-by: P <${email}>` : 'x',
          };
          return (
            decideClaim(claim(person.github), ctx(collectInitiators(policy.people, { commits: [commit] }))).verdict ===
            'refused'
          );
        },
      ),
    );
  });
});

describe('gateState', () => {
  it('counts distinct people: the same person twice is one approver', () => {
    const twice = [record('alex', ['staging', 'production']), record('alex', ['staging', 'production'])];
    const prod = policy.environments[1]!;
    expect(gateState(policy, prod, facts(undefined, { policyChange: false }), twice, NOW)).toMatchObject({
      open: false,
      approvers: ['alex'],
    });
    expect(gateState(policy, prod, facts(undefined, { policyChange: false }), twice, NOW).waitingFor).toContain(
      'by 1 more eligible person',
    );
    expect(
      gateState(
        policy,
        prod,
        facts(undefined, { policyChange: false }),
        [...twice, record('kim', ['production'])],
        NOW,
      ),
    ).toMatchObject({ open: true, approvers: ['alex', 'kim'] });
  });

  it('decides each approval again: a key no longer trusted, a person no longer eligible or now an initiator count no more', () => {
    const staging = policy.environments[0]!;
    const alex = [record('alex', ['staging'])];
    expect(gateState(policy, staging, facts(), alex, NOW).open).toBe(true);
    expect(
      gateState({ ...policy, approvalKeys: [generateSigningKey().publicKey] }, staging, facts(), alex, NOW).open,
    ).toBe(false);
    expect(
      gateState(
        { ...policy, environments: [{ ...staging, eligible: ['jo'] }] },
        { ...staging, eligible: ['jo'] },
        facts(),
        alex,
        NOW,
      ).open,
    ).toBe(false);
    expect(
      gateState(policy, staging, facts({ sam: ['author of the pull request'], alex: ['pusher of 9f8e7d6'] }), alex, NOW)
        .open,
    ).toBe(false);
    expect(
      gateState(policy, staging, facts(), [record('alex', ['staging'], NOW, { keyId: undefined })], NOW).open,
    ).toBe(false);
  });

  it('ignores voided, expired and other-SHA approvals', () => {
    const staging = policy.environments[0]!;
    expect(
      gateState(
        policy,
        staging,
        facts(undefined, { policyChange: false }),
        [record('alex', ['staging'], NOW, { voidedAt: 'x', voidReason: 'void: new commits pushed' })],
        NOW,
      ).open,
    ).toBe(false);
    expect(
      gateState(
        policy,
        staging,
        facts(undefined, { policyChange: false }),
        [record('alex', ['staging'], NOW - 3_600_000)],
        NOW,
      ).open,
    ).toBe(false);
    expect(
      gateState(
        policy,
        staging,
        facts(undefined, { policyChange: false }),
        [record('alex', ['staging'], NOW - 3_599_000)],
        NOW,
      ).open,
    ).toBe(true);
    expect(
      gateState(
        policy,
        staging,
        facts(undefined, { policyChange: false }),
        [{ ...record('alex', ['staging']), claim: claim('alex', { sha: OLD }) }],
        NOW,
      ).open,
    ).toBe(false);
  });

  it('a change to policy paths also needs a policy owner', () => {
    const staging = policy.environments[0]!;
    const byAlex = [record('alex', ['staging', 'production'])];
    expect(gateState(policy, staging, facts(undefined, { policyChange: true }), byAlex, NOW)).toMatchObject({
      open: false,
      waitingFor: 'the change touches policy paths: approval of 9f8e7d6 by a policy owner (jo)',
    });
    expect(
      gateState(
        policy,
        staging,
        facts(undefined, { policyChange: true }),
        [...byAlex, record('jo', ['production'])],
        NOW,
      ).open,
    ).toBe(true);
  });

  it('matches policy paths with ** and *', () => {
    expect(
      policyFilesTouched(
        [
          'src/a.ts',
          'foureyes.yaml',
          '.foureyes/x/y.yaml',
          'deploy/prod/run.sh',
          'a/b/c.policy',
          'deployment.md',
          'x/foureyes.yaml',
        ],
        policy.policyPaths,
      ),
    ).toEqual(['foureyes.yaml', '.foureyes/x/y.yaml', 'deploy/prod/run.sh', 'a/b/c.policy']);
    expect(globToRegExp('src/*.ts').test('src/a/b.ts')).toBe(false);
    expect(globToRegExp('src/**/*.ts').test('src/b.ts')).toBe(true);
  });
});

describe('what reaches the workflow from outside', () => {
  const event = {
    kind: 'synchronize' as const,
    deliveryId: 'd-1',
    headSha: HEAD,
    updatedAt: '',
    author: 'sam',
    title: 't',
    baseRef: 'main',
    headRef: 'x',
    pusher: 'sam',
  };

  it('takes a pull request event only when a trusted gateway key signed it for this very change', () => {
    const signed = signEvent({ ...event, change: 'acme/shop#1', at: new Date(NOW).toISOString() }, key);
    expect(decideEvent(signed, [key.publicKey], 'acme/shop#1')).toEqual({
      verdict: 'accepted',
      reason: 'signed by the gateway',
    });
    expect(decideEvent(event, [key.publicKey], 'acme/shop#1').verdict).toBe('refused');
    expect(
      decideEvent(signEvent({ ...event, change: 'acme/shop#1' }, generateSigningKey()), [key.publicKey], 'acme/shop#1')
        .reason,
    ).toMatch(/not signed by a trusted gateway key/);
    expect(decideEvent(signed, [key.publicKey], 'acme/shop#2').reason).toBe(
      'it was signed for acme/shop#1, not acme/shop#2',
    );
    // Altered after signing: a pusher taken out, or a head moved.
    expect(decideEvent({ ...signed, pusher: undefined }, [key.publicKey], 'acme/shop#1').verdict).toBe('refused');
    expect(decideEvent({ ...signed, headSha: OLD }, [key.publicKey], 'acme/shop#1').verdict).toBe('refused');
    // An approval's signature does not stand for an event, nor the other way round.
    const approval = signClaim(claim('alex'), key);
    expect(
      decideEvent(
        { ...event, change: 'acme/shop#1', signature: approval.signature, keyId: key.publicKey },
        [key.publicKey],
        'acme/shop#1',
      ).verdict,
    ).toBe('refused');
    expect(
      decideApproval({ claim: signed as never, signature: signed.signature, keyId: key.publicKey }, ctx()).verdict,
    ).toBe('refused');
  });

  it("a run works only under its change's own workflow ID, and takes a record only from its own predecessor", () => {
    expect(decideRunIdentity('change:acme/shop#1', 'change:acme/shop#1').verdict).toBe('accepted');
    expect(decideRunIdentity('change:acme/shop#1-copy', 'change:acme/shop#1').reason).toMatch(
      /is not change:acme\/shop#1/,
    );
    expect(decideRunIdentity('x', undefined).verdict).toBe('refused');
    const ours = { runId: 'r1', workflowType: 'changeWorkflow', taskQueue: 'foureyes', status: 'continued-as-new' };
    const decide = (extra: object) =>
      decideCarriedRecord({
        workflowId: 'change:acme/shop#1',
        continuedFromRunId: 'r1',
        taskQueue: 'foureyes',
        predecessor: ours,
        ...extra,
      });
    expect(decide({}).verdict).toBe('accepted');
    expect(decide({ continuedFromRunId: undefined }).reason).toMatch(/not continued from a run/);
    expect(decide({ predecessor: undefined }).reason).toMatch(/cannot be found/);
    expect(decide({ predecessor: { ...ours, taskQueue: 'evil' } }).reason).toMatch(/task queue evil, not foureyes/);
    expect(decide({ predecessor: { ...ours, workflowType: 'evilWorkflow' } }).reason).toMatch(/ran evilWorkflow/);
    expect(decide({ predecessor: { ...ours, status: 'completed' } }).reason).toMatch(/did not continue as new/);
  });
});

describe('whether a head can be approved at all', () => {
  const staging = () => policy.environments[0]!;

  it('needs the head read from GitHub, complete, into the configured branch, pushed where GitHub said who pushed it', () => {
    expect(headRefusal(policy, facts())).toBeUndefined();
    expect(headRefusal(policy, facts(undefined, { head: undefined }))).toMatch(/has not read the head commit/);
    expect(headRefusal(policy, facts(undefined, { pushedHead: OLD }))).toMatch(/1a2b3c4 was just pushed/);
    expect(headRefusal(policy, facts(undefined, { blocked: 'GitHub is down' }))).toBe('GitHub is down');
    expect(
      headRefusal(
        policy,
        facts(undefined, {
          head: {
            ...HEAD_FACTS,
            incomplete: 'the pull request is too large: GitHub lists only 250 of its 251 commits',
          },
        }),
      ),
    ).toMatch(/250 of its 251 commits, so foureyes cannot see who wrote the rest/);
    expect(headRefusal(policy, facts(undefined, { head: { ...HEAD_FACTS, baseRef: 'release' } }))).toBe(
      'the pull request targets release, not main; foureyes delivers only pull requests into main: change its base to main',
    );
    expect(headRefusal(policy, facts(undefined, { head: { ...HEAD_FACTS, pusherUnknown: true } }))).toMatch(
      /became the head without a push event naming who pushed it/,
    );
  });

  it('an identity that maps to nobody makes the head unapprovable for an environment that refuses them (the default), saying what to add', () => {
    const ghost = {
      ...HEAD_FACTS,
      commits: [
        {
          sha: HEAD,
          author: { email: 'ghost@laptop.local', name: 'G' },
          committer: { login: 'sam' },
          message: 'x\n\nCo-authored-by: Jo <jo@example.com>',
        },
      ],
    };
    expect(unknownIdentities(policy.people, ghost.commits)).toEqual([
      { identity: 'ghost@laptop.local', sha: HEAD, role: 'author' },
    ]);
    expect(headRefusal(policy, facts(undefined, { head: ghost }), staging())).toBe(
      "unknown identity ghost@laptop.local in commit 9f8e7d6: add ghost@laptop.local to the emails of the person it belongs to under people in foureyes.yaml (as the commit's author it could be anyone, an approver included)",
    );
    expect(
      headRefusal(policy, facts(undefined, { head: ghost }), { ...staging(), refuseUnknownIdentities: false }),
    ).toBeUndefined();
    expect(decideClaim(claim('alex'), ctx(undefined, {}, { head: ghost })).reason).toMatch(
      /^nobody can approve 9f8e7d6: unknown identity ghost@laptop.local/,
    );
  });
});
