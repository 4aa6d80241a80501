// The Segregation of Duties rule, once: who initiated a change, which inputs the workflow may trust, whether a
// head can be approved at all, whether an approval counts, and when an environment's gate opens. Every refusal
// is decided here and returned as data. Pure and deterministic (no Node built-ins, no clock): the workflow and
// the gateway both import it.
import { approvalSigner, verifySignedEvent } from '../shared/approval-signature.ts';
import {
  laneActivityPrefix,
  parseLaneId,
  type CommitComparison,
  type LaneCallerFacts,
  type LaneRelease,
  type LaneTicket,
} from '../shared/lane.ts';
import {
  parseRollbackId,
  rollbackSigner,
  type RollbackClaim,
  type RollbackEvidence,
  type SignedRollback,
} from '../shared/rollback.ts';
import { emergencySigner, type EmergencyRecord, type SignedEmergency } from '../shared/emergency.ts';
import type {
  ApprovalClaim,
  ApprovalRecord,
  ChangePolicy,
  CommitInfo,
  EnvironmentPolicy,
  HeadFacts,
  Identity,
  PullRequestClosed,
  PullRequestEvent,
  SignedApproval,
  UnknownIdentity,
  Verdict,
} from '../shared/types.ts';

/** Claims dated further ahead than this (clock skew between gateway and workflow) are refused. */
export const MAX_CLOCK_SKEW_MS = 60_000;

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

/** A reason without the `refused: ` / `counted: ` verdict that runs started before core v2 prefixed it with. */
export function reasonText(reason: string): string {
  return reason.replace(/^(refused|counted): /, '');
}

// ---------------------------------------------------------------------------------------------
// Identities

const TRAILER = /^[ \t]*co-authored-by[ \t]*:[ \t]*(.*?)[ \t]*<([^<>\s]+)>[ \t]*$/gim;

/** Every `Co-authored-by: Name <email>` trailer of a commit message (case-insensitive). */
export function parseCoAuthors(message: string): Identity[] {
  const out: Identity[] = [];
  for (const match of (message ?? '').matchAll(TRAILER)) {
    const name = (match[1] ?? '').trim();
    const email = (match[2] ?? '').trim();
    if (email.includes('@')) out.push({ ...(name ? { name } : {}), email });
  }
  return out;
}

// 12345+login@users.noreply.github.com or login@users.noreply.github.com
const NOREPLY = /^(?:\d+\+)?([a-z0-9](?:[a-z0-9-]{0,38}))@users\.noreply\.github\.com$/i;

type People = ChangePolicy['people'];

/** The configured person's GitHub login (lower case) an identity belongs to, or undefined. */
export function resolvePerson(people: People, identity: Identity): string | undefined {
  const login = identity.login?.trim().toLowerCase();
  if (login) {
    const person = people.find((p) => p.github.toLowerCase() === login);
    if (person) return person.github.toLowerCase();
  }
  const email = identity.email?.trim().toLowerCase();
  if (email) {
    const person = people.find((p) => p.emails.some((e) => e.toLowerCase() === email));
    if (person) return person.github.toLowerCase();
    const noreply = NOREPLY.exec(email);
    if (noreply?.[1]) return noreply[1].toLowerCase();
  }
  return undefined;
}

/**
 * The principals an identity stands for. GitHub's own resolution (the commit's linked login) and the
 * configured e-mails both count, and a login and an e-mail that resolve to different people are both kept
 * (either took part). An identity nobody resolves is kept as `email:x@y` (or `name:…`): an unknown identity.
 */
export function principalsOf(people: People, identity: Identity): string[] {
  const out = new Set<string>();
  const login = identity.login?.trim().toLowerCase();
  if (login) out.add(login);
  const email = identity.email?.trim().toLowerCase();
  if (email) {
    const byEmail = resolvePerson(people, { email });
    if (byEmail) out.add(byEmail);
    else if (!login) out.add(`email:${email}`);
  }
  if (out.size === 0 && identity.name?.trim()) out.add(`name:${identity.name.trim()}`);
  return [...out];
}

/** Principal -> the parts they took, e.g. `{ alex: ['author of commit 1a2b3c4'] }`. */
export type Initiators = Record<string, string[]>;

const MAX_ROLES_PER_PRINCIPAL = 20;

export function addInitiator(initiators: Initiators, principal: string, role: string): void {
  const roles = (initiators[principal] ??= []);
  if (!roles.includes(role) && roles.length < MAX_ROLES_PER_PRINCIPAL) roles.push(role);
}

export interface Participation {
  /** PR author login. */
  author?: string;
  commits?: CommitInfo[];
  /** Logins of everyone who pushed to the branch. */
  pushers?: string[];
}

/** Adds everyone who took part (PR author, commit authors, committers, co-authors, pushers) to `initiators`. */
export function collectInitiators(people: People, part: Participation, initiators: Initiators = {}): Initiators {
  if (part.author) addInitiator(initiators, part.author.toLowerCase(), 'author of the pull request');
  for (const commit of part.commits ?? []) {
    const sha = shortSha(commit.sha);
    for (const p of principalsOf(people, commit.author ?? {})) addInitiator(initiators, p, `author of commit ${sha}`);
    for (const p of principalsOf(people, commit.committer ?? {}))
      addInitiator(initiators, p, `committer of commit ${sha}`);
    for (const co of parseCoAuthors(commit.message))
      for (const p of principalsOf(people, co)) addInitiator(initiators, p, `co-author of commit ${sha}`);
  }
  for (const pusher of part.pushers ?? []) if (pusher) addInitiator(initiators, pusher.toLowerCase(), 'pusher');
  return initiators;
}

/**
 * Commit identities (authors, committers, co-authors) that map to nobody: no linked login, no configured e-mail.
 * With `head` (identity rules 2) also a noreply address GitHub did not link to a configured person (git lets
 * anyone write one) and a pusher who is no configured person (a bot's push can carry anyone's commit).
 */
