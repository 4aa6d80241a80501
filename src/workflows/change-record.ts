// The record of one change — every run of it — and the transitions events make on it. Deterministic (workflow
// code): time is passed in; the record is plain JSON, carried across continue-as-new and handed from a closed
// run to the next. What counts is decided in src/policy/sod.ts; this module keeps the record of it.
import {
  addInitiator,
  approvalLapse,
  collectInitiators,
  decideApproval,
  decideCloseOrder,
  decideEmergency,
  decideEvent,
  emergencyLapse,
  emergencyReview,
  gateState,
  openEmergency,
  headRefusal,
  policyFilesTouched,
  shortSha,
  unknownIdentities,
  type ChangeFacts,
  type Decision,
  type GateState,
  type Initiators,
} from '../policy/sod.ts';
import {
  emergencyView,
  type EmergencyOutcome,
  type EmergencyRecord,
  type SignedEmergency,
} from '../shared/emergency.ts';
import type {
  ApprovalClaim,
  ApprovalRecord,
  ChangePolicy,
  ChangeStage,
  ChangeStatus,
  ChecksReport,
  EnvironmentPolicy,
  EnvironmentStatus,
  HeadFacts,
  PullRequestClosed,
  PullRequestEvent,
  PullRequestFacts,
  RunInfo,
  SignedApproval,
  TimelineEntry,
} from '../shared/types.ts';
import type { TeamsCardRecord } from '../shared/teams-card.ts';

export interface ChangeRecord {
  v: 2;
  change: string;
  title: string;
  author: string;
  headRef: string;
  /** The current head ('' until the first event was applied). */
  headSha: string;
  /** The head as the orchestrator read it from GitHub. */
  head?: HeadFacts;
  /** Why no head can be approved right now (its look-up failed, GitHub shows another head). */
  blocked?: string;
  /** Heads that a later push replaced. */
  superseded: string[];
  /** Recent delivery IDs, to give duplicate deliveries one effect. */
  deliveries: string[];
  /** Signed pull request events waiting for their look-up, oldest first (the first is being looked up). */
  pending: PullRequestEvent[];
  initiators: Initiators;
  policyChange: boolean;
  stage: ChangeStage;
  waitingFor: string;
  checks?: ChecksReport;
  approvals: ApprovalRecord[];
  /** Nonces of claims with a valid signature, across every run (a forged claim cannot burn a real nonce). */
  nonces: string[];
  /** A counted rejection of the current head: delivery waits for new commits. */
  rejection?: { sha: string; person: string; reviewId?: string };
  environments: EnvironmentStatus[];
  timeline: TimelineEntry[];
  runs: RunInfo[];
  closed?: { at: string; merged: boolean; closedBy?: string };
  /** The signed time of the latest close taken; kept when the pull request reopens. */
  lastClosedAt?: string;
  /** Head SHA whose approval request was posted to chat (once per head). */
  notified?: string;
  /** The approval card posted to Teams and kept current (./teams-card.ts). */
  teamsCard?: TeamsCardRecord;
  /** Digest of the policy the last decision was made under. */
  policyDigest?: string;
  /** Break-glass declarations taken for the change, oldest first (src/shared/emergency.ts). */
  emergencies?: EmergencyRecord[];
}

const MAX_DELIVERIES = 500;
const MAX_NONCES = 5000;
const MAX_CLAIM_TEXT = 500;

