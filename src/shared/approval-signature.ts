// Ed25519 signatures over approval claims. The gateway signs what a channel authenticated; the workflow
// verifies deterministically (pure JavaScript, no Node built-ins) before it counts anything, so a signal
// sent straight to Temporal cannot approve (DESIGN.md invariant 3).
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { ApprovalClaim, SignedApproval } from './types.ts';

ed.hashes.sha512 = sha512;

/** JSON with keys sorted at every level: the exact bytes that are signed. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export interface SigningKey {
  /** 32-byte seed, hex. Secret: held by the gateway only. */
  privateKey: string;
  /** hex */
  publicKey: string;
}

export function generateSigningKey(): SigningKey {
  const { secretKey, publicKey } = ed.keygen();
  return { privateKey: bytesToHex(secretKey), publicKey: bytesToHex(publicKey) };
}

export function publicKeyOf(privateKeyHex: string): string {
  return bytesToHex(ed.getPublicKey(hexToBytes(privateKeyHex)));
}

export function signClaim(claim: ApprovalClaim, key: SigningKey): SignedApproval {
  const signature = ed.sign(utf8ToBytes(canonicalJson(claim)), hexToBytes(key.privateKey));
  return { claim, signature: bytesToHex(signature), keyId: key.publicKey };
}

/** True when one of `trustedKeys` (hex) signed exactly this claim. Never throws on malformed input. */
export function verifySignedApproval(signed: SignedApproval, trustedKeys: readonly string[]): boolean {
  try {
    if (typeof signed?.signature !== 'string' || !/^[0-9a-f]{128}$/i.test(signed.signature)) return false;
    const message = utf8ToBytes(canonicalJson(signed.claim));
    const signature = hexToBytes(signed.signature);
    const candidates = signed.keyId && trustedKeys.includes(signed.keyId) ? [signed.keyId] : trustedKeys;
    return candidates.some((key) => /^[0-9a-f]{64}$/i.test(key) && ed.verify(signature, message, hexToBytes(key)));
  } catch {
    return false;
  }
}
