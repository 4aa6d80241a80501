// FROZEN (core v1): the code that runs started before core v2 (the patch `core-v2` in ../change.ts) keep
// running and replaying with, unchanged. New behaviour goes into the v2 modules beside ../change.ts, never here.
// The Segregation of Duties rule, once: who initiated a change, and whether an approval counts.
// Pure and deterministic (no Node built-ins, no clock): the workflow and the gateway both import it.
import { verifySignedApproval } from '../../shared/approval-signature.ts';
import type {
  ApprovalClaim,
  ApprovalRecord,
  ChangePolicy,
  CommitInfo,
  EnvironmentPolicy,
  Identity,
  SignedApproval,
} from '../../shared/types.ts';

/** Claims dated further ahead than this (clock skew between gateway and workflow) are refused. */
export const MAX_CLOCK_SKEW_MS = 60_000;

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
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
 * The principals an identity stands for. A login and an e-mail that resolve to different people are both
 * kept (either person took part). An identity nobody resolves is kept as `email:x@y` so the audit shows it.
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
// Deciding an approval

export interface DecisionContext {
  policy: ChangePolicy;
  /** owner/repo#number of the change deciding. */
  change: string;
  headSha: string;
  initiators: Initiators;
  /** Current time in ms (workflow time in the workflow). */
  now: number;
  /** True when this nonce was already used by an earlier claim. */
  nonceSeen: (nonce: string) => boolean;
}

export interface ApprovalDecisionResult {
  counted: boolean;
  reason: string;
  environments: string[];
}

/** The reason without its `refused: ` / `counted: ` verdict, for renderers that state the verdict themselves. */
export function reasonText(reason: string): string {
  return reason.replace(/^(refused|counted): /, '');
}

function refused(reason: string): ApprovalDecisionResult {
  return { counted: false, reason: `refused: ${reason}`, environments: [] };
}

export function eligibleFor(policy: ChangePolicy, env: EnvironmentPolicy): string[] {
  return env.eligible.length > 0
    ? env.eligible.map((e) => e.toLowerCase())
    : policy.people.map((p) => p.github.toLowerCase());
}

function describeEligible(list: string[]): string {
  return list.length > 0 ? list.join(', ') : 'nobody is configured';
}

export const SIGNATURE_REFUSAL =
  'refused: the signature is not from a trusted gateway key (a claim must come through an authenticated channel)';

/** A signed approval, rejection or dismissal: the signature first, then the claim. */
export function decideApproval(signed: SignedApproval, ctx: DecisionContext): ApprovalDecisionResult {
  if (!verifySignedApproval(signed, ctx.policy.approvalKeys))
    return { counted: false, reason: SIGNATURE_REFUSAL, environments: [] };
  return decideClaim(signed.claim, ctx);
}

/** The rule itself, for a claim whose channel authenticated `claim.person`. */
export function decideClaim(claim: ApprovalClaim, ctx: DecisionContext): ApprovalDecisionResult {
  const { policy } = ctx;
  const person = claim.person.toLowerCase();
  if (claim.change !== ctx.change) return refused(`the approval is for ${claim.change}, not ${ctx.change}`);
  if (ctx.nonceSeen(claim.nonce)) return refused('this claim was already received (replayed nonce)');
  const at = Date.parse(claim.at);
  if (!Number.isFinite(at)) return refused(`the claim time ${JSON.stringify(claim.at)} is not a valid time`);
  if (ctx.now - at > policy.claimMaxAgeMs)
    return refused(
      `the claim is ${Math.round((ctx.now - at) / 1000)}s old (at most ${Math.round(policy.claimMaxAgeMs / 1000)}s)`,
    );
  if (at - ctx.now > MAX_CLOCK_SKEW_MS) return refused('the claim is dated in the future');
  if (claim.decision === 'dismiss')
    return { counted: true, reason: `counted: ${person} dismisses their earlier review`, environments: [] };

  if (claim.sha !== ctx.headSha)
    return refused(`approval names ${shortSha(claim.sha)} but the head is ${shortSha(ctx.headSha)}`);
  const roles = ctx.initiators[person];
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
  const names = eligibleEnvs.map((e) => e.name);
  if (claim.decision === 'reject')
    return {
      counted: true,
      reason: `counted: ${person} requests changes to ${shortSha(claim.sha)}`,
      environments: names,
    };
  return {
    counted: true,
    reason: `counted: ${person} approves ${shortSha(claim.sha)} for ${names.join(', ')}`,
    environments: names,
  };
}

// ---------------------------------------------------------------------------------------------
// The gate of one environment

/** True while a counted approval is still valid for `env` (same head, not voided, not expired). */
export function approvalValidFor(
  record: ApprovalRecord,
  env: EnvironmentPolicy,
  headSha: string,
  now: number,
): boolean {
  return (
    record.counted &&
    record.claim.decision === 'approve' &&
    !record.voidedAt &&
    record.claim.sha === headSha &&
    record.environments.includes(env.name) &&
    now < Date.parse(record.recordedAt) + env.expiryMs
  );
}

/** Distinct people whose approval currently counts for `env`: one person approving twice counts once. */
export function approversFor(
  records: readonly ApprovalRecord[],
  env: EnvironmentPolicy,
  headSha: string,
  now: number,
): string[] {
  const people = new Set<string>();
  for (const r of records) if (approvalValidFor(r, env, headSha, now)) people.add(r.claim.person.toLowerCase());
  return [...people].sort();
}

export interface GateState {
  open: boolean;
  approvers: string[];
  /** What the gate waits for, in one line a person can act on (empty when open). */
  waitingFor: string;
}

/** Whether `env` may be delivered: enough distinct approvers and, for a policy change, a policy owner among them. */
export function gateState(
  policy: ChangePolicy,
  env: EnvironmentPolicy,
  records: readonly ApprovalRecord[],
  headSha: string,
  now: number,
  policyChange: boolean,
): GateState {
  const approvers = approversFor(records, env, headSha, now);
  const missing = env.required - approvers.length;
  if (missing > 0) {
    const more = approvers.length > 0 ? `${missing} more` : `${missing}`;
    return {
      open: false,
      approvers,
      waitingFor: `approval of ${shortSha(headSha)} for ${env.name} by ${more} eligible ${missing === 1 ? 'person' : 'people'} who took no part in the change (eligible: ${describeEligible(eligibleFor(policy, env))})`,
    };
  }
  if (policyChange) {
    const owners = policy.policyOwners.map((o) => o.toLowerCase());
    // A policy owner's counted approval of this head, for any environment, covers the policy change.
    const ownerApproved = records.some(
      (r) =>
        owners.includes(r.claim.person.toLowerCase()) &&
        policy.environments.some((e) => approvalValidFor(r, e, headSha, now)),
    );
    if (!ownerApproved) {
      return {
        open: false,
        approvers,
        waitingFor:
          owners.length > 0
            ? `the change touches policy paths: approval of ${shortSha(headSha)} by a policy owner (${owners.join(', ')})`
            : 'the change touches policy paths but no policy owner is configured for this repository',
      };
    }
  }
  return { open: true, approvers, waitingFor: '' };
}

/** When a counted approval stops counting for every environment it covers (ms), for expiry timers. */
export function approvalExpiresAt(policy: ChangePolicy, record: ApprovalRecord): number {
  const recorded = Date.parse(record.recordedAt);
  const expiries = policy.environments.filter((e) => record.environments.includes(e.name)).map((e) => e.expiryMs);
  return recorded + (expiries.length > 0 ? Math.max(...expiries) : 0);
}