export function unknownIdentities(
  people: People,
  commits: readonly CommitInfo[],
  head?: Pick<HeadFacts, 'sha' | 'pushedBy' | 'identityRules'>,
): UnknownIdentity[] {
  const out: UnknownIdentity[] = [];
  const seen = new Set<string>();
  const strict = head?.identityRules === 2;
  const configured = (login: string) => people.some((p) => p.github.toLowerCase() === login.toLowerCase());
  const check = (identity: Identity, sha: string, role: UnknownIdentity['role']) => {
    const email = identity.email?.trim().toLowerCase();
    if (strict && !identity.login?.trim() && email) {
      const noreply = NOREPLY.exec(email)?.[1];
      if (
        noreply &&
        !configured(noreply) &&
        !people.some((p) => p.emails.some((e) => e.toLowerCase() === email)) &&
        !seen.has(`${email}@${sha}@${role}`)
      ) {
        seen.add(`${email}@${sha}@${role}`);
        out.push({ identity: email, sha, role });
      }
    }
    const principals = principalsOf(people, identity);
    for (const p of principals) {
      if (!p.startsWith('email:') && !p.startsWith('name:')) continue;
      const key = `${p}@${sha}@${role}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ identity: p.replace(/^(email|name):/, ''), sha, role });
    }
  };
  for (const c of commits) {
    check(c.author ?? {}, c.sha, 'author');
    check(c.committer ?? {}, c.sha, 'committer');
    for (const co of parseCoAuthors(c.message)) check(co, c.sha, 'co-author');
  }
  if (strict && head?.pushedBy && !configured(head.pushedBy))
    out.push({ identity: head.pushedBy, sha: head.sha, role: 'pusher' });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Policy changes

/** Glob to RegExp: `**` crosses directories, `*` and `?` do not. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      if (glob[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Changed files that fall under the policy paths (the change alters policy or delivery). */
export function policyFilesTouched(changedFiles: readonly string[], policyPaths: readonly string[]): string[] {
  const patterns = policyPaths.map(globToRegExp);
  return changedFiles.filter((file) => patterns.some((p) => p.test(file.replace(/^\.?\//, ''))));
}

// ---------------------------------------------------------------------------------------------
// What reaches the workflow from outside

export interface InputDecision {
  verdict: 'accepted' | 'refused';
  reason: string;
}

export const UNSIGNED_EVENT =
  'it is not signed by a trusted gateway key (pull request events come only through the gateway)';

/** A pull request event (or close) is taken only when a trusted gateway key signed it for this very change. */
export function decideEvent(
  event: PullRequestEvent | PullRequestClosed,
  trustedKeys: readonly string[],
  change: string,
): InputDecision {
  if (!verifySignedEvent(event, trustedKeys)) return { verdict: 'refused', reason: UNSIGNED_EVENT };
  if (event.change !== change)
    return { verdict: 'refused', reason: `it was signed for ${String(event.change)}, not ${change}` };
  return { verdict: 'accepted', reason: 'signed by the gateway' };
}

/**
 * A signed close is taken only when it is newer than every close already taken: an old close replayed once its
 * delivery ID has left the (bounded) list of deliveries would otherwise end a reopened change.
 */
export function decideCloseOrder(closedAt: string, lastClosedAt: string | undefined): InputDecision {
  const at = Date.parse(closedAt);
  if (!Number.isFinite(at)) return { verdict: 'refused', reason: `its time ${JSON.stringify(closedAt)} is not a time` };
  if (lastClosedAt !== undefined && at <= Date.parse(lastClosedAt))
    return {
      verdict: 'refused',
      reason: `it is the close of ${closedAt}, not later than the close of ${lastClosedAt} already taken: a replayed close`,
    };
  return { verdict: 'accepted', reason: 'newer than any close taken' };
}

/** The workflow ID a run must have for its input to name the change it works on. */
export function decideRunIdentity(workflowId: string, canonicalWorkflowId: string | undefined): InputDecision {
  if (!canonicalWorkflowId)
    return { verdict: 'refused', reason: `the input does not name a change (owner/repo#number)` };
  if (workflowId !== canonicalWorkflowId)
    return {
      verdict: 'refused',
      reason: `the workflow ID ${workflowId} is not ${canonicalWorkflowId}: a change runs only under its own ID`,
    };
  return { verdict: 'accepted', reason: 'the workflow ID is the change' };
}

/** What the orchestrator found out about the run a carried record came from. */
export interface Predecessor {
  runId: string;
  workflowType: string;
  taskQueue: string;
  /** How that run closed: only `continued-as-new` hands a record on. */
  status: string;
}

/**
 * A carried record is taken only from the workflow's own previous run: this run continued from it, it ran
 * changeWorkflow on the orchestrator's own task queue (so foureyes' code wrote the record), and it continued as
 * new. Anything else is a record someone wrote.
 */
export function decideCarriedRecord(input: {
  workflowId: string;
  continuedFromRunId?: string;
  taskQueue: string;
  predecessor?: Predecessor;
  workflowType?: string;
}): InputDecision {
  const { workflowId, continuedFromRunId, taskQueue, predecessor } = input;
  const workflowType = input.workflowType ?? 'changeWorkflow';
  const refused = (why: string): InputDecision => ({
    verdict: 'refused',
    reason: `the carried record is not from a run of ${workflowId}: ${why}`,
  });
  if (!continuedFromRunId)
    return {
      verdict: 'refused',
      reason: `a carried record was handed to a run that was not continued from a run of ${workflowId} (a start cannot carry one)`,
    };
  if (!predecessor) return refused(`run ${continuedFromRunId} cannot be found`);
  if (predecessor.workflowType !== workflowType)
    return refused(`run ${predecessor.runId} ran ${predecessor.workflowType}, not ${workflowType}`);
  if (predecessor.taskQueue !== taskQueue)
    return refused(`run ${predecessor.runId} ran on task queue ${predecessor.taskQueue}, not ${taskQueue}`);
  if (predecessor.status !== 'continued-as-new')
    return refused(`run ${predecessor.runId} ${predecessor.status}, it did not continue as new`);
  return { verdict: 'accepted', reason: `continued from run ${predecessor.runId}` };
}

// ---------------------------------------------------------------------------------------------
// Whether a head can be approved at all

/** What the workflow knows about the change, each fact from a signed event or its own look-up. */
export interface ChangeFacts {
  change: string;
  /** The current head ('' before the first event was applied). */
  headSha: string;
  head?: HeadFacts;
  /** A push the gateway acknowledged whose look-up has not finished: no head is current until it has. */
  pushedHead?: string;
  /** Why no head can be approved right now (its look-up failed, GitHub shows another head). */
  blocked?: string;
  initiators: Initiators;
  policyChange: boolean;
}

/** Why nobody can approve the current head for `env` (without `env`: for any environment), or undefined. */
export function headRefusal(policy: ChangePolicy, facts: ChangeFacts, env?: EnvironmentPolicy): string | undefined {
  if (facts.pushedHead !== undefined && facts.pushedHead !== facts.headSha)
    return `${shortSha(facts.pushedHead)} was just pushed and its commits are being read from GitHub`;
  if (facts.blocked) return facts.blocked;
  const head = facts.head;
  if (!head || head.sha !== facts.headSha)
    return 'foureyes has not read the head commit of the pull request from GitHub yet';
  if (head.incomplete) return `${head.incomplete}, so foureyes cannot see who wrote the rest: split the pull request`;
  if (head.pusherUnknown)
    return `${shortSha(head.sha)} became the head without a push event naming who pushed it (pushed while the pull request was closed, or its push event never arrived), so anyone could have: push a new commit to the branch`;
  const base = policy.defaultBranch;
  if (base && head.baseRef !== base)
    return `the pull request targets ${head.baseRef}, not ${base}; foureyes delivers only pull requests into ${base}: change its base to ${base}`;
  // Per environment (approval.refuseUnknownIdentities, on unless switched off).
  if (env && env.refuseUnknownIdentities !== false) {
    const unknown = unknownIdentities(policy.people, head.commits, head);
    if (unknown.length > 0) return unknownIdentityText(unknown);
  }
  return undefined;
}

function unknownIdentityText(unknown: readonly UnknownIdentity[]): string {
  const first = unknown[0] as UnknownIdentity;
  const more = unknown.length > 1 ? ` (and ${unknown.length - 1} more)` : '';
  if (first.role === 'pusher')
    return `${shortSha(first.sha)} was pushed by ${first.identity}, who is no person in foureyes.yaml: a push by a bot or an unlisted account can carry anyone's commit, an approver's included; push from a listed person's account, or add ${first.identity} under people${more}`;
  const email = first.identity.includes('@');
  const fix = email
    ? `add ${first.identity} to the emails of the person it belongs to under people in foureyes.yaml`
    : `amend the commit with its ${first.role}'s configured e-mail`;
  return `unknown identity ${first.identity} in commit ${shortSha(first.sha)}: ${fix} (as the commit's ${first.role} it could be anyone, an approver included)${more}`;
}

// ---------------------------------------------------------------------------------------------
// Deciding an approval when it arrives

export interface DecisionContext {
  policy: ChangePolicy;
  facts: ChangeFacts;
  /** Current time in ms (workflow time in the workflow). */
  now: number;
  /** True when this nonce was already used by an earlier claim of the change (any run). */
  nonceSeen: (nonce: string) => boolean;
  /**
   * True when `sha` went out under an emergency whose retroactive review is still owed. Its head may have been
   * replaced since (a push after the deploy): an approval of that exact SHA is then still taken, as the review.
   */
  reviewOwed?: (sha: string) => boolean;
}

export interface Decision {
  verdict: Verdict;
  reason: string;
  /** Environments the claim counts toward. */
  environments: string[];
  /** The trusted key that signed it (absent when none did). */
  keyId?: string;
}

const refused = (reason: string, keyId?: string): Decision => ({
  verdict: 'refused',
  reason,
  environments: [],
  ...(keyId ? { keyId } : {}),
});

export function eligibleFor(policy: ChangePolicy, env: EnvironmentPolicy): string[] {
  return env.eligible.length > 0
    ? env.eligible.map((e) => e.toLowerCase())
    : policy.people.map((p) => p.github.toLowerCase());
}

function describeEligible(list: string[]): string {
  return list.length > 0 ? list.join(', ') : 'nobody is configured';
}

export const SIGNATURE_REFUSAL =
  'the signature is not from a trusted gateway key (a claim must come through an authenticated channel)';

/**
 * What makes a signed payload an approval claim at all. A gateway signature proves who signed, not what: an
 * event's signed body (`{domain, event}`) is no claim, and deciding it as one would fail the workflow task.
 */
export function claimShapeRefusal(claim: unknown): string | undefined {
  if (typeof claim !== 'object' || claim === null || Array.isArray(claim))
    return 'the signed payload is not an approval claim';
  const c = claim as Record<string, unknown>;
  if ('domain' in c)
    return `the signed payload is a ${JSON.stringify(String(c.domain).slice(0, 60))} message, not an approval claim`;
  for (const field of ['change', 'person', 'nonce', 'at'] as const)
    if (typeof c[field] !== 'string') return `the approval claim has no ${field}`;
  if (c.decision !== 'approve' && c.decision !== 'reject' && c.decision !== 'dismiss')
    return 'the approval claim has no decision (approve, reject or dismiss)';
  if (c.sha !== undefined && typeof c.sha !== 'string')
    return 'the approval claim names its commit wrongly (sha must be a string)';
  if (c.environment !== undefined && typeof c.environment !== 'string')
    return 'the approval claim names its environment wrongly (environment must be a string)';
  return undefined;
}

/** A signed approval, rejection or dismissal: the signature first, then the claim. */
export function decideApproval(signed: SignedApproval, ctx: DecisionContext): Decision {
  const keyId = approvalSigner(signed, ctx.policy.approvalKeys);
  if (!keyId) return refused(SIGNATURE_REFUSAL);
  const malformed = claimShapeRefusal(signed.claim);
  if (malformed) return refused(malformed, keyId);
  return { ...decideClaim(signed.claim, ctx), keyId };
}

/** The rule itself, for a claim whose channel authenticated `claim.person`. */
export function decideClaim(claim: ApprovalClaim, ctx: DecisionContext): Decision {
  const { policy, facts } = ctx;
  const person = claim.person.toLowerCase();
  if (claim.change !== facts.change) return refused(`the approval is for ${claim.change}, not ${facts.change}`);
  if (ctx.nonceSeen(claim.nonce)) return refused('this claim was already received (replayed nonce)');
  const at = Date.parse(claim.at);
  if (!Number.isFinite(at)) return refused(`the claim time ${JSON.stringify(claim.at)} is not a valid time`);
  if (ctx.now - at > policy.claimMaxAgeMs)
    return refused(
      `the claim is ${Math.round((ctx.now - at) / 1000)}s old (at most ${Math.round(policy.claimMaxAgeMs / 1000)}s)`,
    );
  if (at - ctx.now > MAX_CLOCK_SKEW_MS) return refused('the claim is dated in the future');
  if (claim.decision === 'dismiss')
    return { verdict: 'counted', reason: `${person} dismisses their earlier review`, environments: [] };
  if (claim.decision === 'approve' && claim.sha && claim.sha !== facts.headSha && ctx.reviewOwed?.(claim.sha))
    return decideLateReview(claim, ctx);

  if (!claim.sha) return refused('the approval names no commit: approve the exact commit you reviewed');
  // A push the gateway acknowledged voids the head at once, before its look-up: no approval counts meanwhile.
  if (facts.pushedHead !== undefined && facts.pushedHead !== facts.headSha) {
    return refused(
      `${shortSha(facts.pushedHead)} was just pushed and its commits are being read from GitHub: ${claim.sha === facts.pushedHead ? 'approve again in a moment, once status shows it as the head' : `${shortSha(claim.sha)} is no longer the head; review ${shortSha(facts.pushedHead)}`}`,
    );
  }
  if (claim.sha !== facts.headSha)
    return refused(`approval names ${shortSha(claim.sha)} but the head is ${shortSha(facts.headSha)}`);
  const blocked = headRefusal(policy, facts);
  if (blocked) return refused(`nobody can approve ${shortSha(claim.sha)}: ${blocked}`);
  const roles = facts.initiators[person];
  if (claim.decision === 'approve' && roles && roles.length > 0)
    return refused(`${person} is an initiator (${roles.join(', ')})`);

  let envs = policy.environments;
  if (claim.environment !== undefined) {
    const env = policy.environments.find((e) => e.name === claim.environment);
    if (!env)
      return refused(
        `unknown environment ${claim.environment} (environments: ${policy.environments.map((e) => e.name).join(', ')})`,
      );
    envs = [env];
  }
  const eligibleEnvs = envs.filter((e) => eligibleFor(policy, e).includes(person));
  if (eligibleEnvs.length === 0) {
    if (envs.length === 1) {
      const env = envs[0] as EnvironmentPolicy;
      return refused(
        `${person} is not eligible for ${env.name} (eligible: ${describeEligible(eligibleFor(policy, env))})`,
      );
    }
    return refused(
      `${person} is not eligible for any environment (${envs.map((e) => `${e.name}: ${describeEligible(eligibleFor(policy, e))}`).join('; ')})`,
    );
  }
  const approvable = eligibleEnvs.filter((e) => headRefusal(policy, facts, e) === undefined);
  if (approvable.length === 0)
    return refused(`nobody can approve ${shortSha(claim.sha)}: ${headRefusal(policy, facts, eligibleEnvs[0])}`);
  const names = approvable.map((e) => e.name);
  if (claim.decision === 'reject')
    return { verdict: 'counted', reason: `${person} requests changes to ${shortSha(claim.sha)}`, environments: names };
  return {
    verdict: 'counted',
    reason: `${person} approves ${shortSha(claim.sha)} for ${names.join(', ')}`,
    environments: names,
  };
}

/**
 * An approval of a head that is no longer the head but went out under an emergency still owing its review:
 * counted (for the environments its person is eligible for) only so that the review can close. Its SHA is not
 * the head, so it opens no gate (approvalLapse).
 */
function decideLateReview(claim: ApprovalClaim, ctx: DecisionContext): Decision {
  const { policy, facts } = ctx;
  const person = claim.person.toLowerCase();
  const roles = facts.initiators[person];
  if (roles && roles.length > 0) return refused(`${person} is an initiator (${roles.join(', ')})`);
  let envs = policy.environments;
  if (claim.environment !== undefined) {
    const env = policy.environments.find((e) => e.name === claim.environment);
    if (!env) return refused(`unknown environment ${claim.environment}`);
    envs = [env];
  }
  const names = envs.filter((e) => eligibleFor(policy, e).includes(person)).map((e) => e.name);
  if (names.length === 0) return refused(`${person} is not eligible for ${envs.map((e) => e.name).join(', ')}`);
  return {
    verdict: 'counted',
    reason: `${person} reviews ${shortSha(claim.sha)}, deployed under an emergency, for ${names.join(', ')} (the head is ${shortSha(facts.headSha)}: this opens no gate)`,
    environments: names,
  };
}

// ---------------------------------------------------------------------------------------------
// The gate of one environment, decided again from the records whenever it might open

/**
 * Why a counted approval no longer counts for `env` under the policy and facts in force now, or undefined.
 * Re-derived each time from the signed claim, so a record's verdict is never taken on trust: the key that
 * signed it is still trusted, it names the head, its person is still eligible and still no initiator, and it
 * has not expired.
 */
export function approvalLapse(
  policy: ChangePolicy,
  env: EnvironmentPolicy,
  facts: ChangeFacts,
  record: ApprovalRecord,
  now: number,
): string | undefined {
  const claim = record.claim;
  const person = claim.person.toLowerCase();
  if (record.voidedAt) return record.voidReason ?? 'void';
  if (!record.keyId || !policy.approvalKeys.includes(record.keyId))
    return 'void: the gateway key that signed it is no longer trusted';
  if (claim.change !== facts.change || claim.sha !== facts.headSha)
    return `void: it approves ${shortSha(claim.sha)}, the head is ${shortSha(facts.headSha)}`;
  if (!record.environments.includes(env.name)) return `it does not cover ${env.name}`;
  const roles = facts.initiators[person];
  if (roles && roles.length > 0) return `void: ${person} is an initiator (${roles.join(', ')})`;
  if (!eligibleFor(policy, env).includes(person))
    return `void: ${person} is not eligible for ${env.name} any longer (eligible: ${describeEligible(eligibleFor(policy, env))})`;
  const at = Math.min(Date.parse(claim.at), Date.parse(record.recordedAt));
  if (!Number.isFinite(at) || now >= at + env.expiryMs) return `void: expired (approved at ${record.recordedAt})`;
  return undefined;
}

function counts(
  policy: ChangePolicy,
  env: EnvironmentPolicy,
  facts: ChangeFacts,
  record: ApprovalRecord,
  now: number,
): boolean {
  return (
    record.counted &&
    record.claim.decision === 'approve' &&
    approvalLapse(policy, env, facts, record, now) === undefined
  );
}

/** Distinct people whose approval counts for `env` now: one person approving twice counts once. */
export function approversFor(
  policy: ChangePolicy,
  env: EnvironmentPolicy,
  facts: ChangeFacts,
  records: readonly ApprovalRecord[],
  now: number,
): string[] {
  const people = new Set<string>();
  for (const r of records) if (counts(policy, env, facts, r, now)) people.add(r.claim.person.toLowerCase());
  return [...people].sort();
}

export interface GateState {
  open: boolean;
  approvers: string[];
  /** What the gate waits for, in one line a person can act on (empty when open). */
  waitingFor: string;
  /** The emergency (its id) the gate is open under, when approvals alone do not open it. */
  emergency?: string;
}

/** Whether `env` may be delivered at the head: an approvable head, enough approvers, a policy owner for a policy change. */
export function gateState(
  policy: ChangePolicy,
  env: EnvironmentPolicy,
  facts: ChangeFacts,
  records: readonly ApprovalRecord[],
  now: number,
  emergency?: EmergencyRecord,
): GateState {
  const gate = approvalGate(policy, env, facts, records, now);
  if (gate.open || !emergency || emergencyGateRefusal(policy, env, facts, emergency, now) !== undefined) return gate;
  return { open: true, approvers: gate.approvers, waitingFor: '', emergency: emergency.id };
}

function approvalGate(
  policy: ChangePolicy,
  env: EnvironmentPolicy,
  facts: ChangeFacts,
  records: readonly ApprovalRecord[],
  now: number,
): GateState {
  const approvers = approversFor(policy, env, facts, records, now);
  const blocked = headRefusal(policy, facts, env);
  if (blocked) return { open: false, approvers, waitingFor: blocked };
  const missing = env.required - approvers.length;
  if (missing > 0) {
    const more = approvers.length > 0 ? `${missing} more` : `${missing}`;
    return {
      open: false,
      approvers,
      waitingFor: `approval of ${shortSha(facts.headSha)} for ${env.name} by ${more} eligible ${missing === 1 ? 'person' : 'people'} who took no part in the change (eligible: ${describeEligible(eligibleFor(policy, env))})`,
    };
  }
  if (facts.policyChange) {
    const owners = policy.policyOwners.map((o) => o.toLowerCase());
    // A policy owner's counted approval of this head, for any environment, covers the policy change.
    const ownerApproved = records.some(
      (r) =>
        owners.includes(r.claim.person.toLowerCase()) &&
        policy.environments.some((e) => counts(policy, e, facts, r, now)),
    );
    if (!ownerApproved) {
      return {
        open: false,
        approvers,
        waitingFor:
          owners.length > 0
            ? `the change touches policy paths: approval of ${shortSha(facts.headSha)} by a policy owner (${owners.join(', ')})`
            : 'the change touches policy paths but no policy owner is configured for this repository',
      };
    }
  }
  return { open: true, approvers, waitingFor: '' };
}

/** When the next counted approval stops counting by age (ms), for the gate's timer; undefined when none will. */
export function nextExpiry(policy: ChangePolicy, records: readonly ApprovalRecord[], now: number): number | undefined {
  let next: number | undefined;
  for (const r of records) {
    if (!r.counted || r.voidedAt || r.claim.decision !== 'approve') continue;
    const at = Math.min(Date.parse(r.claim.at), Date.parse(r.recordedAt));
    for (const env of policy.environments) {
      if (!r.environments.includes(env.name)) continue;
      const expiresAt = at + env.expiryMs;
      if (expiresAt > now && (next === undefined || expiresAt < next)) next = expiresAt;
    }
  }
  return next;
}

// ---------------------------------------------------------------------------------------------
// Environment lanes: who may take or give back an environment's lane, and what may deploy over what runs

/** The workflow types that may hold a lane, and the ID each must have for the lane's repository. */
const LANE_HOLDERS: Record<string, (repo: string, workflowId: string, environment: string) => boolean> = {
  changeWorkflow: (repo, id) => new RegExp(`^change:${escapeRegExp(repo)}#[1-9][0-9]{0,8}$`).test(id),
  rollbackWorkflow: (repo, id, environment) => {
    const ref = parseRollbackId(id);
    return ref !== undefined && ref.repo === repo && ref.environment === environment;
  },
};

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A signal to a lane says who sent it, and anyone with Temporal access can send one. The lane believes it only
 * when the server shows that workflow, running foureyes' code on the lane's own task queue for the lane's
 * repository, with the matching lane activity pending right now: only the workflow itself can schedule that.
 */
export function decideLaneCaller(
  laneId: string,
  laneQueue: string,
  kind: 'acquire' | 'release',
  facts: LaneCallerFacts,
): InputDecision {
  const lane = parseLaneId(laneId);
  const who = `${facts.workflowId} (run ${facts.runId})`;
  if (!lane) return { verdict: 'refused', reason: `${laneId} is not a lane ID (lane:owner/repo@environment)` };
  if (!facts.found) return { verdict: 'refused', reason: `${who} does not exist` };
  const holder = facts.workflowType ? LANE_HOLDERS[facts.workflowType] : undefined;
  if (!holder)
    return {
      verdict: 'refused',
      reason: `${who} runs ${facts.workflowType ?? 'nothing known'}, which does not deploy through lanes`,
    };
  if (!holder(lane.repo, facts.workflowId, lane.environment))
    return { verdict: 'refused', reason: `${who} is not a change of ${lane.repo}` };
  if (facts.taskQueue !== laneQueue)
    return {
      verdict: 'refused',
      reason: `${who} runs on task queue ${facts.taskQueue ?? '(unknown)'}, not the lane's ${laneQueue}: its code is not foureyes'`,
    };
  if (kind === 'release' && facts.status !== 'RUNNING')
    return {
      verdict: 'accepted',
      reason: `${who} ${(facts.status ?? 'ended').toLowerCase()}: its place in the lane is given up`,
    };
  if (facts.status !== 'RUNNING')
    return { verdict: 'refused', reason: `${who} is not running (${(facts.status ?? 'unknown').toLowerCase()})` };
  const prefix = laneActivityPrefix(lane.repo, lane.environment, kind);
  if (!facts.pending.some((a) => a.type === `${kind}Lane` && a.id.startsWith(prefix)))
    return {
      verdict: 'refused',
      reason: `${who} is not asking to ${kind} this lane (no ${kind}Lane activity of it is pending): the signal did not come from the change`,
    };
  return { verdict: 'accepted', reason: `${who} asks to ${kind} the lane` };
}

/**
 * A ticket's turn: a head that is an ancestor of the release running now would silently put older code over
 * newer; it is declined. A rollback is the one deploy meant to go back, and its target was approved earlier.
 */
export function decideLaneGrant(
  ticket: LaneTicket,
  running: LaneRelease | undefined,
  comparison: CommitComparison | undefined,
): InputDecision {
  if (!running || ticket.kind === 'rollback' || running.sha === ticket.sha)
    return {
      verdict: 'accepted',
      reason: running ? `${shortSha(ticket.sha)} may follow ${shortSha(running.sha)}` : 'nothing runs there yet',
    };
  if (!comparison)
    return {
      verdict: 'refused',
      reason: `GitHub could not compare ${shortSha(ticket.sha)} with the running ${shortSha(running.sha)}: not deployed, so that no older code replaces newer`,
    };
  // compare(base = ticket, head = running): `ahead` means the running release contains the ticket's head.
  if (comparison.status === 'ahead')
    return {
      verdict: 'refused',
      reason: `${shortSha(ticket.sha)} is older than the release running there (${shortSha(running.sha)} of ${running.change} contains it, ${comparison.aheadBy} commit(s) ahead): not deployed over it`,
    };
  return {
    verdict: 'accepted',
    reason: `${shortSha(ticket.sha)} is not contained in the running ${shortSha(running.sha)} (${comparison.status})`,
  };
}

/** How a holder's time in the lane ended, from what its own workflow answers about that environment. */
export function laneOutcome(
  ticket: LaneTicket,
  facts: LaneCallerFacts,
): { outcome: LaneRelease['outcome']; reason: string } {
  const env = facts.change?.environment;
  const deployed = env?.state === 'deployed' && env.deployedSha === ticket.sha;
  if (!facts.found) return { outcome: 'reclaimed', reason: `${facts.workflowId} no longer exists` };
  if (facts.status !== 'RUNNING' && !deployed)
    return {
      outcome: 'reclaimed',
      reason: `${facts.workflowId} ${(facts.status ?? 'ended').toLowerCase()} while holding the lane`,
    };
  if (deployed) return { outcome: 'deployed', reason: `${shortSha(ticket.sha)} deployed` };
  if (env?.state === 'failed') return { outcome: 'failed', reason: `delivery of ${shortSha(ticket.sha)} failed` };
  return {
    outcome: 'cancelled',
    reason: `${facts.workflowId} gave the lane back without deploying ${shortSha(ticket.sha)}`,
  };
}

export interface RollbackDecision extends InputDecision {
  /** The release rolled back to, when accepted. */
  target?: LaneRelease;
  /** The change release that delivered the target's SHA with its approvals (the target itself, or what it redeployed). */
  evidence?: LaneRelease;
}

function lastIndex<T>(items: readonly T[], test: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (test(items[i] as T)) return i;
  return -1;
}

/**
 * The releases as a stack: each deploy is pushed, and a rollback to X pops everything above the earlier X
 * (undone releases are no "previous release" any more). The top is what runs.
 */
export function releaseStack(releases: readonly LaneRelease[]): LaneRelease[] {
  const stack: LaneRelease[] = [];
  for (const r of releases) {
    if (r.outcome !== 'deployed') continue;
    const earlier = r.kind === 'rollback' ? lastIndex(stack, (s) => s.sha === r.sha) : -1;
    if (earlier >= 0) stack.splice(earlier + 1);
    else stack.push(r);
  }
  return stack;
}

/**
 * A rollback deploys an earlier release of the same environment again. It is pre-approved only when that exact
 * SHA was approved and delivered to this environment before (that release's approval is the evidence); it is
 * asked for by someone eligible to approve that environment. Default target: the release before the running one
 * on the release stack, so successive rollbacks keep going back; `to`: any earlier approved release.
 */
export function decideRollback(input: {
  person: string;
  environment: string;
  eligible: readonly string[];
  releases: readonly LaneRelease[];
  running?: LaneRelease;
  to?: string;
  /** Runs started before ROLLBACK_REVERIFY_PATCH took the latest delivered release other than the running one. */
  latestOther?: boolean;
}): RollbackDecision {
  const person = input.person.toLowerCase();
  const env = input.environment;
  if (!input.eligible.includes(person))
    return {
      verdict: 'refused',
      reason: `${person} may not roll back ${env}: only its eligible approvers may (${input.eligible.join(', ') || 'nobody'})`,
    };
  // A release that went out under an emergency was never approved before it ran: it is no back-out target.
  const delivered = input.releases.filter((r) => r.outcome === 'deployed' && !r.emergency);
  const running = input.running;
  const evidenceOf = (sha: string) => delivered[lastIndex(delivered, (r) => r.kind === 'change' && r.sha === sha)];
  if (input.to === undefined) {
    const stack = input.latestOther ? delivered.filter((r) => r.sha !== running?.sha) : releaseStack(input.releases);
    const top = running ? lastIndex(stack, (r) => r.sha === running.sha) : -1;
    const below = stack.slice(0, top >= 0 ? top : stack.length);
    const previous = below[lastIndex(below, (r) => !r.emergency && r.sha !== running?.sha)];
    if (!previous)
      return {
        verdict: 'refused',
        reason: `${env} has no earlier release to roll back to${running ? ` before ${shortSha(running.sha)}` : ''}`,
      };
    return accepted(previous, running ? `the release before ${shortSha(running.sha)}` : 'the latest release');
  }
  const to = input.to.toLowerCase();
  if (!/^[0-9a-f]{7,64}$/.test(to))
    return {
      verdict: 'refused',
      reason: `--to: expected a commit SHA (7 to 64 hex digits), found ${JSON.stringify(input.to.slice(0, 70))}`,
    };
  const matches = delivered.filter((r) => r.sha.toLowerCase().startsWith(to));
  const shas = new Set(matches.map((r) => r.sha));
  if (shas.size > 1)
    return { verdict: 'refused', reason: `${to} names ${shas.size} earlier releases of ${env}: give more of the SHA` };
  const target = matches.at(-1);
  const unapproved = input.releases.find(
    (r) => r.outcome === 'deployed' && r.emergency && r.sha.toLowerCase().startsWith(to),
  );
  if (!target && unapproved)
    return {
      verdict: 'refused',
      reason: `${shortSha(unapproved.sha)} went to ${env} under the emergency ${unapproved.emergency} declared, without approval: a rollback goes only to an earlier approved release`,
    };
  if (!target)
    return {
      verdict: 'refused',
      reason: `${to} was never approved and delivered to ${env}: a rollback goes only to an earlier release of that environment (its approval is the evidence)`,
    };
  if (running && target.sha === running.sha)
    return { verdict: 'refused', reason: `${shortSha(target.sha)} is what runs in ${env} now: nothing to roll back` };
  return accepted(target, `--to ${to}`);

  function accepted(target: LaneRelease, which: string): RollbackDecision {
    const evidence = evidenceOf(target.sha);
    return {
      verdict: 'accepted',
      reason: `rollback of ${env} to ${shortSha(target.sha)} of ${target.change}: ${which}, pre-approved by that release (approved by ${target.approvers.join(', ') || 'nobody recorded'}, delivered ${target.endedAt})`,
      target,
      ...(evidence ? { evidence } : {}),
    };
  }
}

/**
 * Whether the approvals a rollback target was delivered with still stand under the policy now: at least the
 * environment's required number by distinct people eligible for it now, none an initiator of that change, each
 * signed by a gateway key trusted now, and each one the lane recorded for that release. Evidence that cannot be
 * read any more is no evidence: the SHA goes out again as a change, approved again.
 */
export function decideRollbackEvidence(input: {
  env: EnvironmentPolicy;
  eligible: readonly string[];
  trustedKeys: readonly string[];
  release: LaneRelease | undefined;
  evidence: RollbackEvidence | undefined;
}): InputDecision {
  const { env, release, evidence } = input;
  const again = 'deploy it as a change, to have it approved under the policy now';
  if (!release)
    return {
      verdict: 'refused',
      reason: `no change release of that SHA is left in the ${env.name} lane's history to show its approvals: ${again}`,
    };
  const sha = shortSha(release.sha);
  if (!evidence?.found)
    return {
      verdict: 'refused',
      reason: `the approvals of ${sha} (${release.change}) cannot be read any more: ${evidence?.reason ?? 'no answer'}: ${again}`,
    };
  const recorded = new Set(release.approvers.map((p) => p.toLowerCase()));
  const initiators = new Set(evidence.initiators.map((p) => p.toLowerCase()));
  const granted = Date.parse(release.grantedAt);
  const standing = new Set<string>();
  const lapses = new Map<string, string>();
  for (const r of evidence.approvals) {
    const person = r.claim.person.toLowerCase();
    if (r.claim.sha !== release.sha || r.claim.decision !== 'approve' || !r.counted) continue;
    if (!r.environments.includes(env.name) || !recorded.has(person)) continue;
    // Voided after the deploy was granted (a later push, expiry): it stood when the release went out.
    if (r.voidedAt && !(Date.parse(r.voidedAt) >= granted)) continue;
    const lapse =
      !r.keyId || !input.trustedKeys.includes(r.keyId)
        ? `${person}'s approval was signed by a gateway key the policy no longer trusts`
        : !input.eligible.includes(person)
          ? `${person} is no longer eligible to approve ${env.name}`
          : initiators.has(person)
            ? `${person} is an initiator of ${release.change}`
            : undefined;
    if (lapse === undefined) standing.add(person);
    else if (!standing.has(person)) lapses.set(person, lapse);
  }
  for (const p of standing) lapses.delete(p);
  if (standing.size >= env.required)
    return {
      verdict: 'accepted',
      reason: `its approval still stands under the policy now (${[...standing].sort().join(', ') || 'none required'})`,
    };
  const why =
    lapses.size > 0
      ? [...lapses.values()].join('; ')
      : standing.size > 0
        ? `only ${[...standing].sort().join(', ')} approved it`
        : 'no approval of it was found in its change';
  return {
    verdict: 'refused',
    reason: `the approval of ${sha} for ${env.name} no longer stands (${standing.size} of ${env.required} required): ${why}: ${again}`,
  };
}

/**
 * Whether a rollback run may act on the request it was started with: signed by a trusted gateway key, for
 * exactly the repository, environment and nonce its workflow ID names, recent, and the first run under that ID
 * (a signed request copied from a history runs once). Who may ask and for which target: decideRollback.
 */
export function decideRollbackRequest(input: {
  workflowId: string;
  signed: SignedRollback | undefined;
  trustedKeys: readonly string[];
  now: number;
  maxAgeMs: number;
  earlierRuns: number;
}): InputDecision & { claim?: RollbackClaim } {
  const ref = parseRollbackId(input.workflowId);
  if (!ref)
    return { verdict: 'refused', reason: `${input.workflowId} is not a rollback ID (rollback:owner/repo@env:nonce)` };
  const signed = input.signed;
  if (!signed || !rollbackSigner(signed, input.trustedKeys))
    return {
      verdict: 'refused',
      reason: 'the rollback request is not signed by a gateway key the policy trusts: ask through the gateway',
    };
  const claim = signed.claim;
  if (claim.kind !== 'rollback' || claim.v !== 1)
    return { verdict: 'refused', reason: 'the signed request is not a rollback request' };
  if (claim.repo !== ref.repo || claim.environment !== ref.environment || claim.nonce !== ref.nonce)
    return {
      verdict: 'refused',
      reason: `the request is for ${claim.repo}@${claim.environment} (${claim.nonce}), not what ${input.workflowId} names`,
    };
  // GitHub spells a login as its owner chose (Jo-Platform); the policy names people in lower case.
  if (
    typeof claim.person !== 'string' ||
    claim.person === '' ||
    typeof claim.evidence?.tokenLogin !== 'string' ||
    claim.evidence.tokenLogin.toLowerCase() !== claim.person.toLowerCase()
  )
    return { verdict: 'refused', reason: 'the request names nobody the gateway authenticated' };
  const at = Date.parse(claim.at);
  if (!Number.isFinite(at)) return { verdict: 'refused', reason: 'the request has no valid time' };
  if (input.now - at > input.maxAgeMs)
    return {
      verdict: 'refused',
      reason: `the request is ${Math.round((input.now - at) / 1000)}s old (at most ${Math.round(input.maxAgeMs / 1000)}s): ask again`,
    };
  if (at - input.now > MAX_CLOCK_SKEW_MS) return { verdict: 'refused', reason: 'the request is dated in the future' };
  if (input.earlierRuns > 0)
    return {
      verdict: 'refused',
      reason: `${input.workflowId} already ran ${input.earlierRuns} time(s): a signed rollback request runs once`,
    };
  return { verdict: 'accepted', reason: `${claim.person} asked through the gateway`, claim };
}

// ---------------------------------------------------------------------------------------------
// Break-glass: an emergency opens a gate for one exact head, for a while, and owes a retroactive review

/** Whether the gateway would have to refuse declaring at all (no emergency policy, a person not allowed). */
export function emergencyDeclarerRefusal(policy: ChangePolicy, person: string): string | undefined {
  const allowed = policy.emergency?.allowed ?? [];
  if (allowed.length === 0)
    return `break-glass is disabled for ${policy.repo}: nobody is listed under emergency.allowed in foureyes.yaml`;
  if (!allowed.includes(person.toLowerCase()))
    return `${person.toLowerCase()} may not declare an emergency (emergency.allowed: ${allowed.join(', ')})`;
  return undefined;
}

/**
 * An emergency as the run holds it, with what another run of the change published of it (a run this one was
 * reset from): a deploy either made under it stands (every environment it opened stays owed), and a review
 * either recorded stays recorded. Nothing is taken back: a reset cannot make a review owed no longer.
 */
export function mergeEmergency(held: EmergencyRecord | undefined, other: EmergencyRecord): EmergencyRecord {
  if (!held) return { ...other, usedFor: [...other.usedFor] };
  const usedFor = [...held.usedFor, ...other.usedFor.filter((env) => !held.usedFor.includes(env))];
  const earliest = (a?: string, b?: string) => (a && b ? (Date.parse(a) <= Date.parse(b) ? a : b) : (a ?? b));
  const merged: EmergencyRecord = { ...held, usedFor };
  const deployedAt = earliest(held.deployedAt, other.deployedAt);
  if (deployedAt) merged.deployedAt = deployedAt;
  const announcedAt = earliest(held.announcedAt, other.announcedAt);
  if (announcedAt) merged.announcedAt = announcedAt;
  const overdueAt = earliest(held.overdueAt, other.overdueAt);
  if (overdueAt) merged.overdueAt = overdueAt;
  const overdueAnnouncedAt = earliest(held.overdueAnnouncedAt, other.overdueAnnouncedAt);
  if (overdueAnnouncedAt) merged.overdueAnnouncedAt = overdueAnnouncedAt;
  const reviewed = held.closedHow === 'reviewed' ? held : other.closedHow === 'reviewed' ? other : undefined;
  delete merged.closedHow;
  delete merged.closedAt;
  delete merged.reviewedBy;
  delete merged.reviewedAt;
  if (reviewed) {
    merged.closedHow = 'reviewed';
    if (reviewed.closedAt) merged.closedAt = reviewed.closedAt;
    if (reviewed.reviewedBy) merged.reviewedBy = reviewed.reviewedBy;
    if (reviewed.reviewedAt) merged.reviewedAt = reviewed.reviewedAt;
  } else if (usedFor.length === 0 && (held.closedHow === 'lapsed' || other.closedHow === 'lapsed')) {
    // Lapsed is only ever unused: once a deploy was made under it, it is owed instead.
    merged.closedHow = 'lapsed';
    const closedAt = held.closedHow === 'lapsed' ? held.closedAt : other.closedAt;
    if (closedAt) merged.closedAt = closedAt;
  }
  return merged;
}

/** Why `e` opens no gate any longer even unused, or undefined while it may still: its window ended, or its head was replaced. */
export function emergencyLapse(e: EmergencyRecord, headSha: string, now: number): string | undefined {
  if (e.closedHow) return `closed (${e.closedHow})`;
  if (e.usedFor.length > 0) return undefined;
  if (now >= Date.parse(e.windowEndsAt))
    return `its window ended at ${e.windowEndsAt} before anything deployed under it`;
  if (e.sha !== headSha) return `${shortSha(headSha)} replaced ${shortSha(e.sha)} before anything deployed under it`;
  return undefined;
}

/** The emergency still open for the change (declared, not reviewed, not lapsed), if any. */
export function openEmergency(
  emergencies: readonly EmergencyRecord[] | undefined,
  headSha: string,
  now: number,
): EmergencyRecord | undefined {
  return emergencies?.find((e) => !e.closedHow && emergencyLapse(e, headSha, now) === undefined);
}

/**
 * Why `e` does not open `env`'s gate at the head now, or undefined when it does. Decided again at every gate
 * from the signed declaration and the policy in force: the key still trusted, the declarer still allowed.
 */
export function emergencyGateRefusal(
  policy: ChangePolicy,
  env: EnvironmentPolicy,
  facts: ChangeFacts,
  e: EmergencyRecord,
  now: number,
): string | undefined {
  if (e.closedHow) return `the emergency is closed (${e.closedHow})`;
  if (e.sha !== facts.headSha) return `the emergency is for ${shortSha(e.sha)}, the head is ${shortSha(facts.headSha)}`;
  if (!e.environments.includes(env.name)) return `the emergency does not cover ${env.name}`;
  if (now >= Date.parse(e.windowEndsAt)) return `the emergency's window ended at ${e.windowEndsAt}`;
  if (!policy.approvalKeys.includes(e.keyId)) return 'the gateway key that signed the emergency is no longer trusted';
  const declarer = emergencyDeclarerRefusal(policy, e.declaredBy);
  if (declarer) return declarer;
  if (facts.policyChange)
    return 'the change touches policy paths: an emergency cannot change the policy (a policy owner approves it)';
  return headRefusal(policy, facts, env);
}

export interface EmergencyDecisionInput {
  signed: SignedEmergency | undefined;
  policy: ChangePolicy;
  facts: ChangeFacts;
  emergencies: readonly EmergencyRecord[];
  /** The checks of the head: passed, failed, or not run yet. */
  checks: 'passed' | 'failed' | 'pending';
  closed: boolean;
  nonceSeen: (nonce: string) => boolean;
  now: number;
}

export interface EmergencyDecision extends InputDecision {
  keyId?: string;
  /** The environments the emergency opens (taken only). */
  environments?: string[];
}

/** A signed break-glass declaration: the signature, who declares, the exact head, and one emergency at a time. */
export function decideEmergency(input: EmergencyDecisionInput): EmergencyDecision {
  const { policy, facts, now } = input;
  const refuse = (reason: string, keyId?: string): EmergencyDecision => ({
    verdict: 'refused',
    reason,
    ...(keyId ? { keyId } : {}),
  });
  const signed = input.signed;
  const keyId = signed ? emergencySigner(signed, policy.approvalKeys) : undefined;
  if (!signed || !keyId)
    return refuse('the emergency is not signed by a gateway key the policy trusts: declare it through the gateway');
  const claim = signed.claim;
  if (claim?.kind !== 'emergency' || claim.v !== 1 || typeof claim.sha !== 'string' || typeof claim.nonce !== 'string')
    return refuse('the signed payload is not an emergency declaration', keyId);
  if (claim.change !== facts.change) return refuse(`the emergency is for ${claim.change}, not ${facts.change}`, keyId);
  if (
    typeof claim.person !== 'string' ||
    claim.person === '' ||
    typeof claim.evidence?.tokenLogin !== 'string' ||
    claim.evidence.tokenLogin.toLowerCase() !== claim.person.toLowerCase()
  )
    return refuse('the declaration names nobody the gateway authenticated', keyId);
  if (input.nonceSeen(claim.nonce)) return refuse('this declaration was already received (replayed nonce)', keyId);
  const at = Date.parse(claim.at);
  if (!Number.isFinite(at)) return refuse('the declaration has no valid time', keyId);
  if (now - at > policy.claimMaxAgeMs)
    return refuse(
      `the declaration is ${Math.round((now - at) / 1000)}s old (at most ${Math.round(policy.claimMaxAgeMs / 1000)}s): declare again`,
      keyId,
    );
  if (at - now > MAX_CLOCK_SKEW_MS) return refuse('the declaration is dated in the future', keyId);
  const declarer = emergencyDeclarerRefusal(policy, claim.person);
  if (declarer) return refuse(declarer, keyId);
  if (input.closed) return refuse('the pull request is closed: reopen it first', keyId);
  const open = openEmergency(input.emergencies, facts.headSha, now);
  if (open)
    return refuse(
      `an emergency is already open for ${facts.change}: declared by ${open.declaredBy} at ${open.declaredAt} for ${shortSha(open.sha)}; it closes when an eligible non-initiator reviews it`,
      keyId,
    );
  if (claim.sha !== facts.headSha)
    return refuse(
      `the emergency names ${shortSha(claim.sha)} but the head is ${shortSha(facts.headSha)}: declare it for the head`,
      keyId,
    );
  const blocked = headRefusal(policy, facts);
  if (blocked) return refuse(`no emergency can deploy ${shortSha(claim.sha)}: ${blocked}`, keyId);
  if (facts.policyChange)
    return refuse(
      'the change touches policy paths: an emergency cannot change the policy; a policy owner must approve it',
      keyId,
    );
  const known = policy.environments.map((e) => e.name);
  const unknown = (claim.environments ?? []).filter((n) => !known.includes(n));
  if (unknown.length > 0)
    return refuse(`unknown environment ${unknown.join(', ')} (environments: ${known.join(', ')})`, keyId);
  if (input.checks === 'failed' && !policy.emergency?.overrideFailingChecks)
    return refuse(
      `the checks failed on ${shortSha(claim.sha)}: an emergency deploys only a head whose checks pass (emergency.overrideFailingChecks is off); push a fix`,
      keyId,
    );
  const environments = claim.environments?.length ? known.filter((n) => claim.environments?.includes(n)) : known;
  return {
    verdict: 'accepted',
    reason: `${claim.person.toLowerCase()} declares an emergency for ${shortSha(claim.sha)} (${environments.join(', ')})`,
    keyId,
    environments,
  };
}

/**
 * Whether `approval` is the retroactive review `e` owes: a counted approval of the emergency's head, for an
 * environment deployed under it, by someone who is neither an initiator nor the declarer. Reason or undefined.
 */
export function emergencyReviewRefusal(
  policy: ChangePolicy,
  facts: ChangeFacts,
  e: EmergencyRecord,
  approval: ApprovalRecord,
): string | undefined {
  const person = approval.claim.person.toLowerCase();
  if (!approval.counted || approval.claim.decision !== 'approve') return 'not a counted approval';
  if (approval.claim.sha !== e.sha) return `it approves ${shortSha(approval.claim.sha)}, not ${shortSha(e.sha)}`;
  if (!approval.keyId || !policy.approvalKeys.includes(approval.keyId))
    return 'the gateway key that signed it is no longer trusted';
  // Withdrawn (dismissed, the GitHub review gone), lapsed or voided before it could review: no review.
  if (approval.voidedAt) return `it no longer stands (${approval.voidReason ?? 'void'})`;
  if (person === e.declaredBy.toLowerCase()) return `${person} declared the emergency and cannot review it`;
  const roles = facts.initiators[person];
  if (roles && roles.length > 0) return `${person} is an initiator (${roles.join(', ')})`;
  const covered = e.usedFor.filter((n) => approval.environments.includes(n));
  if (covered.length === 0) return `it does not cover ${e.usedFor.join(', ') || e.environments.join(', ')}`;
  return undefined;
}

/**
 * The retroactive review `e` has received so far: for every environment deployed under it, a standing
 * qualifying approval (emergencyReviewRefusal) recorded after the declaration that covers that environment.
 * One approval for another environment reviews nothing of what it does not cover.
 */
export function emergencyReview(
  policy: ChangePolicy,
  facts: ChangeFacts,
  e: EmergencyRecord,
  approvals: readonly ApprovalRecord[],
): { complete: boolean; reviewers: string[]; reviewedAt?: string; missing: string[] } {
  const declared = Date.parse(e.declaredAt);
  const qualifying = approvals.filter(
    (a) => Date.parse(a.recordedAt) >= declared && emergencyReviewRefusal(policy, facts, e, a) === undefined,
  );
  const reviewers: string[] = [];
  const missing: string[] = [];
  let reviewedAt: string | undefined;
  for (const name of e.usedFor) {
    const review = qualifying.find((a) => a.environments.includes(name));
    if (!review) {
      missing.push(name);
      continue;
    }
    const person = review.claim.person.toLowerCase();
    if (!reviewers.includes(person)) reviewers.push(person);
    if (reviewedAt === undefined || Date.parse(review.recordedAt) > Date.parse(reviewedAt))
      reviewedAt = review.recordedAt;
  }
  const complete = e.usedFor.length > 0 && missing.length === 0;
  return { complete, reviewers, missing, ...(complete && reviewedAt ? { reviewedAt } : {}) };
}