export function newRecord(change: string): ChangeRecord {
  return {
    v: 2,
    change,
    title: '',
    author: '',
    headRef: '',
    headSha: '',
    superseded: [],
    deliveries: [],
    pending: [],
    initiators: {},
    policyChange: false,
    stage: 'checking',
    waitingFor: 'the first pull request event',
    approvals: [],
    nonces: [],
    environments: [],
    timeline: [],
    runs: [],
  };
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function note(
  record: ChangeRecord,
  now: number,
  kind: string,
  summary: string,
  extra: { sha?: string; actor?: string } = {},
): void {
  record.timeline.push({ at: iso(now), kind, summary, ...extra });
}

/** What the SoD rule decides on. */
export function factsOf(record: ChangeRecord): ChangeFacts {
  const pushed = record.pending
    .map((e) => e.headSha)
    .filter((sha) => sha !== record.headSha)
    .at(-1);
  return {
    change: record.change,
    headSha: record.headSha,
    ...(record.head ? { head: record.head } : {}),
    ...(pushed ? { pushedHead: pushed } : {}),
    ...(record.blocked ? { blocked: record.blocked } : {}),
    initiators: record.initiators,
    policyChange: record.policyChange,
  };
}

/** Environments as the policy lists them; keeps what earlier runs recorded for those still named. */
export function alignEnvironments(record: ChangeRecord, policy: ChangePolicy): void {
  record.environments = policy.environments.map((env) => {
    const prior = record.environments.find((e) => e.name === env.name);
    return prior
      ? { ...prior, required: env.required }
      : { name: env.name, required: env.required, approvedBy: [], state: 'pending' };
  });
}

/**
 * A record a run started before core v2 kept: its initiators, nonces, history and runs carry over; its
 * approvals do not count (they were recorded without their signatures), nor its checks.
 */
export function fromLegacy(legacy: Record<string, unknown>, now: number): ChangeRecord {
  const record = newRecord(String(legacy.change ?? ''));
  const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
  record.title = String(legacy.title ?? '');
  record.author = String(legacy.author ?? '');
  record.headRef = String(legacy.headRef ?? '');
  record.superseded = list<string>(legacy.superseded);
  record.deliveries = list<string>(legacy.deliveries);
  record.initiators = (
    legacy.initiators && typeof legacy.initiators === 'object' ? legacy.initiators : {}
  ) as Initiators;
  record.nonces = list<string>(legacy.nonces);
  record.timeline = list<TimelineEntry>(legacy.timeline);
  record.environments = list<EnvironmentStatus>(legacy.environments).map((e) => ({
    ...e,
    state: e.state === 'deployed' ? e.state : 'pending',
    approvedBy: [],
  }));
  record.approvals = list<ApprovalRecord>(legacy.approvals).map((a) =>
    a.counted && !a.voidedAt && a.claim?.decision === 'approve'
      ? {
          ...a,
          voidedAt: iso(now),
          voidReason: 'void: recorded before foureyes kept the signature of every approval; approve again',
        }
      : a,
  );
  record.runs = list<string>(legacy.runIds).map((runId) => ({ runId, startedAt: '', how: 'first' as const }));
  record.pending = list<PullRequestEvent>(legacy.pendingEvents);
  // The head it knew: GitHub is asked again before anything counts.
  record.headSha = String(legacy.headSha ?? '');
  note(
    record,
    now,
    'upgraded',
    'the record was carried into core v2: approvals before the upgrade no longer count, checks run again',
  );
  return record;
}

// ---------------------------------------------------------------------------------------------
// Pull request events

export type EventEffect = 'duplicate' | 'refused' | 'queued';

/**
 * A pull request event or close as it arrives: refused (and recorded) unless the gateway signed it for this
 * change; a redelivery has no effect. Whoever pushed took part, whatever the look-up finds: an initiator at once.
 */
export function receiveEvent(
  record: ChangeRecord,
  policy: ChangePolicy,
  event: PullRequestEvent,
  now: number,
): EventEffect {
  if (isDuplicate(record, event)) return 'duplicate';
  if (
    !acceptSigned(
      record,
      policy,
      event,
      `a ${String(event?.kind)} event for ${shortSha(String(event?.headSha ?? ''))}`,
      now,
    )
  )
    return 'refused';
  record.pending.push(event);
  if (event.pusher) addInitiator(record.initiators, event.pusher.toLowerCase(), `pusher of ${shortSha(event.headSha)}`);
  return 'queued';
}

/** The pull request was closed (merged or not), if the gateway says so. */
export function receiveClosed(
  record: ChangeRecord,
  policy: ChangePolicy,
  closed: PullRequestClosed,
  now: number,
  /** Whether closes are ordered (a patch in the workflow: runs recorded before it took any signed close). */
  ordered: () => boolean = () => true,
): EventEffect {
  if (record.closed || isDuplicate(record, closed)) return 'duplicate';
  if (!acceptSigned(record, policy, closed, 'a close', now)) return 'refused';
  const order = decideCloseOrder(closed.at, record.lastClosedAt);
  if (order.verdict === 'refused' && ordered()) {
    note(record, now, 'event-refused', `refused a close: ${order.reason}`);
    return 'refused';
  }
  if (order.verdict === 'accepted') record.lastClosedAt = closed.at;
  remember(record, closed.deliveryId);
  record.closed = { at: closed.at, merged: closed.merged, ...(closed.closedBy ? { closedBy: closed.closedBy } : {}) };
  note(
    record,
    now,
    'closed',
    `the pull request was ${closed.merged ? 'merged' : 'closed'}${closed.closedBy ? ` by ${closed.closedBy}` : ''}`,
    closed.closedBy ? { actor: closed.closedBy } : {},
  );
  return 'queued';
}

function isDuplicate(record: ChangeRecord, event: { deliveryId?: unknown }): boolean {
  const id = typeof event?.deliveryId === 'string' ? event.deliveryId : '';
  return id !== '' && (record.deliveries.includes(id) || record.pending.some((e) => e.deliveryId === id));
}

function acceptSigned(
  record: ChangeRecord,
  policy: ChangePolicy,
  event: PullRequestEvent | PullRequestClosed,
  what: string,
  now: number,
): boolean {
  const decision = decideEvent(event, policy.approvalKeys, record.change);
  if (decision.verdict === 'accepted') return true;
  note(record, now, 'event-refused', `refused ${what}: ${decision.reason}`);
  return false;
}

function remember(record: ChangeRecord, deliveryId: string): void {
  record.deliveries.push(deliveryId);
  if (record.deliveries.length > MAX_DELIVERIES) record.deliveries.splice(0, record.deliveries.length - MAX_DELIVERIES);
}

export type LookupEffect = 'stale' | 'new-head' | 'updated' | 'base-changed' | 'unconfirmed';

/**
 * Applies an accepted event with what the orchestrator read from GitHub for it. GitHub decides the head, its
 * base, commits and files: an event whose head GitHub does not show (anymore) moves nothing.
 */
/**
 * What a signed event and GitHub's answer for it do to the record. `headEvidence` (HEAD_EVIDENCE_PATCH): the
 * head keeps who moved it there — the pusher a signed push named, or that no push named one.
 */
export function applyLookedUp(
  record: ChangeRecord,
  policy: ChangePolicy,
  event: PullRequestEvent,
  found: PullRequestFacts,
  now: number,
  headEvidence = false,
): LookupEffect {
  remember(record, event.deliveryId);
  const head = found.head;
  collectInitiators(policy.people, { author: found.author, commits: head.commits }, record.initiators);
  if (event.beforeSha && event.beforeSha !== event.headSha && !record.superseded.includes(event.beforeSha))
    record.superseded.push(event.beforeSha);
  record.title = found.title;
  record.headRef = found.headRef;
  if (event.kind === 'reopened' && record.closed && found.state === 'open') {
    delete record.closed;
    note(
      record,
      now,
      'reopened',
      `the pull request was reopened${event.pusher ? '' : ` (${found.author}'s)`} before the run ended: the change goes on`,
      { sha: event.headSha },
    );
  }
  if (!record.author) record.author = found.author.toLowerCase();
  const actor = { sha: event.headSha, actor: event.pusher ?? event.author };

  if (head.sha !== event.headSha) {
    // A later event will bring GitHub's head (and its pusher); until then the current head stands only if it is GitHub's.
    if (record.pending.some((e) => e !== event && e.headSha === head.sha) || record.headSha === head.sha) {
      note(
        record,
        now,
        'event-ignored',
        `ignored a ${event.kind} event for ${shortSha(event.headSha)}: GitHub's head is ${shortSha(head.sha)}`,
        actor,
      );
      return 'stale';
    }
    record.blocked = `GitHub shows ${shortSha(head.sha)} as the head, but no event for it has arrived (so foureyes does not know who pushed it): redeliver the push from the webhook's recent deliveries, or push again`;
    voidApprovals(record, now, () => true, `void: GitHub's head is now ${shortSha(head.sha)}`);
    note(record, now, 'head-unconfirmed', record.blocked, actor);
    return 'unconfirmed';
  }
  delete record.blocked;
  const files = head.files;
  record.policyChange = policyFilesTouched(files, policy.policyPaths).length > 0;
  // Only a signed push names who put a commit at the head; any other event that moves it leaves that unknown.
  const namedPusher = event.kind === 'synchronize' && event.pusher ? event.pusher.toLowerCase() : undefined;
  if (head.sha === record.headSha && record.head) {
    const before = record.head.baseRef;
    const pushedBy = namedPusher ?? record.head.pushedBy;
    record.head = headEvidence
      ? {
          ...head,
          identityRules: 2,
          ...(pushedBy ? { pushedBy } : {}),
          ...(record.head.pusherUnknown && !namedPusher ? { pusherUnknown: true } : {}),
        }
      : head;
    if (before !== head.baseRef) {
      voidApprovals(record, now, () => true, `void: the pull request's base changed from ${before} to ${head.baseRef}`);
      note(
        record,
        now,
        'base-changed',
        `the pull request now targets ${head.baseRef} (was ${before}): approvals void, commits and files read again`,
        actor,
      );
      return 'base-changed';
    }
    note(record, now, 'pull-request', `${event.kind}: head still ${shortSha(head.sha)}`, actor);
    return 'updated';
  }
  const first = record.headSha === '';
  const wasKnown = record.headSha;
  record.headSha = head.sha;
  // Reopened with a head no push event named: nobody told foureyes who pushed it.
  record.head = headEvidence
    ? {
        ...head,
        identityRules: 2,
        ...(namedPusher ? { pushedBy: namedPusher } : {}),
        ...(wasKnown !== '' && !namedPusher ? { pusherUnknown: true } : {}),
      }
    : { ...head, ...(event.kind === 'reopened' && wasKnown !== '' ? { pusherUnknown: true } : {}) };
  if (wasKnown && !record.superseded.includes(wasKnown)) record.superseded.push(wasKnown);
  newHead(record, now);
  const who = event.pusher ?? event.author;
  note(
    record,
    now,
    first ? 'opened' : 'pushed',
    first
      ? `${found.author} opened the change at ${shortSha(head.sha)} (${head.commits.length} commit(s)${event.pusher ? `, last pushed by ${event.pusher}` : ''})`
      : `${who} pushed ${shortSha(head.sha)} (${head.commits.length} commit(s) in the pull request); approvals void, checks restart`,
    actor,
  );
  return 'new-head';
}

/** The look-up of an event kept failing: the head moves (the push did happen) but nobody can approve it. */
export function applyLookupFailure(record: ChangeRecord, event: PullRequestEvent, message: string, now: number): void {
  remember(record, event.deliveryId);
  // What the gateway signed names the pull request and its author (who took part, so an initiator either way).
  if (!record.title) record.title = event.title;
  if (!record.author && event.author) record.author = event.author.toLowerCase();
  if (event.kind === 'opened' && event.author)
    addInitiator(record.initiators, event.author.toLowerCase(), 'author of the pull request');
  record.blocked = `the commits of ${shortSha(event.headSha)} could not be read from GitHub (${message}), so who initiated them is unknown: push again or close and reopen the pull request`;
  if (event.headSha !== record.headSha) {
    if (record.headSha && !record.superseded.includes(record.headSha)) record.superseded.push(record.headSha);
    record.headSha = event.headSha;
    delete record.head;
    newHead(record, now);
  }
  note(record, now, 'commits-unknown', record.blocked, { sha: event.headSha });
}

function newHead(record: ChangeRecord, now: number): void {
  voidApprovals(record, now, () => true, 'void: new commits pushed');
  delete record.rejection;
  delete record.checks;
  for (const env of record.environments) {
    env.state = 'pending';
    env.approvedBy = [];
    delete env.deploy;
    delete env.verify;
  }
}

export function voidApprovals(
  record: ChangeRecord,
  now: number,
  which: (r: ApprovalRecord) => boolean,
  reason: string,
): number {
  let count = 0;
  for (const r of record.approvals) {
    if (r.counted && !r.voidedAt && r.claim.decision === 'approve' && which(r)) {
      r.voidedAt = iso(now);
      r.voidReason = reason;
      count++;
    }
  }
  return count;
}

/**
 * Voids the counted approvals that no environment they cover counts any longer under the policy in force
 * (expired, key no longer trusted, person no longer eligible or now an initiator), with the reason.
 */
export function lapseApprovals(record: ChangeRecord, policy: ChangePolicy, now: number): void {
  const facts = factsOf(record);
  for (const r of record.approvals) {
    if (!r.counted || r.voidedAt || r.claim.decision !== 'approve' || r.claim.sha !== record.headSha) continue;
    const envs = policy.environments.filter((e) => r.environments.includes(e.name));
    const lapses = envs.map((e) => approvalLapse(policy, e, facts, r, now));
    if (envs.length > 0 && lapses.every((l) => l !== undefined)) {
      r.voidedAt = iso(now);
      r.voidReason = (lapses[0] as string).startsWith('void:') ? (lapses[0] as string) : `void: ${lapses[0] as string}`;
      note(record, now, 'approval-void', `${r.claim.person}'s approval of ${shortSha(r.claim.sha)}: ${r.voidReason}`, {
        sha: r.claim.sha,
        actor: r.claim.person,
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Approvals

/** The claim as received, reduced to well-formed strings so a forged payload is recorded, never trusted. */
export function sanitizeClaim(raw: unknown): ApprovalClaim {
  const c = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v.slice(0, MAX_CLAIM_TEXT) : '');
  const evidence: Record<string, string> = {};
  if (c.evidence && typeof c.evidence === 'object') {
    for (const [k, v] of Object.entries(c.evidence as Record<string, unknown>).slice(0, 20))
      evidence[k.slice(0, 100)] = text(v);
  }
  const channel = text(c.channel);
  const decision = text(c.decision);
  return {
    v: 1,
    change: text(c.change),
    sha: text(c.sha),
    person: text(c.person).toLowerCase(),
    channel: (['github', 'slack', 'cli', 'api', 'teams'].includes(channel)
      ? channel
      : 'api') as ApprovalClaim['channel'],
    decision: (['approve', 'reject', 'dismiss'].includes(decision) ? decision : 'approve') as ApprovalClaim['decision'],
    ...(typeof c.environment === 'string' ? { environment: text(c.environment) } : {}),
    evidence,
    ...(typeof c.comment === 'string' ? { comment: text(c.comment) } : {}),
    at: text(c.at),
    nonce: text(c.nonce),
  };
}

/** Decides one signed approval, rejection or dismissal (src/policy/sod.ts) and records the attempt with its signature. */
export function receiveApproval(
  record: ChangeRecord,
  policy: ChangePolicy,
  signed: SignedApproval,
  now: number,
): Decision {
  const claim = sanitizeClaim(signed?.claim);
  const decision = decideApproval(signed, {
    policy,
    facts: factsOf(record),
    now,
    nonceSeen: (n) => record.nonces.includes(n),
    reviewOwed: (sha) =>
      record.emergencies?.some((e) => !e.closedHow && e.usedFor.length > 0 && e.sha === sha) ?? false,
  });
  const counted = decision.verdict === 'counted';
  if (decision.keyId && claim.nonce && !record.nonces.includes(claim.nonce)) {
    record.nonces.push(claim.nonce);
    if (record.nonces.length > MAX_NONCES) record.nonces.splice(0, record.nonces.length - MAX_NONCES);
  }
  const signature = typeof signed?.signature === 'string' ? signed.signature.slice(0, 200) : undefined;
  record.approvals.push({
    claim,
    ...(signature ? { signature } : {}),
    ...(decision.keyId ? { keyId: decision.keyId } : {}),
    ...(policy.digest ? { policyDigest: policy.digest } : {}),
    recordedAt: iso(now),
    counted,
    reason: decision.reason,
    environments: decision.environments,
  });
  if (counted && claim.decision === 'reject')
    record.rejection = {
      sha: claim.sha,
      person: claim.person,
      ...(claim.evidence.reviewId ? { reviewId: claim.evidence.reviewId } : {}),
    };
  if (counted && claim.decision === 'dismiss') {
    const reviewId = claim.channel === 'github' ? claim.evidence.reviewId : undefined;
    const same = (r: ApprovalRecord) =>
      r.claim.person === claim.person &&
      (reviewId === undefined || (r.claim.channel === 'github' && r.claim.evidence.reviewId === reviewId));
    voidApprovals(record, now, same, `void: ${claim.person} dismissed the review`);
    if (
      record.rejection &&
      record.rejection.person === claim.person &&
      (reviewId === undefined || record.rejection.reviewId === reviewId)
    )
      delete record.rejection;
  }
  note(
    record,
    now,
    `${claim.decision}-${decision.verdict}`,
    `${claim.person || 'unknown'} via ${claim.channel}: ${decision.reason}`,
    { sha: claim.sha, actor: claim.person || 'unknown' },
  );
  return decision;
}

/** Checks results count for the head only when one of the change's own runs recorded them. */
export function checksPassedOn(record: ChangeRecord, head: string): boolean {
  const checks = record.checks;
  return (
    checks !== undefined &&
    checks.sha === head &&
    checks.passed &&
    checks.runId !== undefined &&
    record.runs.some((r) => r.runId === checks.runId)
  );
}

// ---------------------------------------------------------------------------------------------
// Status

export function environmentsView(
  record: ChangeRecord,
  policy: ChangePolicy | undefined,
  now: number,
): EnvironmentStatus[] {
  const facts = factsOf(record);
  return record.environments.map((env) => {
    const envPolicy = policy?.environments.find((e) => e.name === env.name);
    if (!policy || !envPolicy || !record.headSha) return env;
    const gate = gateState(policy, envPolicy, facts, record.approvals, now);
    const emergency = record.emergencies?.find((e) => e.sha === record.headSha && e.usedFor.includes(env.name));
    return {
      ...env,
      approvedBy: gate.approvers,
      ...(emergency ? { emergency: emergency.declaredBy } : {}),
      state: env.state === 'pending' && gate.open ? 'approved' : env.state,
    };
  });
}

export function statusOf(record: ChangeRecord, policy: ChangePolicy | undefined, now: number): ChangeStatus {
  const unknown = record.head && policy ? unknownIdentities(policy.people, record.head.commits, record.head) : [];
  return {
    change: record.change,
    title: record.title,
    stage: record.stage,
    waitingFor: record.waitingFor,
    headSha: record.headSha,
    author: record.author,
    initiators: Object.keys(record.initiators).sort(),
    policyChange: record.policyChange,
    ...(record.checks ? { checks: record.checks } : {}),
    approvals: record.approvals,
    environments: environmentsView(record, policy, now),
    timeline: record.timeline,
    runIds: record.runs.map((r) => r.runId),
    runs: record.runs,
    ...(record.head ? { baseRef: record.head.baseRef } : {}),
    ...(unknown.length > 0 ? { unknownIdentities: unknown } : {}),
    ...(record.emergencies?.length ? { emergencies: record.emergencies.map((e) => emergencyView(e, now)) } : {}),
  };
}

/** Whose approvals count toward `env` at the head now. */
export function gateApprovers(
  record: ChangeRecord,
  policy: ChangePolicy,
  env: EnvironmentPolicy,
  now: number,
): string[] {
  return [...gateState(policy, env, factsOf(record), record.approvals, now).approvers].sort();
}

/** Everyone whose approval currently counts toward some environment of the head. */
export function currentApprovers(record: ChangeRecord, policy: ChangePolicy, now: number): string[] {
  const facts = factsOf(record);
  const all = new Set<string>();
  for (const env of policy.environments)
    for (const p of gateState(policy, env, facts, record.approvals, now).approvers) all.add(p);
  return [...all].sort();
}

/** Why `env` cannot be delivered at `head` now, in one line, or undefined when its gate is open. */
export function gateWait(
  record: ChangeRecord,
  policy: ChangePolicy,
  env: EnvironmentPolicy,
  now: number,
): string | undefined {
  const gate = gateOf(record, policy, env, now);
  return gate.open ? undefined : gate.waitingFor;
}

/** The gate of `env` at the head: approvals, or the emergency open for the head. */
export function gateOf(record: ChangeRecord, policy: ChangePolicy, env: EnvironmentPolicy, now: number): GateState {
  return gateState(
    policy,
    env,
    factsOf(record),
    record.approvals,
    now,
    openEmergency(record.emergencies, record.headSha, now),
  );
}

// ---------------------------------------------------------------------------------------------
// Break-glass

/** Decides a signed emergency declaration (src/policy/sod.ts) and records it when taken. */
export function receiveEmergency(
  record: ChangeRecord,
  policy: ChangePolicy,
  signed: SignedEmergency,
  now: number,
): EmergencyOutcome {
  closeLapsedEmergencies(record, now);
  const head = record.headSha;
  const checks = record.checks?.sha === head ? (record.checks.passed ? 'passed' : 'failed') : 'pending';
  const decision = decideEmergency({
    signed,
    policy,
    facts: factsOf(record),
    emergencies: record.emergencies ?? [],
    checks,
    closed: record.closed !== undefined,
    nonceSeen: (n) => record.nonces.includes(n),
    now,
  });
  const claim = signed?.claim;
  const person = typeof claim?.person === 'string' ? claim.person.toLowerCase().slice(0, 100) : 'unknown';
  if (decision.keyId && typeof claim?.nonce === 'string' && !record.nonces.includes(claim.nonce))
    record.nonces.push(claim.nonce.slice(0, 100));
  if (decision.verdict !== 'accepted' || !claim || !decision.keyId) {
    note(record, now, 'emergency-refused', `${person}: ${decision.reason}`, { sha: head, actor: person });
    return { taken: false, reason: decision.reason };
  }
  const emergencyPolicy = policy.emergency as NonNullable<ChangePolicy['emergency']>;
  const emergency: EmergencyRecord = {
    id: claim.nonce,
    sha: claim.sha,
    declaredBy: person,
    channel: claim.channel === 'cli' ? 'cli' : 'api',
    reason: String(claim.reason).slice(0, 2000),
    declaredAt: iso(now),
    windowEndsAt: iso(now + emergencyPolicy.windowMs),
    reviewDueAt: iso(now + emergencyPolicy.reviewWithinMs),
    environments: decision.environments ?? [],
    keyId: decision.keyId,
    signature: String(signed.signature).slice(0, 200),
    ...(policy.digest ? { policyDigest: policy.digest } : {}),
    usedFor: [],
  };
  (record.emergencies ??= []).push(emergency);
  note(
    record,
    now,
    'emergency-declared',
    `${decision.reason} until ${emergency.windowEndsAt}, review due ${emergency.reviewDueAt}: ${emergency.reason}`,
    { sha: head, actor: person },
  );
  return { taken: true, reason: decision.reason, emergency: emergencyView(emergency, now) };
}

/** An emergency's gate opened for `env`: a deploy under it owes the review. */
export function useEmergency(record: ChangeRecord, id: string, env: string, now: number): void {
  const e = record.emergencies?.find((x) => x.id === id);
  if (!e || e.usedFor.includes(env)) return;
  e.usedFor.push(env);
  e.deployedAt ??= iso(now);
  note(
    record,
    now,
    'emergency-gate-open',
    `${env}: open without approval under the emergency declared by ${e.declaredBy} (review due ${e.reviewDueAt})`,
    { sha: e.sha, actor: e.declaredBy },
  );
}

/** Closes emergencies whose review has come (an approval that qualifies, src/policy/sod.ts); true when one closed. */
export function reviewEmergencies(record: ChangeRecord, policy: ChangePolicy, now: number): boolean {
  let closed = false;
  const facts = factsOf(record);
  for (const e of record.emergencies ?? []) {
    if (e.closedHow || e.usedFor.length === 0) continue;
    const review = emergencyReview(policy, facts, e, record.approvals);
    if (!review.complete || !review.reviewedAt) continue;
    e.reviewedBy = review.reviewers.join(', ');
    e.reviewedAt = review.reviewedAt;
    e.closedAt = iso(now);
    e.closedHow = 'reviewed';
    const late = Date.parse(review.reviewedAt) > Date.parse(e.reviewDueAt);
    note(
      record,
      now,
      'emergency-reviewed',
      `${e.reviewedBy} reviewed the emergency declared by ${e.declaredBy}${late ? ` late (due ${e.reviewDueAt})` : ''}`,
      { sha: e.sha, actor: e.reviewedBy },
    );
    closed = true;
  }
  return closed;
}

/** Closes unused emergencies whose window ended or whose head was replaced; true when one closed. */
export function closeLapsedEmergencies(record: ChangeRecord, now: number): boolean {
  let closed = false;
  for (const e of record.emergencies ?? []) {
    const lapse = e.closedHow ? undefined : emergencyLapse(e, record.headSha, now);
    if (!lapse) continue;
    e.closedAt = iso(now);
    e.closedHow = 'lapsed';
    note(record, now, 'emergency-lapsed', `the emergency declared by ${e.declaredBy} lapsed: ${lapse}`, { sha: e.sha });
    closed = true;
  }
  return closed;
}

/** The review is overdue: recorded once, as the audit's finding. */
export function markEmergencyOverdue(record: ChangeRecord, e: EmergencyRecord, now: number): void {
  if (e.overdueAt || e.closedHow) return;
  e.overdueAt = iso(now);
  note(
    record,
    now,
    'emergency-overdue',
    `finding: the emergency declared by ${e.declaredBy} for ${shortSha(e.sha)} was not reviewed by ${e.reviewDueAt}`,
    { sha: e.sha },
  );
}

export { headRefusal };
