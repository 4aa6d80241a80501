// The break-glass part of a change's audit record, from its workflow history only: each signed declaration as
// the `emergency` update carried it (its signature checked against the gateway keys the policy trusted then),
// the workflow's answer to it, the deploy events of the declared head under it, the counted approval that
// reviewed it afterwards, and the workflow's last EMERGENCY_MEMO_KEY memo — held against the signed
// declaration and the events, never believed over them: a disagreement is a finding.
import { shortSha } from '../policy/sod.ts';
import {
  emergencySigner,
  type EmergencyOutcome,
  type EmergencyRecord,
  type EmergencyState,
  type SignedEmergency,
} from '../shared/emergency.ts';
import type { UnchainedEntry } from './seal.ts';

/** One emergency the workflow took, as the audit reconstructs it. */
export interface EmergencyAudit {
  /** The declaration's nonce. */
  id: string;
  declaredBy: string;
  reason: string;
  channel: string;
  declaredAt: string;
  sha: string;
  environments: string[];
  windowEndsAt: string;
  reviewDueAt: string;
  /** emergency.reviewWithin of the policy in force at the declaration (ms), when it was read. */
  reviewWithinMs?: number;
  /** Environments deployed (successfully) at `sha` under it: without the approvals the policy requires. */
  deployedTo: string[];
  /** When the first deploy under it completed. */
  deployedAt?: string;
  /** The retroactive review: a counted approval of `sha` by someone neither an initiator nor the declarer. */
  reviewedBy?: string;
  reviewedAt?: string;
  state: EmergencyState;
  /** Whether the signed declaration verifies against the gateway keys the policy trusted when it was received. */
  signature: { verified: boolean; keyId?: string };
  /** How the workflow's memo compares with the signed declaration and the events. */
  memo: 'matches' | 'disagrees' | 'absent';
  findings: string[];
}

/** A declaration the workflow refused (or never decided). */
export interface RefusedEmergency {
  at: string;
  person: string;
  sha: string;
  channel: string;
  reason: string;
}

/** An `emergency` update as history holds it. */
export interface DeclarationSeen {
  /** Its entry in the timeline (its summary gets the declaration's fate). */
  entry: UnchainedEntry;
  signed: SignedEmergency | undefined;
  updateId: string;
  /** The gateway keys of the policy in force when it was received. */
  trustedKeys: readonly string[];
  reviewWithinMs?: number;
}

export interface EmergencyInput {
  change: string;
  entries: readonly UnchainedEntry[];
  declarations: readonly DeclarationSeen[];
  /** The workflow's answers to updates, by update ID. */
  outcomes: ReadonlyMap<string, unknown>;
  /** The last EMERGENCY_MEMO_KEY memo of the history, if any. */
  memo: unknown;
  initiators: Record<string, string[]>;
  /** The gateway keys of the last policy read: for a declaration received before any policy was. */
  finalKeys: readonly string[];
  /** The time of the history's last event: the audit's "now" (it never reads the clock). */
  lastEventAt: string;
}

export interface EmergencyResult {
  emergencies: EmergencyAudit[];
  refused: RefusedEmergency[];
  findings: string[];
}

type Data = Record<string, unknown>;
const dataOf = (e: UnchainedEntry) => (e.data ?? {}) as Data;
const ms = (iso: string | undefined) => (iso ? Date.parse(iso) : NaN);

export function declarationEntry(at: string, signed: SignedEmergency | undefined, sender?: string): UnchainedEntry {
  const claim = (signed?.claim ?? {}) as Partial<SignedEmergency['claim']>;
  return {
    at,
    kind: 'emergency-declaration',
    summary: `${String(claim.person ?? '?')} via ${String(claim.channel ?? '?')}: emergency for ${shortSha(String(claim.sha ?? ''))}${claim.environments?.length ? ` (${claim.environments.join(', ')})` : ''}: ${String(claim.reason ?? '').slice(0, 300)}`,
    data: {
      person: claim.person,
      channel: claim.channel,
      sha: claim.sha,
      environments: claim.environments,
      reason: String(claim.reason ?? '').slice(0, 2000),
      evidence: claim.evidence,
      claimedAt: claim.at,
      nonce: claim.nonce,
      signedBy: signed?.keyId,
      sender,
    },
  };
}

