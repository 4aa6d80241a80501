// FROZEN (core v1): the code that runs started before core v2 (the patch `core-v2` in ../change.ts) keep
// running and replaying with, unchanged. New behaviour goes into the v2 modules beside ../change.ts, never here.
// The record of one change and the transitions the events make on it. Deterministic (workflow code):
// time is passed in; everything here survives continue-as-new as plain JSON.
import { verifySignedApproval } from '../../shared/approval-signature.ts';
import type { TeamsCardRecord } from '../../shared/teams-card.ts';
import {
  addInitiator,
  approvalExpiresAt,
  collectInitiators,
  decideClaim,
  SIGNATURE_REFUSAL,
  gateState,
  policyFilesTouched,
  shortSha,
  type Initiators,
} from './sod.ts';
import type {
  ApprovalClaim,
  ApprovalOutcome,
  ApprovalRecord,
  ChangePolicy,
  ChangeStage,
  ChangeStatus,
  ChecksReport,
  EnvironmentStatus,
  PullRequestEvent,
  SignedApproval,
  TimelineEntry,
} from '../../shared/types.ts';

export interface ChangeState {
  change: string;
  title: string;
  author: string;
  headSha: string;
  baseRef: string;
  headRef: string;
  /** updated_at of the newest pull request event applied. */
  updatedAt: string;
  /** Heads that a later push replaced: events naming them as head are stale. */
  superseded: string[];
  /** Recent delivery IDs, to give duplicate deliveries one effect. */
  deliveries: string[];
  initiators: Initiators;
  changedFiles: string[];
  policyChange: boolean;
  stage: ChangeStage;
  waitingFor: string;
  checks?: ChecksReport;
  approvals: ApprovalRecord[];
  /** Nonces of claims with a valid signature (a forged claim cannot burn a real nonce). */
  nonces: string[];
  /** A counted rejection of the current head: delivery waits for new commits. */
  rejection?: { sha: string; person: string; reviewId?: string };
  environments: EnvironmentStatus[];
  timeline: TimelineEntry[];
  runIds: string[];
  closed?: { at: string; merged: boolean; closedBy?: string };
  /** Head SHA whose approval request was posted to chat (once per head). */
  slackNotified?: string;
  /** The approval card posted to Teams and kept current (src/workflows/teams-card.ts). */
  teamsCard?: TeamsCardRecord;
  /**
   * Pull request events received without their commits, oldest first, the first being looked up: applied
   * one at a time in arrival order once the orchestrator has read their commits and files from GitHub.
   * Absent when none waits (and in every record made before events came without commits).
   */
  pendingEvents?: PullRequestEvent[];
  /** A head whose commits GitHub could not list (the look-up failed): nobody can approve it, nothing delivers it. */
  commitsUnknown?: string;
}

const MAX_DELIVERIES = 500;
const MAX_CLAIM_TEXT = 500;

