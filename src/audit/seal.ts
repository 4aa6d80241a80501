// Tamper evidence for audit exports: a SHA-256 hash chain over the entries (each entry's hash covers the
// previous hash and the entry's canonical JSON) and an Ed25519 signature over the header and the chain head.
// Changing, removing, reordering or inserting any entry breaks the chain at that entry.
import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from '../shared/approval-signature.ts';

ed.hashes.sha512 = sha512;

export const GENESIS = '0'.repeat(64);

export interface ChainedEntry {
  seq: number;
  at: string;
  kind: string;
  summary: string;
  data?: unknown;
  prevHash: string;
  hash: string;
}

export type UnchainedEntry = Omit<ChainedEntry, 'seq' | 'prevHash' | 'hash'>;

export function entryHash(prevHash: string, entry: Omit<ChainedEntry, 'hash'>): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(entry)).digest('hex');
}

export function chainEntries(entries: UnchainedEntry[]): ChainedEntry[] {
  let prevHash = GENESIS;
  return entries.map((entry, seq) => {
    const body = { ...entry, seq, prevHash };
    const hash = entryHash(prevHash, body);
    prevHash = hash;
    return { ...body, hash };
  });
}

export interface ChainProblem {
  seq: number;
  kind: string;
  problem: string;
}

/** The first place where the chain does not hold, or undefined. */
export function checkChain(entries: unknown): ChainProblem | undefined {
  if (!Array.isArray(entries)) return { seq: -1, kind: '(entries)', problem: 'entries is not a list' };
  let prevHash = GENESIS;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Partial<ChainedEntry> | null;
    if (!entry || typeof entry !== 'object') return { seq: i, kind: '?', problem: `entry ${i} is not an object` };
    const { hash, ...body } = entry;
    const kind = typeof entry.kind === 'string' ? entry.kind : '?';
    if (entry.seq !== i)
      return {
        seq: i,
        kind,
        problem: `entry ${i} has seq ${String(entry.seq)}: entries were removed, inserted or reordered`,
      };
    if (entry.prevHash !== prevHash)
      return { seq: i, kind, problem: `entry ${i} (${kind}) does not follow entry ${i - 1}: prevHash differs` };
    const expected = entryHash(prevHash, body as Omit<ChainedEntry, 'hash'>);
    if (hash !== expected)
      return {
        seq: i,
        kind,
        problem: `entry ${i} (${kind}, ${String(entry.at)}) was altered: its hash does not match its content`,
      };
    prevHash = expected;
  }
  return undefined;
}

export interface AuditSignature {
  alg: 'ed25519';
  publicKey: string;
  value: string;
}

export function signPayload(payload: unknown, privateKeyHex: string): AuditSignature {
  const key = hexToBytes(privateKeyHex);
  return {
    alg: 'ed25519',
    publicKey: bytesToHex(ed.getPublicKey(key)),
    value: bytesToHex(ed.sign(utf8ToBytes(canonicalJson(payload)), key)),
  };
}

export function verifyPayload(payload: unknown, signature: AuditSignature): boolean {
  try {
    if (
      signature?.alg !== 'ed25519' ||
      !/^[0-9a-f]{128}$/i.test(signature.value) ||
      !/^[0-9a-f]{64}$/i.test(signature.publicKey)
    )
      return false;
    return ed.verify(hexToBytes(signature.value), utf8ToBytes(canonicalJson(payload)), hexToBytes(signature.publicKey));
  } catch {
    return false;
  }
}