function memoRecords(memo: unknown): EmergencyRecord[] {
  return Array.isArray(memo) ? memo.filter((m): m is EmergencyRecord => !!m && typeof m === 'object') : [];
}

/** The successful deploys of `sha` to `environments` after `since` that lacked the approvals the policy required. */
export function deploysUnder(
  entries: readonly UnchainedEntry[],
  sha: string,
  environments: readonly string[],
  since: string,
  until?: string,
): Array<{ seq: number; environment: string; at: string }> {
  const required = (seq: number, env: string): number => {
    const policy = entries
      .slice(0, seq)
      .filter((e) => e.kind === 'policy')
      .at(-1);
    const envs = (policy ? dataOf(policy).environments : undefined) as
      Array<{ name: string; required: number }> | undefined;
    return envs?.find((e) => e.name === env)?.required ?? 1;
  };
  const approvals = (seq: number, env: string) =>
    entries.filter((e, i) => {
      const d = dataOf(e);
      const envs = Array.isArray(d.environments) ? d.environments : [];
      return (
        i < seq &&
        e.kind === 'approval-attempt' &&
        d.counted === true &&
        (d.decision ?? 'approve') === 'approve' &&
        d.sha === sha &&
        (envs.length === 0 || envs.includes(env))
      );
    }).length;
  return entries.flatMap((e, seq) => {
    const d = dataOf(e);
    const env = String(d.environment ?? '');
    if (e.kind !== 'deploy' || d.status === 'failed' || d.sha !== sha || !environments.includes(env)) return [];
    if (ms(e.at) < ms(since) || (until && ms(e.at) > ms(until))) return [];
    return approvals(seq, env) < required(seq, env) ? [{ seq, environment: env, at: e.at }] : [];
  });
}

/** The first counted approval of `sha` after the declaration by someone who is neither an initiator nor the declarer. */
export function reviewOf(
  entries: readonly UnchainedEntry[],
  e: Pick<EmergencyAudit, 'sha' | 'declaredAt' | 'declaredBy' | 'deployedTo'>,
  initiators: Record<string, string[]>,
): { person: string; at: string } | undefined {
  const personOf = (x: UnchainedEntry) => String(dataOf(x).person ?? '').toLowerCase();
  const envsOf = (x: UnchainedEntry) => {
    const d = dataOf(x);
    return Array.isArray(d.environments) ? d.environments.map(String) : [];
  };
  const qualifying = entries.filter((x) => {
    const d = dataOf(x);
    const person = personOf(x);
    return (
      x.kind === 'approval-attempt' &&
      d.counted === true &&
      (d.decision ?? 'approve') === 'approve' &&
      d.sha === e.sha &&
      ms(x.at) >= ms(e.declaredAt) &&
      person !== e.declaredBy.toLowerCase() &&
      !(initiators[person]?.length ?? 0)
    );
  });
  const dismissals = entries.filter(
    (x) => x.kind === 'approval-attempt' && dataOf(x).counted === true && dataOf(x).decision === 'dismiss',
  );
  // As the workflow decides it (sod.emergencyReview): every environment deployed under the emergency needs an
  // approval of its own that stands, i.e. its reviewer had not dismissed it by the time the review was complete.
  const pick = (excluded: Set<UnchainedEntry>) => {
    const chosen: UnchainedEntry[] = [];
    for (const env of e.deployedTo) {
      const found = qualifying.find((x) => !excluded.has(x) && (envsOf(x).length === 0 || envsOf(x).includes(env)));
      if (!found) return undefined;
      chosen.push(found);
    }
    return chosen;
  };
  const excluded = new Set<UnchainedEntry>();
  for (let attempt = 0; attempt <= qualifying.length; attempt++) {
    const chosen = pick(excluded);
    if (!chosen || chosen.length === 0) return undefined;
    const at = chosen.map((x) => x.at).reduce((a, b) => (ms(b) > ms(a) ? b : a));
    const dismissed = chosen.filter((x) =>
      dismissals.some((d) => personOf(d) === personOf(x) && ms(d.at) >= ms(x.at) && ms(d.at) <= ms(at)),
    );
    if (dismissed.length === 0) {
      const people: string[] = [];
      for (const x of chosen) if (!people.includes(personOf(x))) people.push(personOf(x));
      return { person: people.join(', '), at };
    }
    for (const x of dismissed) excluded.add(x);
  }
  return undefined;
}

