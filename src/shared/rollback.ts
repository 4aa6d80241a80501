// A rollback: an eligible person asks, through the gateway, for an environment to run an earlier release of it
// again. The gateway signs the request (under a domain of its own, so that no approval or event signature can
// stand for one) and starts `rollback:owner/repo@env:<nonce>`; the workflow believes only what it verifies.
// Pure: imported by workflow code, activities, the gateway and the CLI.
import * as ed from '@noble/ed25519';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson, signerOf, type SigningKey } from './approval-signature.ts';
import type { ApprovalRecord } from './types.ts';

export interface RollbackClaim {
  v: 1;
  kind: 'rollback';
  /** owner/repo */
  repo: string;
  environment: string;
  /** GitHub login of who asked, as the gateway authenticated them. */
  person: string;
  channel: 'cli' | 'api';
  evidence: { tokenLogin: string };
  /** The SHA (or its prefix) asked for; none = the release before the running one. */
  to?: string;
  /** Why, in the asker's words (untrusted text, shown escaped). */
  reason: string;
  /** When the gateway signed it (ISO 8601). */
  at: string;
  /** Unique per request: names the workflow, so one signed request runs once. */
  nonce: string;
}

export interface SignedRollback {
  claim: RollbackClaim;
  /** hex Ed25519 over the claim under ROLLBACK_DOMAIN */
  signature: string;
  keyId: string;
}

export interface RollbackWorkflowInput {
  request: SignedRollback;
}

const ROLLBACK_DOMAIN = 'foureyes.gateway-rollback/v1';
const NONCE = /^[A-Za-z0-9-]{8,64}$/;
const ROLLBACK_ID =
  /^rollback:([A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100})@([A-Za-z0-9._-]{1,64}):([A-Za-z0-9-]{8,64})$/;

export function rollbackWorkflowId(repo: string, environment: string, nonce: string): string {
  return `rollback:${repo}@${environment}:${nonce}`;
}

export function parseRollbackId(id: string): { repo: string; environment: string; nonce: string } | undefined {
  const match = typeof id === 'string' ? ROLLBACK_ID.exec(id) : null;
  if (!match) return undefined;
  return { repo: match[1] as string, environment: match[2] as string, nonce: match[3] as string };
}

export function isRollbackNonce(nonce: unknown): nonce is string {
  return typeof nonce === 'string' && NONCE.test(nonce);
}

function rollbackBytes(claim: RollbackClaim): Uint8Array {
  return utf8ToBytes(canonicalJson({ domain: ROLLBACK_DOMAIN, claim }));
}

export function signRollback(claim: RollbackClaim, key: SigningKey): SignedRollback {
  const signature = ed.sign(rollbackBytes(claim), hexToBytes(key.privateKey));
  return { claim, signature: bytesToHex(signature), keyId: key.publicKey };
}

/** The trusted key that signed exactly this request, or undefined. Never throws on malformed input. */
export function rollbackSigner(signed: SignedRollback, trustedKeys: readonly string[]): string | undefined {
  return signerOf(() => rollbackBytes(signed.claim), signed?.signature, signed?.keyId, trustedKeys);
}

export type RollbackStage = 'checking' | 'waiting-for-lane' | 'deploying' | 'verifying' | 'done' | 'failed' | 'refused';

/**
 * The rollback workflow's `status` query. Shaped like a change's status where the lane reads it (change,
 * headSha, environments[].state/approvedBy/deploy.sha), so a rollback holds a lane as a change does.
 */
export interface RollbackStatus {
  kind: 'rollback';
  rollback: string;
  repo: string;
  environment: string;
  requestedBy: string;
  reason: string;
  stage: RollbackStage;
  /** One line a person can act on. */
  summary: string;
  /** The change whose release is deployed again (empty until decided). */
  change: string;
  /** The release's SHA (empty until decided). */
  headSha: string;
  /** What ran in the environment when the rollback was asked for. */
  from?: { sha: string; change: string };
  /** The approvers of the release rolled back to: that approval is the evidence. */
  approvedBy: string[];
  environments: Array<{
    name: string;
    state: 'pending' | 'deploying' | 'verifying' | 'deployed' | 'failed';
    approvedBy: string[];
    deploy?: { sha: string; status: string; exitCode: number | null; outputTail: string };
  }>;
  timeline: Array<{ at: string; what: string; detail: string }>;
}

/** What the change that delivered a rollback's target recorded of its approvals, as its own run answers. */
export interface RollbackEvidence {
  found: boolean;
  /** Why nothing could be read (found false). */
  reason?: string;
  /** Whom that change held to be initiators (author, committers, pushers, ...). */
  initiators: string[];
  /** Its approval records of the target's SHA. */
  approvals: ApprovalRecord[];
}
