// The lane and rollback rules of src/policy/sod.ts: who a lane believes, what may deploy over what runs, and
// which rollbacks are pre-approved.
import { describe, expect, it } from 'vitest';
import { decideLaneCaller, decideLaneGrant, decideRollback } from '../../src/policy/sod.ts';
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
      'rollback of production to 1111111 of acme/shop#1: pre-approved by that release (approved by alex-reviewer, delivered 2026-01-01T00:01:00Z)',
    );
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
    ['no earlier release', { releases: [r3] }, 'production has no earlier release to roll back to than 3333333'],
    [
      'a release deployed under an emergency',
      { to: '4444444', releases: [r1, { ...release('4'.repeat(40), 'acme/shop#4'), emergency: 'lee-ops' }, r3] },
      '4444444 went to production under the emergency lee-ops declared, without approval',
    ],
    [
      'an emergency release as the default',
      { releases: [{ ...release('4'.repeat(40), 'acme/shop#4'), emergency: 'lee-ops' }, r3] },
      'production has no earlier release to roll back to than 3333333',
    ],
  ])('refuses %s', (_what, extra, reason) => {
    const decision = decideRollback({ ...base, ...extra });
    expect(decision.verdict).toBe('refused');
    expect(decision.reason).toContain(reason);
  });
});
