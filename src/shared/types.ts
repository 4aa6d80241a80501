// Data that crosses process boundaries: webhook -> gateway -> workflow -> activities -> audit.
// Pure types only; nothing here may carry a secret value.
import type { EmergencyPolicy, EmergencyView } from './emergency.ts';

/** Someone as git or GitHub names them. A commit author may have only a name and an e-mail. */
export interface Identity {
  login?: string;
  email?: string;
  name?: string;
}

export interface CommitInfo {
  sha: string;
  author: Identity;
  committer: Identity;
  /** Raw commit message; `Co-authored-by:` trailers are parsed by the policy module. */
  message: string;
}

/**
 * What the gateway knows about a pull request when it opens, reopens, receives commits or is retargeted, signed
 * by the gateway (`change`, `at`, `signature`, `keyId`; runs started before core v2 ignore them). The workflow
 * takes only the pusher from it: the head, base, commits and files come from its own look-up at GitHub.
 */
export interface PullRequestEvent extends GatewaySigned {
  kind: 'opened' | 'reopened' | 'synchronize' | 'edited';
  deliveryId: string;
  headSha: string;
  /** Head before this push (synchronize only): that SHA is superseded. */
  beforeSha?: string;
  /** The PR's updated_at: deliveries can arrive out of order; the newest state wins. */
  updatedAt: string;
  author: string;
  title: string;
  baseRef: string;
  headRef: string;
  /** Who pushed (synchronize); the sender of the event. */
  pusher?: string;
  /**
   * The pull request's commits (all of them as the API lists them). Absent means "look them up": the
   * gateway sends events without them and the workflow has the orchestrator read the commits and the
   * changed files from GitHub before it applies the event (older gateways and saved histories carry them).
   */
  commits?: CommitInfo[];
  /** Files changed by the pull request, to flag policy changes. */
  changedFiles?: string[];
}

/** The gateway's signature over an event it forwards (src/shared/approval-signature.ts `signEvent`). */
export interface GatewaySigned {
  /** owner/repo#number the event is for: a signed event counts for that change only. */
  change?: string;
  /** When the gateway received it (ISO 8601). */
  at?: string;
  /** hex Ed25519 signature over the event without `signature` and `keyId`. */
  signature?: string;
  /** hex public key that signed it. */
  keyId?: string;
}

export interface PullRequestClosed extends GatewaySigned {
  deliveryId: string;
  merged: boolean;
  closedBy?: string;
  at: string;
}

export type ApprovalChannel = 'github' | 'slack' | 'cli' | 'api' | 'teams';
export type ApprovalDecision = 'approve' | 'reject' | 'dismiss';

/** An approval as the gateway authenticated it. Signed by the gateway (Ed25519) before it reaches the workflow. */
export interface ApprovalClaim {
  v: 1;
  /** owner/repo#number */
  change: string;
  sha: string;
  /** Canonical identity: the approver's GitHub login as resolved by the channel, never taken from a request body. */
  person: string;
  channel: ApprovalChannel;
  decision: ApprovalDecision;
  /** Limit the approval to one environment; absent = every environment the person is eligible for. */
  environment?: string;
  /** How the channel authenticated the person: GitHub review id, Slack user and team, token login... */
  evidence: Record<string, string>;
  comment?: string;
  /** When the gateway received it (ISO 8601). */
  at: string;
  /** Unique per claim; a replayed claim is refused. */
  nonce: string;
}

export interface SignedApproval {
  claim: ApprovalClaim;
  /** base64 Ed25519 signature over canonicalJson(claim). */
  signature: string;
  /** Which gateway key signed it (base64 public key). */
  keyId?: string;
}

export type Verdict = 'counted' | 'refused';

export interface ApprovalOutcome {
  counted: boolean;
  /** The same as `counted`, spelled out (runs started before core v2 leave it out and prefix `reason`). */
  verdict?: Verdict;
  /** Why it was refused, or what it counted for. */
  reason: string;
  /** Environments this approval counts toward. */
  environments: string[];
  stage: ChangeStage;
}

