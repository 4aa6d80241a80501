// Ed25519 signatures over approval claims. The gateway signs what a channel authenticated; the workflow
// verifies deterministically (pure JavaScript, no Node built-ins) before it counts anything, so a signal
// sent straight to Temporal cannot approve, and a pull request event not signed by the gateway is refused.
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { ApprovalClaim, GatewaySigned, SignedApproval } from './types.ts';

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
  return approvalSigner(signed, trustedKeys) !== undefined;
}

// Pull request events the gateway forwards are signed the same way, under their own domain, so that neither an
// approval's signature nor an event's can stand for the other.
const EVENT_DOMAIN = 'foureyes.gateway-event/v1';

function eventBytes(event: GatewaySigned): Uint8Array {
  const { signature: _s, keyId: _k, ...signed } = event as GatewaySigned & Record<string, unknown>;
  return utf8ToBytes(canonicalJson({ domain: EVENT_DOMAIN, event: signed }));
}

/** The event with the gateway's signature over everything in it (`change` and `at` included). */
export function signEvent<T extends GatewaySigned>(
  event: T,
  key: SigningKey,
): T & Required<Pick<GatewaySigned, 'signature' | 'keyId'>> {
  const { signature: _s, keyId: _k, ...unsigned } = event;
  return {
    ...(unsigned as T),
    signature: bytesToHex(ed.sign(eventBytes(unsigned), hexToBytes(key.privateKey))),
    keyId: key.publicKey,
  };
}

/** The trusted key that signed exactly this event, or undefined. Never throws on malformed input. */
export function verifySignedEvent(event: GatewaySigned, trustedKeys: readonly string[]): string | undefined {
  return signerOf(() => eventBytes(event), event?.signature, event?.keyId, trustedKeys);
}

/** The trusted key that signed exactly this claim, or undefined (verifySignedApproval, naming the key). */
export function approvalSigner(signed: SignedApproval, trustedKeys: readonly string[]): string | undefined {
  return signerOf(() => utf8ToBytes(canonicalJson(signed.claim)), signed?.signature, signed?.keyId, trustedKeys);
}

/**
 * The trusted key (hex) whose Ed25519 signature `signature` is over `message()`, or undefined. The key the
 * signer names is tried first when it is trusted. Never throws on malformed input.
 */
export function signerOf(
  message: () => Uint8Array,
  signature: unknown,
  keyId: unknown,
  trustedKeys: readonly string[],
): string | undefined {
  try {
    if (typeof signature !== 'string' || !/^[0-9a-f]{128}$/i.test(signature)) return undefined;
    const bytes = message();
    const sig = hexToBytes(signature);
    const candidates = typeof keyId === 'string' && trustedKeys.includes(keyId) ? [keyId] : trustedKeys;
    return candidates.find((key) => /^[0-9a-f]{64}$/i.test(key) && verifyWithoutBaseTable(sig, bytes, hexToBytes(key)));
  } catch {
    return undefined;
  }
}

const ORDER = ed.Point.CURVE().n;
const NEGATED_BASE = ed.Point.BASE.negate();

function numberLE(bytes: Uint8Array): bigint {
  return BigInt(`0x${bytesToHex(Uint8Array.from(bytes).reverse())}`);
}

/**
 * `ed.verify` (RFC 8032 with ZIP-215 decoding, noble's default) without noble's base-point table. Why: the
 * workflow sandbox evaluates the bundle afresh for every run it loads, and the orchestrator loads a change's
 * run for every workflow task (no workflow cache, src/workers/cache.ts), so `ed.verify` rebuilt its 4,224-point
 * table once per task — about a quarter of a replay's CPU. [s]B on the plain ladder costs about as much as the
 * [k]A the check needs anyway. Same equation and range checks as noble's `_verify`:
 * [8]([k]A + R - [s]B) = identity, 0 <= s < L. test/shared/approval-signature.test.ts holds it to `ed.verify`.
 */
export function verifyWithoutBaseTable(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  const r = signature.subarray(0, 32);
  const s = numberLE(signature.subarray(32, 64));
  if (s >= ORDER) return false;
  let A: ed.Point, R: ed.Point;
  try {
    A = ed.Point.fromBytes(publicKey, true);
    R = ed.Point.fromBytes(r, true);
  } catch {
    return false;
  }
  // [s]B = -([s](-B)): -B is not the base point, so multiply() takes the ladder instead of the table.
  const SB = s === 0n ? ed.Point.ZERO : NEGATED_BASE.multiply(s, false).negate();
  const k = numberLE(sha512(concatBytes(r, publicKey, message))) % ORDER;
  return R.add(A.multiply(k, false)).subtract(SB).clearCofactor().is0();
}
