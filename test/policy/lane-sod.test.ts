// The lane and rollback rules of src/policy/sod.ts: who a lane believes, what may deploy over what runs, and
// which rollbacks are pre-approved.
import { describe, expect, it } from 'vitest';
import { decideLaneCaller, decideLaneGrant, decideRollback, decideRollbackEvidence } from '../../src/policy/sod.ts';
import type { ApprovalRecord, EnvironmentPolicy } from '../../src/shared/types.ts';
import type { LaneCallerFacts, LaneRelease, LaneTicket } from '../../src/shared/lane.ts';

const LANE = 'lane:acme/shop@production';
const caller = (extra: Partial<LaneCallerFacts> = {}): LaneCallerFacts => ({
  workflowId: 'change:acme/shop#7',
  runId: 'r1',
  found: true,
  workflowType: 'changeWorkflow',
  taskQueue: 'foureyes',
  status: 'RUNNING',
  pending: [{ type: 'acquireLane', id: 'lane|acme/shop@production|acquire|u1' }],
  ...extra,
});
const release = (sha: string, change: string, outcome: LaneRelease['outcome'] = 'deployed'): LaneRelease => ({
  sha,
  change,
  approvers: ['alex-reviewer'],
  kind: 'change',
  workflowId: `change:${change}`,
  runId: 'r',
  grantedAt: '2026-01-01T00:00:00Z',
  endedAt: '2026-01-01T00:01:00Z',
  outcome,
  reason: '',
});
const ticket = (sha: string, kind: LaneTicket['kind'] = 'change'): LaneTicket => ({
  workflowId: 'change:acme/shop#8',
  runId: 'r2',
  change: 'acme/shop#8',
  sha,
  approvers: [],
  kind,
  requestedAt: '2026-01-01T00:00:00Z',
});

describe('decideLaneCaller', () => {
  it("believes a change of the repository, on the lane's queue, with its acquireLane for this lane pending", () => {
    expect(decideLaneCaller(LANE, 'foureyes', 'acquire', caller()).verdict).toBe('accepted');
  });
  it.each([
    ['no such run', caller({ found: false }), 'does not exist'],
    [
      'another workflow type',
      caller({ workflowType: 'rogueWorkflow' }),
      'runs rogueWorkflow, which does not deploy through lanes',
    ],
    ['a change of another repository', caller({ workflowId: 'change:acme/billing#7' }), 'is not a change of acme/shop'],
    ['another task queue', caller({ taskQueue: 'evil' }), "runs on task queue evil, not the lane's foureyes"],
    [
      'no acquire pending',
      caller({ pending: [{ type: 'deploy', id: '5' }] }),
      'no acquireLane activity of it is pending',
    ],
    [
      'an acquire of another lane',
      caller({ pending: [{ type: 'acquireLane', id: 'lane|acme/shop@staging|acquire|u1' }] }),
      'no acquireLane activity of it is pending',
    ],
    ['an ended run', caller({ status: 'COMPLETED' }), 'is not running (completed)'],
  ])('refuses %s', (_what, facts, reason) => {
    const decision = decideLaneCaller(LANE, 'foureyes', 'acquire', facts);
    expect(decision.verdict).toBe('refused');
    expect(decision.reason).toContain(reason);
  });
  it('a release is believed from an ended run, or with releaseLane pending, never otherwise', () => {
    expect(decideLaneCaller(LANE, 'foureyes', 'release', caller({ status: 'TERMINATED', pending: [] })).verdict).toBe(
      'accepted',
    );
    expect(
      decideLaneCaller(
        LANE,
        'foureyes',
        'release',
        caller({ pending: [{ type: 'releaseLane', id: 'lane|acme/shop@production|release|u2' }] }),
      ).verdict,
    ).toBe('accepted');
    expect(decideLaneCaller(LANE, 'foureyes', 'release', caller()).reason).toContain(
      'no releaseLane activity of it is pending',
    );
  });
});