/** Where the emergency stands by the events alone (no clock: the last event of the history is "now"). */
function stateOf(a: EmergencyAudit, lastEventAt: string, headReplaced: boolean, memoOverdue: boolean): EmergencyState {
  if (a.deployedTo.length === 0) return ms(lastEventAt) >= ms(a.windowEndsAt) || headReplaced ? 'lapsed' : 'open';
  if (a.reviewedAt) return ms(a.reviewedAt) > ms(a.reviewDueAt) ? 'reviewed-late' : 'reviewed';
  return memoOverdue || ms(lastEventAt) >= ms(a.reviewDueAt) ? 'overdue' : 'review-due';
}

/** Where the workflow's memo disagrees with the signed declaration, its answer and the events. */
function memoDisagreements(a: EmergencyAudit, m: EmergencyRecord, signed: SignedEmergency): string[] {
  const what = `the workflow's memo of the emergency ${a.id.slice(0, 8)} (declared for ${shortSha(a.sha)})`;
  const differs: string[] = [];
  const same = (field: string, memo: unknown, truth: unknown, source: string) => {
    if (JSON.stringify(memo) !== JSON.stringify(truth))
      differs.push(`${what} says ${field} ${JSON.stringify(memo)}, but ${source} says ${JSON.stringify(truth)}`);
  };
  same('declared by', m.declaredBy, a.declaredBy, 'the signed declaration');
  same('sha', m.sha, signed.claim.sha, 'the signed declaration');
  same('channel', m.channel, a.channel, 'the signed declaration');
  same('reason', m.reason, a.reason, 'the signed declaration');
  same('signature', m.signature, String(signed.signature).slice(0, 200), 'the update');
  same('environments', m.environments, a.environments, "the workflow's answer to the declaration");
  same('review due', m.reviewDueAt, a.reviewDueAt, "the workflow's answer to the declaration");
  if (m.reviewedBy && m.reviewedBy !== a.reviewedBy)
    differs.push(
      `${what} says it was reviewed by ${m.reviewedBy}, but ${a.reviewedBy ? `the approvals in history show ${a.reviewedBy}` : 'no counted approval in history reviews it'}`,
    );
  if (m.closedHow === 'lapsed' && a.deployedTo.length > 0)
    differs.push(`${what} says it lapsed, but ${a.deployedTo.join(', ')} deployed under it`);
  return differs;
}

/** The findings an emergency's review owes: overdue or late. */
function reviewFindings(change: string, a: EmergencyAudit): string[] {
  const which = `the emergency change ${change} declared by ${a.declaredBy} for ${shortSha(a.sha)}`;
  if (a.state === 'overdue')
    return [
      `${which} was deployed (${a.deployedTo.join(', ')}${a.deployedAt ? ` at ${a.deployedAt}` : ''}) and not reviewed by ${a.reviewDueAt}: the retroactive review is overdue`,
    ];
  if (a.state === 'reviewed-late')
    return [`${which} was reviewed late: by ${a.reviewedBy} at ${a.reviewedAt}, due ${a.reviewDueAt}`];
  return [];
}