export function newChangeState(change: string): ChangeState {
  return {
    change,
    title: '',
    author: '',
    headSha: '',
    baseRef: '',
    headRef: '',
    updatedAt: '',
    superseded: [],
    deliveries: [],
    initiators: {},
    changedFiles: [],
    policyChange: false,
    stage: 'checking',
    waitingFor: 'the first pull request event',
    approvals: [],
    nonces: [],
    environments: [],
    timeline: [],
    runIds: [],
  };
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function note(
  state: ChangeState,
  now: number,
  kind: string,
  summary: string,
  extra: { sha?: string; actor?: string } = {},
): void {
  state.timeline.push({ at: iso(now), kind, summary, ...extra });
}

/** Environments as the policy lists them; keeps what a previous run recorded for those still named. */
export function alignEnvironments(state: ChangeState, policy: ChangePolicy): void {
  state.environments = policy.environments.map((env) => {
    const prior = state.environments.find((e) => e.name === env.name);
    return prior
      ? { ...prior, required: env.required }
      : { name: env.name, required: env.required, approvedBy: [], state: 'pending' };
  });
}

// ---------------------------------------------------------------------------------------------
// Pull request events

export type PullRequestEffect = 'duplicate' | 'stale' | 'new-head' | 'updated';

/**
 * Applies a pull request event. Everyone it names joins the initiators even when the event is stale (they
 * did take part); only a current event moves the head, and a new head voids every approval.
 */
export function receivePullRequest(
  state: ChangeState,
  policy: ChangePolicy,
  event: PullRequestEvent,
  now: number,
  options: { commitsUnknown?: boolean } = {},
): PullRequestEffect {
  if (state.deliveries.includes(event.deliveryId)) return 'duplicate';
  state.deliveries.push(event.deliveryId);
  if (state.deliveries.length > MAX_DELIVERIES) state.deliveries.splice(0, state.deliveries.length - MAX_DELIVERIES);

  const author = event.kind === 'opened' || !state.author ? event.author : undefined;
  collectInitiators(policy.people, { ...(author ? { author } : {}), commits: event.commits ?? [] }, state.initiators);
  if (event.pusher) addInitiator(state.initiators, event.pusher.toLowerCase(), `pusher of ${shortSha(event.headSha)}`);
  if (event.beforeSha && event.beforeSha !== event.headSha && !state.superseded.includes(event.beforeSha))
    state.superseded.push(event.beforeSha);

  const stale =
    state.superseded.includes(event.headSha) || (state.updatedAt !== '' && event.updatedAt < state.updatedAt);
  if (stale) {
    note(
      state,
      now,
      'event-ignored',
      `ignored a ${event.kind} event for ${shortSha(event.headSha)}: a newer head is known (its people still count as initiators)`,
      { sha: event.headSha, actor: event.pusher ?? event.author },
    );
    return 'stale';
  }
  state.updatedAt = event.updatedAt;
  if (!state.author) state.author = event.author.toLowerCase();
  state.title = event.title;
  state.baseRef = event.baseRef;
  state.headRef = event.headRef;
  if (event.changedFiles) {
    state.changedFiles = event.changedFiles.slice(0, 3000);
    state.policyChange = policyFilesTouched(state.changedFiles, policy.policyPaths).length > 0;
  }
  if (event.headSha === state.headSha) {
    // The head's commits are known now (another event for it brought or looked them up).
    if (state.commitsUnknown === event.headSha && !options.commitsUnknown) delete state.commitsUnknown;
    note(state, now, 'pull-request', `${event.kind}: head still ${shortSha(event.headSha)}`, {
      sha: event.headSha,
      actor: event.pusher ?? event.author,
    });
    return 'updated';
  }
  const first = state.headSha === '';
  state.headSha = event.headSha;
  if (options.commitsUnknown) state.commitsUnknown = event.headSha;
  else if (state.commitsUnknown !== undefined) delete state.commitsUnknown;
  voidApprovals(state, now, () => true, 'void: new commits pushed');
  state.rejection = undefined;
  state.checks = undefined;
  for (const env of state.environments) {
    env.state = 'pending';
    env.approvedBy = [];
    delete env.deploy;
    delete env.verify;
  }
  const who = event.pusher ?? event.author;
  note(
    state,
    now,
    first ? 'opened' : 'pushed',
    first
      ? `${who} opened the change at ${shortSha(event.headSha)}`
      : `${who} pushed ${shortSha(event.headSha)} (${event.commits?.length ?? 0} new commit(s)); approvals void, checks restart`,
    {
      sha: event.headSha,
      actor: who,
    },
  );
  return 'new-head';
}

export function voidApprovals(
  state: ChangeState,
  now: number,
  which: (r: ApprovalRecord) => boolean,
  reason: string,
): number {
  let count = 0;
  for (const record of state.approvals) {
    if (record.counted && !record.voidedAt && record.claim.decision === 'approve' && which(record)) {
      record.voidedAt = iso(now);
      record.voidReason = reason;
      count++;
    }
  }
  return count;
}

/** Voids counted approvals that no environment counts any longer; returns the next expiry (ms) if any. */
export function expireApprovals(state: ChangeState, policy: ChangePolicy, now: number): number | undefined {
  let next: number | undefined;
  for (const record of state.approvals) {
    if (!record.counted || record.voidedAt || record.claim.decision !== 'approve') continue;
    const expiresAt = approvalExpiresAt(policy, record);
    if (expiresAt <= now) {
      record.voidedAt = iso(now);
      record.voidReason = `void: expired (approved at ${record.recordedAt})`;
      note(
        state,
        now,
        'approval-expired',
        `${record.claim.person}'s approval of ${shortSha(record.claim.sha)} expired`,
        { sha: record.claim.sha, actor: record.claim.person },
      );
    } else if (next === undefined || expiresAt < next) next = expiresAt;
  }
  return next;
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

/** Decides one signed approval, rejection or dismissal and records the attempt, counted or refused. */
export function receiveApproval(
  state: ChangeState,
  policy: ChangePolicy,
  signed: SignedApproval,
  now: number,
): Omit<ApprovalOutcome, 'stage'> {
  const claim = sanitizeClaim(signed?.claim);
  // The signature covers the claim exactly as sent; the record keeps the sanitized copy.
  const signatureOk = verifySignedApproval(signed, policy.approvalKeys);
  const unknownCommits =
    signatureOk &&
    claim.decision === 'approve' &&
    state.commitsUnknown !== undefined &&
    state.commitsUnknown === state.headSha &&
    claim.sha === state.headSha;
  // A push the gateway acknowledged voids the head at once, not only once its commits are read: until then
  // no approval counts, neither of the old head nor of the new one (its initiators are not known yet).
  const pushedHead =
    signatureOk && claim.decision === 'approve'
      ? state.pendingEvents
          ?.map((e) => e.headSha)
          .filter((sha) => sha !== state.headSha)
          .at(-1)
      : undefined;
  const decision = unknownCommits
    ? {
        counted: false,
        reason: `the commits of ${shortSha(state.headSha)} could not be read from GitHub, so who initiated them is unknown: nobody can approve this head; push again or close and reopen the pull request`,
        environments: [],
      }
    : pushedHead !== undefined
      ? {
          counted: false,
          reason: `${shortSha(pushedHead)} was just pushed and its commits are being read from GitHub: ${claim.sha === pushedHead ? 'approve again in a moment, once status shows it as the head' : `${shortSha(claim.sha)} is no longer the head; review ${shortSha(pushedHead)}`}`,
          environments: [],
        }
      : signatureOk
        ? decideClaim(claim, {
            policy,
            change: state.change,
            headSha: state.headSha,
            initiators: state.initiators,
            now,
            nonceSeen: (n) => state.nonces.includes(n),
          })
        : { counted: false, reason: SIGNATURE_REFUSAL, environments: [] };
  if (signatureOk && claim.nonce && !state.nonces.includes(claim.nonce)) state.nonces.push(claim.nonce);
  state.approvals.push({
    claim,
    recordedAt: iso(now),
    counted: decision.counted,
    reason: decision.reason,
    environments: decision.environments,
  });
  const actor = claim.person || 'unknown';

  if (decision.counted && claim.decision === 'reject') {
    state.rejection = {
      sha: claim.sha,
      person: claim.person,
      ...(claim.evidence.reviewId ? { reviewId: claim.evidence.reviewId } : {}),
    };
  }
  if (decision.counted && claim.decision === 'dismiss') {
    const reviewId = claim.channel === 'github' ? claim.evidence.reviewId : undefined;
    const same = (r: ApprovalRecord) =>
      r.claim.person === claim.person &&
      (reviewId === undefined || (r.claim.channel === 'github' && r.claim.evidence.reviewId === reviewId));
    voidApprovals(state, now, same, `void: ${claim.person} dismissed the review`);
    if (
      state.rejection &&
      state.rejection.person === claim.person &&
      (reviewId === undefined || state.rejection.reviewId === reviewId)
    )
      state.rejection = undefined;
  }
  note(
    state,
    now,
    `${claim.decision}-${decision.counted ? 'counted' : 'refused'}`,
    `${actor} via ${claim.channel}: ${decision.reason}`,
    { sha: claim.sha, actor },
  );
  return decision;
}

// ---------------------------------------------------------------------------------------------
// Status

export function environmentsView(
  state: ChangeState,
  policy: ChangePolicy | undefined,
  now: number,
): EnvironmentStatus[] {
  return state.environments.map((env) => {
    const envPolicy = policy?.environments.find((e) => e.name === env.name);
    const approvedBy =
      envPolicy && state.headSha
        ? gateState(policy as ChangePolicy, envPolicy, state.approvals, state.headSha, now, false).approvers
        : env.approvedBy;
    const gateOpen =
      envPolicy && state.headSha
        ? gateState(policy as ChangePolicy, envPolicy, state.approvals, state.headSha, now, state.policyChange).open
        : false;
    const stateNow = env.state === 'pending' && gateOpen ? 'approved' : env.state;
    return { ...env, approvedBy, state: stateNow };
  });
}

export function statusOf(state: ChangeState, policy: ChangePolicy | undefined, now: number): ChangeStatus {
  return {
    change: state.change,
    title: state.title,
    stage: state.stage,
    waitingFor: state.waitingFor,
    headSha: state.headSha,
    author: state.author,
    initiators: Object.keys(state.initiators).sort(),
    policyChange: state.policyChange,
    ...(state.checks ? { checks: state.checks } : {}),
    approvals: state.approvals,
    environments: environmentsView(state, policy, now),
    timeline: state.timeline,
    runIds: state.runIds,
  };
}

/** Everyone whose approval currently counts toward some environment of the head. */
export function currentApprovers(state: ChangeState, policy: ChangePolicy, now: number): string[] {
  const all = new Set<string>();
  for (const env of policy.environments)
    for (const p of gateState(policy, env, state.approvals, state.headSha, now, false).approvers) all.add(p);
  return [...all].sort();
}