describe('decideLaneGrant', () => {
  const running = release('b'.repeat(40), 'acme/shop#2');
  it('declines a head the running release contains, and one GitHub could not compare', () => {
    expect(
      decideLaneGrant(ticket('a'.repeat(40)), running, { status: 'ahead', aheadBy: 3, behindBy: 0 }),
    ).toMatchObject({
      verdict: 'refused',
      reason: expect.stringContaining(
        'aaaaaaa is older than the release running there (bbbbbbb of acme/shop#2 contains it, 3 commit(s) ahead)',
      ),
    });
    expect(decideLaneGrant(ticket('a'.repeat(40)), running, undefined).verdict).toBe('refused');
  });
  it('lets through a newer or diverged head, the same head, the first release and a rollback', () => {
    expect(
      decideLaneGrant(ticket('a'.repeat(40)), running, { status: 'behind', aheadBy: 0, behindBy: 2 }).verdict,
    ).toBe('accepted');
    expect(
      decideLaneGrant(ticket('a'.repeat(40)), running, { status: 'diverged', aheadBy: 1, behindBy: 2 }).verdict,
    ).toBe('accepted');
    expect(decideLaneGrant(ticket('b'.repeat(40)), running, undefined).verdict).toBe('accepted');
    expect(decideLaneGrant(ticket('a'.repeat(40)), undefined, undefined).verdict).toBe('accepted');
    expect(decideLaneGrant(ticket('a'.repeat(40), 'rollback'), running, undefined).verdict).toBe('accepted');
  });
});