function takenEmergency(input: EmergencyInput, d: DeclarationSeen, outcome: EmergencyOutcome | undefined) {
  const signed = d.signed as SignedEmergency;
  const claim = signed.claim;
  const answer = outcome?.emergency;
  const memo = memoRecords(input.memo).find((m) => m.id === claim.nonce);
  const keyId = emergencySigner(signed, d.trustedKeys.length ? d.trustedKeys : input.finalKeys);
  const declaredAt = answer?.declaredAt ?? d.entry.at;
  const windowEndsAt = answer?.windowEndsAt ?? memo?.windowEndsAt ?? '';
  const reviewDueAt =
    answer?.reviewDueAt ??
    (d.reviewWithinMs !== undefined ? new Date(ms(declaredAt) + d.reviewWithinMs).toISOString() : memo?.reviewDueAt) ??
    '';
  const environments = answer?.environments ?? claim.environments ?? [];
  const under = deploysUnder(input.entries, claim.sha, environments, declaredAt);
  const a: EmergencyAudit = {
    id: claim.nonce,
    declaredBy: String(claim.person).toLowerCase(),
    reason: String(claim.reason ?? '').slice(0, 2000),
    channel: claim.channel === 'cli' ? 'cli' : 'api',
    declaredAt,
    sha: claim.sha,
    environments,
    windowEndsAt,
    reviewDueAt,
    ...(d.reviewWithinMs !== undefined ? { reviewWithinMs: d.reviewWithinMs } : {}),
    deployedTo: [...new Set(under.map((u) => u.environment))],
    ...(under[0] ? { deployedAt: under[0].at } : {}),
    state: 'open',
    signature: { verified: keyId !== undefined && claim.change === input.change, ...(keyId ? { keyId } : {}) },
    memo: memo ? 'matches' : 'absent',
    findings: [],
  };
  const review = a.deployedTo.length > 0 ? reviewOf(input.entries, a, input.initiators) : undefined;
  if (review) Object.assign(a, { reviewedBy: review.person, reviewedAt: review.at });
  return { a, memo, signed };
}

/** The emergencies of the change, the refused declarations, and every finding about them. */
export function auditEmergencies(input: EmergencyInput): EmergencyResult {
  const emergencies: EmergencyAudit[] = [];
  const refused: RefusedEmergency[] = [];
  const lastEventAt = input.entries.map((e) => e.at).reduce((x, y) => (y > x ? y : x), input.lastEventAt);
  for (const d of input.declarations) {
    const outcome = input.outcomes.get(d.updateId) as EmergencyOutcome | undefined;
    const claim = d.signed?.claim;
    const memoHolds = memoRecords(input.memo).some((m) => typeof claim?.nonce === 'string' && m.id === claim.nonce);
    if (!claim || typeof claim.nonce !== 'string' || !(outcome?.taken ?? memoHolds)) {
      const reason = outcome?.reason ?? 'no decision recorded for this declaration';
      refused.push({
        at: d.entry.at,
        person: String(claim?.person ?? '?'),
        sha: String(claim?.sha ?? ''),
        channel: String(claim?.channel ?? '?'),
        reason,
      });
      d.entry.summary = `${d.entry.summary} — refused: ${reason}`;
      continue;
    }
    const { a, memo, signed } = takenEmergency(input, d, outcome);
    const headReplaced = input.entries.some(
      (e) => e.kind === 'pull-request' && e.at > a.declaredAt && dataOf(e).headSha !== a.sha,
    );
    a.state = stateOf(a, lastEventAt, headReplaced, memo?.overdueAt !== undefined);
    if (!a.signature.verified)
      a.findings.push(
        `the workflow took the emergency declared by ${a.declaredBy} for ${shortSha(a.sha)}, but its signed declaration does not verify against the gateway keys the policy trusted`,
      );
    const differs = memo ? memoDisagreements(a, memo, signed) : [];
    if (differs.length) a.memo = 'disagrees';
    a.findings.push(...differs, ...reviewFindings(input.change, a));
    d.entry.summary = `${d.entry.summary} — taken: ${outcome?.reason ?? 'per the workflow memo'}; ${a.state}`;
    emergencies.push(a);
  }
  const taken = new Set(emergencies.map((e) => e.id));
  const strays = memoRecords(input.memo)
    .filter((m) => !taken.has(String(m.id)))
    .map(
      (m) =>
        `the workflow's memo lists an emergency declared by ${String(m.declaredBy)} for ${shortSha(String(m.sha ?? ''))} that no signed declaration in history was taken for`,
    );
  return { emergencies, refused, findings: [...emergencies.flatMap((e) => e.findings), ...strays] };
}

/** The successful deploys that did not go out under a verified emergency. */
export function ordinaryDeploys(entries: readonly UnchainedEntry[], emergencies: readonly EmergencyAudit[]): number {
  const under = new Set(
    emergencies.filter((e) => e.signature.verified).flatMap((e) => e.deployedTo.map((n) => `${n}@${e.sha}`)),
  );
  return entries.filter((e) => {
    const d = dataOf(e);
    return e.kind === 'deploy' && d.status !== 'failed' && !under.has(`${String(d.environment)}@${String(d.sha)}`);
  }).length;
}
