// Break-glass: someone listed under `emergency.allowed` declares, through the gateway, that one head of a change
// must go out without waiting for its approvals. The gateway signs the declaration under a domain of its own (no
// approval, event or rollback signature can stand for one) and hands it to the change's workflow, which decides
// it (src/policy/sod.ts), opens the named gates for that exact head for `emergency.window`, announces it, and
// then holds the change open until an eligible person who is neither an initiator nor the declarer has approved
// that same head: the retroactive review, due within `emergency.reviewWithin`.
// Pure: imported by workflow code, activities, the gateway and the CLI.
import * as ed from '@noble/ed25519';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson, signerOf, type SigningKey } from './approval-signature.ts';

export interface EmergencyClaim {
  v: 1;
  kind: 'emergency';
  /** owner/repo#number */
  change: string;
  /** The exact head the emergency is for. */
  sha: string;
  /** The environments whose gates it opens; none named = every environment of the change. */
  environments?: string[];
  /** GitHub login of who declares, as the gateway authenticated them. */
  person: string;
  channel: 'cli' | 'api';
  evidence: { tokenLogin: string };
  /** Why, in the declarer's words (untrusted text, shown escaped). */
  reason: string;
  /** When the gateway signed it (ISO 8601). */
  at: string;
  /** Unique per declaration: one signed declaration is taken once. */
  nonce: string;
}

export interface SignedEmergency {
  claim: EmergencyClaim;
  /** hex Ed25519 over the claim under EMERGENCY_DOMAIN */
  signature: string;
  keyId: string;
}

/** The emergency settings of a repository's policy (config `emergency`; absent = break-glass disabled). */
export interface EmergencyPolicy {
  /** Resolved GitHub logins (teams expanded) who may declare an emergency. */
  allowed: string[];
  /** How long the gates stay open for the declared head. */
  windowMs: number;
  /** By when, after the declaration, the retroactive review must have happened. */
  reviewWithinMs: number;
  /** Whether an emergency deploys a head whose checks failed (default false: checks must pass). */
  overrideFailingChecks: boolean;
}

/** One emergency as the workflow decided and keeps it (part of the change's record, across runs). */
export interface EmergencyRecord {
  /** The declaration's nonce. */
  id: string;
  sha: string;
  declaredBy: string;
  channel: 'cli' | 'api';
  reason: string;
  declaredAt: string;
  /** Until when the gates are open for `sha`. */
  windowEndsAt: string;
  /** By when the retroactive review is due. */
  reviewDueAt: string;
  environments: string[];
  /** The gateway key that signed the declaration. */
  keyId: string;
  signature: string;
  policyDigest?: string;
  /** Environments whose gate opened under this emergency (a deploy there owes the review). */
  usedFor: string[];
  /** When the first deploy under it started (the gate opened). */
  deployedAt?: string;
  /** When the declaration was announced (Slack, Teams, pull request); absent until it was. */
  announcedAt?: string;
  reviewedBy?: string;
  reviewedAt?: string;
  /** When the review was found overdue: the audit records a finding and the emergency is announced again. */
  overdueAt?: string;
  overdueAnnouncedAt?: string;
  /** Closed: reviewed, or lapsed (its window ended or the head was replaced before anything deployed under it). */
  closedAt?: string;
  closedHow?: 'reviewed' | 'lapsed';
}

/** Where an emergency stands, for status, the UI and the audit. */
export type EmergencyState = 'open' | 'review-due' | 'overdue' | 'reviewed' | 'reviewed-late' | 'lapsed';

export interface EmergencyView extends EmergencyRecord {
  state: EmergencyState;
  /** One line a person can act on, e.g. "emergency, review due 2026-12-04T20:00:00Z". */
  summary: string;
}

/** What the workflow answers a declaration. */
export interface EmergencyOutcome {
  taken: boolean;
  reason: string;
  /** The emergency as recorded (taken only). */
  emergency?: EmergencyView;
}

/** The workflow upserts its emergencies into this memo key whenever one changes: the audit reads them there. */
export const EMERGENCY_MEMO_KEY = 'foureyesEmergencies';

const EMERGENCY_DOMAIN = 'foureyes.gateway-emergency/v1';

function emergencyBytes(claim: EmergencyClaim): Uint8Array {
  return utf8ToBytes(canonicalJson({ domain: EMERGENCY_DOMAIN, claim }));
}

export function signEmergency(claim: EmergencyClaim, key: SigningKey): SignedEmergency {
  const signature = ed.sign(emergencyBytes(claim), hexToBytes(key.privateKey));
  return { claim, signature: bytesToHex(signature), keyId: key.publicKey };
}

/** The trusted key that signed exactly this declaration, or undefined. Never throws on malformed input. */
export function emergencySigner(signed: SignedEmergency, trustedKeys: readonly string[]): string | undefined {
  return signerOf(() => emergencyBytes(signed.claim), signed?.signature, signed?.keyId, trustedKeys);
}

/** The emergency's state at `now` (ms). */
export function emergencyState(e: EmergencyRecord, now: number): EmergencyState {
  if (e.closedHow === 'lapsed') return 'lapsed';
  if (e.closedHow === 'reviewed') return e.overdueAt ? 'reviewed-late' : 'reviewed';
  if (e.usedFor.length === 0) return 'open';
  return e.overdueAt || now >= Date.parse(e.reviewDueAt) ? 'overdue' : 'review-due';
}

export function emergencyView(e: EmergencyRecord, now: number): EmergencyView {
  const state = emergencyState(e, now);
  const sha = e.sha.slice(0, 7);
  const summaries: Record<EmergencyState, string> = {
    open: `emergency declared by ${e.declaredBy} for ${sha}: gates open until ${e.windowEndsAt}`,
    'review-due': `emergency, review due ${e.reviewDueAt}: an eligible person who is neither an initiator nor ${e.declaredBy} approves ${sha}`,
    overdue: `emergency, review OVERDUE since ${e.reviewDueAt}: an eligible person who is neither an initiator nor ${e.declaredBy} approves ${sha}`,
    reviewed: `emergency reviewed by ${e.reviewedBy ?? '?'} at ${e.reviewedAt ?? '?'}`,
    'reviewed-late': `emergency reviewed late by ${e.reviewedBy ?? '?'} at ${e.reviewedAt ?? '?'} (due ${e.reviewDueAt})`,
    lapsed: `emergency lapsed at ${e.closedAt ?? '?'}: nothing was deployed under it`,
  };
  return { ...e, state, summary: summaries[state] };
}

/** What the orchestrator's `announceEmergency` activity posts (Slack, Teams where configured, the pull request). */
export interface AnnounceEmergencyInput {
  /** declared: an emergency change is being deployed; overdue: its retroactive review is overdue. */
  kind: 'declared' | 'overdue';
  change: string;
  title: string;
  emergency: EmergencyView;
  /** The change in the Temporal UI. */
  url: string;
}

export interface AnnounceEmergencyResult {
  /** One line for the change's timeline: where it was posted, and where not and why. */
  summary: string;
  slack: { posted: boolean; reason?: string };
  teams: { posted: boolean; reason?: string };
  github: { posted: boolean; reason?: string };
}