export type ChangeStage =
  | 'checking'
  | 'checks-failed'
  | 'awaiting-approval'
  | 'rejected'
  | 'deploying'
  | 'verifying'
  | 'delivered'
  | 'failed'
  | 'abandoned';

/** The policy snapshot the workflow decides with, resolved from trusted configuration by the orchestrator. */
export interface ChangePolicy {
  repo: string;
  environments: EnvironmentPolicy[];
  people: Array<{ github: string; emails: string[]; slack?: string }>;
  /** Logins who must approve changes that touch policyPaths. */
  policyOwners: string[];
  policyPaths: string[];
  checks: string[];
  merge: boolean;
  /** base64 Ed25519 public keys of gateways whose approvals count. */
  approvalKeys: string[];
  /** Refuse signed claims older than this when they reach the workflow (replay window). */
  claimMaxAgeMs: number;
  temporalUiUrl: string;
  namespace: string;
  /** The branch pull requests must target to be approved and delivered (repositories[].defaultBranch). */
  defaultBranch?: string;
  /** Break-glass (config `emergency`); absent when nobody may declare an emergency. */
  emergency?: EmergencyPolicy;
  /** sha256 of the policy as loaded (hex, first 16): recorded with every decision made under it. */
  digest?: string;
}

export interface EnvironmentPolicy {
  name: string;
  required: number;
  /** Resolved GitHub logins (teams expanded); empty = every configured person. */
  eligible: string[];
  expiryMs: number;
  confirm: boolean;
  deployTimeoutMs: number;
  verifyTimeoutMs?: number;
  leaseTtlMs: number;
  /** A head with a commit identity that maps to nobody cannot be approved for this environment (default true). */
  refuseUnknownIdentities?: boolean;
}

export interface CheckResult {
  name: string;
  passed: boolean;
  exitCode: number | null;
  durationMs: number;
  timedOut: boolean;
  /** Last part of the output (capped). */
  outputTail: string;
}

export interface ChecksReport {
  /** The run that recorded the result: trusted only when that run is one of the change's own. */
  runId?: string;
  sha: string;
  passed: boolean;
  results: CheckResult[];
  durationMs: number;
}

/** What the record keeps of a lease: never the secret, only what identifies and bounds it. */
export interface LeaseRecord {
  leaseId: string;
  kind: 'token' | 'dynamic';
  path: string;
  ttlSeconds: number;
  accessor?: string;
  issuedAt: string;
  revokedAt?: string;
  revokeError?: string;
}

export interface DeployInput {
  change: string;
  environment: string;
  sha: string;
  /** change@environment@sha: a deploy command receives it as FOUREYES_IDEMPOTENCY_KEY. */
  idempotencyKey: string;
  /** Set by a rollback run: its request's nonce (the deploy zone admits that rollback's own workflow). */
  rollback?: string;
}

export interface DeployReport {
  environment: string;
  sha: string;
  status: 'deployed' | 'already-deployed' | 'failed';
  exitCode: number | null;
  durationMs: number;
  outputTail: string;
  leases: LeaseRecord[];
  /** Why a command that ran failed: 'exited with code 3', 'timed out after 60s and was killed'. */
  failure?: string;
  timedOut?: boolean;
}

export interface VerifyReport {
  environment: string;
  sha: string;
  passed: boolean;
  exitCode: number | null;
  durationMs: number;
  outputTail: string;
  leases: LeaseRecord[];
  /** Why a command that ran failed: 'exited with code 3', 'timed out after 60s and was killed'. */
  failure?: string;
  timedOut?: boolean;
}

export interface ApprovalRecord {
  claim: ApprovalClaim;
  /** The gateway's signature as received, so the claim can be verified again (core v2). */
  signature?: string;
  /** The trusted key that verified it; absent when none did. */
  keyId?: string;
  /** Digest of the policy the decision was made under. */
  policyDigest?: string;
  /** Workflow time at which it was recorded. */
  recordedAt: string;
  counted: boolean;
  reason: string;
  environments: string[];
  /** Set when a later event voided it: a push, a dismissal, expiry. */
  voidedAt?: string;
  voidReason?: string;
}