describe('decideRollback', () => {
  const [r1, r2, r3] = [
    release('1'.repeat(40), 'acme/shop#1'),
    release('2'.repeat(40), 'acme/shop#2', 'failed'),
    release('3'.repeat(40), 'acme/shop#3'),
  ];
  const base = {
    person: 'jo-platform',
    environment: 'production',
    eligible: ['jo-platform', 'alex-reviewer'],
    releases: [r1, r2, r3],
    running: r3,
  };
  it('defaults to the release before the running one, skipping what did not deploy; the approval is the evidence', () => {
    const decision = decideRollback(base);
    expect(decision.target?.sha).toBe(r1.sha);
    expect(decision.reason).toBe(
      'rollback of production to 1111111 of acme/shop#1: the release before 3333333, pre-approved by that release (approved by alex-reviewer, delivered 2026-01-01T00:01:00Z)',
    );
  });
  it('after a rollback, the default keeps going back: a rollback to X pops every release above the earlier X', () => {
    const [a, b, c] = [release('a'.repeat(40), 'acme/shop#10'), release('b'.repeat(40), 'acme/shop#11'), r3];
    const back = (to: LaneRelease): LaneRelease => ({ ...to, kind: 'rollback', workflowId: 'rollback:x', runId: 'rb' });
    // [A, B, A(rollback)]: A runs, and nothing was released before A.
    const once = decideRollback({ ...base, releases: [a, b, back(a)], running: back(a) });
    expect(once.verdict).toBe('refused');
    expect(once.reason).toBe('production has no earlier release to roll back to before aaaaaaa');
    // [A, B, C, B(rollback)]: B runs; the release before B is A, never C again.
    const twice = decideRollback({ ...base, releases: [a, b, c, back(b)], running: back(b) });
    expect(twice.target?.sha).toBe(a.sha);
    expect(twice.reason).toMatch(/^rollback of production to aaaaaaa of acme\/shop#10: the release before bbbbbbb, /);
    // An explicit --to still takes any earlier approved release, the one rolled back from included.
    expect(decideRollback({ ...base, releases: [a, b, back(a)], running: back(a), to: 'bbbbbbb' }).target?.sha).toBe(
      b.sha,
    );
    // [A, B, C, A(--to), C(--to)]: C runs again, above A; the release before it is A.
    const forth = decideRollback({ ...base, releases: [a, b, c, back(a), back(c)], running: back(c) });
    expect(forth.target?.sha).toBe(a.sha);
  });
  it('names the evidence: the change that was approved and delivered with that SHA, even behind a rollback', () => {
    const a = release('a'.repeat(40), 'acme/shop#10');
    const b = release('b'.repeat(40), 'acme/shop#11');
    const c = release('c'.repeat(40), 'acme/shop#12');
    const back = (to: LaneRelease): LaneRelease => ({ ...to, kind: 'rollback', workflowId: 'rollback:x', runId: 'rb' });
    const decision = decideRollback({ ...base, releases: [a, b, c, back(b), back(c), b], running: b, to: 'ccccccc' });
    expect(decision.target).toMatchObject({ sha: c.sha, kind: 'rollback' });
    expect(decision.evidence).toMatchObject({ sha: c.sha, kind: 'change', workflowId: 'change:acme/shop#12' });
  });
  it('takes --to an earlier delivered release by a prefix of its SHA', () => {
    expect(decideRollback({ ...base, to: '1111111' }).target?.sha).toBe(r1.sha);
  });
  it.each([
    [
      'an ineligible person',
      { person: 'sam-dev' },
      'sam-dev may not roll back production: only its eligible approvers may (jo-platform, alex-reviewer)',
    ],
    ['a SHA never delivered there', { to: 'abcdef1' }, 'abcdef1 was never approved and delivered to production'],
    ['a release that failed', { to: '2222222' }, 'was never approved and delivered to production'],
    ['what runs now', { to: '3333333' }, '3333333 is what runs in production now: nothing to roll back'],
    ['not a SHA', { to: 'main' }, '--to: expected a commit SHA (7 to 64 hex digits), found "main"'],
    ['no earlier release', { releases: [r3] }, 'production has no earlier release to roll back to before 3333333'],
    [
      'a release deployed under an emergency',
      { to: '4444444', releases: [r1, { ...release('4'.repeat(40), 'acme/shop#4'), emergency: 'lee-ops' }, r3] },
      '4444444 went to production under the emergency lee-ops declared, without approval',
    ],
    [
      'an emergency release as the default',
      { releases: [{ ...release('4'.repeat(40), 'acme/shop#4'), emergency: 'lee-ops' }, r3] },
      'production has no earlier release to roll back to before 3333333',
    ],
  ])('refuses %s', (_what, extra, reason) => {
    const decision = decideRollback({ ...base, ...extra });
    expect(decision.verdict).toBe('refused');
    expect(decision.reason).toContain(reason);
  });
});

describe('decideRollbackEvidence', () => {
  const target = { ...release('1'.repeat(40), 'acme/shop#1'), approvers: ['alex-reviewer'] };
  const env = { name: 'production', required: 1, eligible: ['jo-platform', 'alex-reviewer'] } as EnvironmentPolicy;
  const approval = (extra: Partial<ApprovalRecord> = {}, person = 'alex-reviewer'): ApprovalRecord => ({
    claim: {
      v: 1,
      change: 'acme/shop#1',
      sha: target.sha,
      person,
      channel: 'cli',
      decision: 'approve',
      evidence: {},
      at: '2025-12-31T23:59:00Z',
      nonce: 'n',
    },
    keyId: 'key-1',
    recordedAt: '2025-12-31T23:59:00Z',
    counted: true,
    reason: '',
    environments: ['production'],
    ...extra,
  });
  const base = {
    env,
    eligible: env.eligible,
    trustedKeys: ['key-1'],
    release: target,
    evidence: { found: true, initiators: ['sam-dev'], approvals: [approval()] },
  };
  it('accepts approvals that still stand: eligible now, signed by a key trusted now, voided only after the deploy', () => {
    expect(decideRollbackEvidence(base)).toEqual({
      verdict: 'accepted',
      reason: 'its approval still stands under the policy now (alex-reviewer)',
    });
    const pushedLater = { ...base.evidence, approvals: [approval({ voidedAt: '2026-01-02T00:00:00Z' })] };
    expect(decideRollbackEvidence({ ...base, evidence: pushedLater }).verdict).toBe('accepted');
  });
  it.each([
    [
      'an approver removed from the config',
      { eligible: ['jo-platform'] },
      'alex-reviewer is no longer eligible to approve production',
    ],
    [
      'a key rotated out',
      { trustedKeys: ['key-2'] },
      "alex-reviewer's approval was signed by a gateway key the policy no longer trusts",
    ],
    [
      'an approver who is an initiator',
      { evidence: { found: true, initiators: ['alex-reviewer'], approvals: [approval()] } },
      'alex-reviewer is an initiator of acme/shop#1',
    ],
    [
      'an approval voided before the deploy',
      { evidence: { found: true, initiators: [], approvals: [approval({ voidedAt: '2025-12-31T23:59:30Z' })] } },
      'no approval of it was found in its change',
    ],
    [
      'an approval the lane did not record for the release',
      { evidence: { found: true, initiators: [], approvals: [approval({}, 'jo-platform')] } },
      'no approval of it was found in its change',
    ],
    [
      'evidence that is gone',
      {
        evidence: {
          found: false,
          reason: 'change:acme/shop#1 is no longer in Temporal',
          initiators: [],
          approvals: [],
        },
      },
      'the approvals of 1111111 (acme/shop#1) cannot be read any more: change:acme/shop#1 is no longer in Temporal: deploy it as a change',
    ],
    [
      'no change release',
      { release: undefined },
      "no change release of that SHA is left in the production lane's history",
    ],
  ])('refuses %s', (_what, extra, reason) => {
    const decision = decideRollbackEvidence({ ...base, ...extra });
    expect(decision.verdict).toBe('refused');
    expect(decision.reason).toContain(reason);
  });
  it('counts distinct people up to the required number', () => {
    const two = { ...env, required: 2 };
    const decision = decideRollbackEvidence({
      ...base,
      env: two,
      evidence: { ...base.evidence, approvals: [approval(), approval()] },
    });
    expect(decision.reason).toBe(
      'the approval of 1111111 for production no longer stands (1 of 2 required): only alex-reviewer approved it: deploy it as a change, to have it approved under the policy now',
    );
  });
});