export interface TimelineEntry {
  at: string;
  kind: string;
  summary: string;
  sha?: string;
  actor?: string;
}

export interface EnvironmentStatus {
  name: string;
  required: number;
  approvedBy: string[];
  /** Who declared the emergency the head was (or is being) deployed here under, without approval. */
  emergency?: string;
  state: 'pending' | 'approved' | 'deploying' | 'verifying' | 'deployed' | 'failed' | 'skipped';
  deploy?: DeployReport;
  verify?: VerifyReport;
  /**
   * Set by readers (gateway, CLI) from the environment's lane: the change's release there was since replaced by
   * a rollback to an earlier one (the change itself is never told: that would be an input nobody signed).
   */
  rolledBack?: { sha: string; change: string; rollback: string; at: string; by?: string };
}

/** Answer of the `status` query: what an operator needs to know about one change. */
export interface ChangeStatus {
  change: string;
  title: string;
  stage: ChangeStage;
  /** Why the change is waiting, in one line a person can act on. */
  waitingFor: string;
  headSha: string;
  author: string;
  initiators: string[];
  policyChange: boolean;
  checks?: ChecksReport;
  approvals: ApprovalRecord[];
  environments: EnvironmentStatus[];
  timeline: TimelineEntry[];
  runIds: string[];
  /** Every run of the change in order (core v2): first, continued as new, reopened. */
  runs?: RunInfo[];
  /** The branch the pull request targets (core v2). */
  baseRef?: string;
  /** Commit identities that map to nobody in the configuration (core v2). */
  unknownIdentities?: UnknownIdentity[];
  /** Every emergency declared for the change (break-glass), with where its retroactive review stands. */
  emergencies?: EmergencyView[];
  /** Set by readers (gateway, CLI) when the run failed: its error, as the Temporal UI shows it. */
  failure?: { type: string; message: string };
  /**
   * Steps Temporal is retrying, with their last failure (e.g. OpenBao unreachable): added from the
   * workflow's description by the gateway and `foureyes status`, as the workflow itself cannot see them.
   */
  retrying?: RetryingStep[];
}

export interface RetryingStep {
  activity: string;
  attempt: number;
  lastFailure: string;
  nextAttemptAt?: string;
}

/** One run of a change's workflow: the record of a change spans all of them. */
export interface RunInfo {
  runId: string;
  startedAt: string;
  /** How the run began: the first of its change, continued as new, or started again after the pull request was reopened. */
  how: 'first' | 'continued' | 'reopened';
  endedAt?: string;
  /** delivered, abandoned, continued-as-new; absent while running (or when it ended without a record). */
  outcome?: string;
}

/** A commit identity that maps to nobody in the configuration: it could be anyone, an approver included. */
export interface UnknownIdentity {
  /** The e-mail or name as the commit gives it. */
  identity: string;
  sha: string;
  role: 'author' | 'committer' | 'co-author' | 'pusher';
}

/** The head of a pull request as the orchestrator read it from GitHub (never from an event). */
export interface HeadFacts {
  sha: string;
  baseRef: string;
  commits: CommitInfo[];
  files: string[];
  /** Why GitHub's lists are not the whole pull request (more than 250 commits or 3000 files). */
  incomplete?: string;
  /** The head appeared with no push event naming who pushed it (pushed while closed, or its push was lost). */
  pusherUnknown?: boolean;
  /** The login the signed push event of this head named (heads read with identity rules 2). */
  pushedBy?: string;
  /** 2: the pusher and GitHub-unlinked noreply addresses count as identities (HEAD_EVIDENCE_PATCH). */
  identityRules?: 2;
}

/** The pull request as GitHub answers for it now (the orchestrator's look-up). */
export interface PullRequestFacts {
  state: 'open' | 'closed';
  merged: boolean;
  title: string;
  author: string;
  headRef: string;
  head: HeadFacts;
}
