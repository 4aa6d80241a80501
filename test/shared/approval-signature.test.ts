// The workflow verifies approval signatures with its own equation (no base-point table, see
// verifyWithoutBaseTable): it must accept and refuse exactly what @noble/ed25519's verify does, for honest
// signatures and for every kind of tampering, or an approval would count on one path and not the other.
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signClaim, verifySignedApproval, verifyWithoutBaseTable } from '../../src/shared/approval-signature.ts';
import type { ApprovalClaim } from '../../src/shared/types.ts';

const L = ed.Point.CURVE().n;
const le32 = (n: bigint) => Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
const leNumber = (bytes: Uint8Array) => bytes.reduceRight((acc, b) => (acc << 8n) | BigInt(b), 0n);
const same = (sig: Uint8Array, msg: Uint8Array, pub: Uint8Array) => {
  let expected: boolean;
  try {
    expected = ed.verify(sig, msg, pub);
  } catch {
    expected = false;
  }
  expect(verifyWithoutBaseTable(sig, msg, pub)).toBe(expected);
  return expected;
};

const seed = fc.uint8Array({ minLength: 32, maxLength: 32 });
const message = fc.uint8Array({ maxLength: 300 });

describe('verifyWithoutBaseTable', () => {
  it('accepts every honest signature', () => {
    fc.assert(
      fc.property(seed, message, (secret, msg) => {
        const pub = ed.getPublicKey(secret);
        expect(same(ed.sign(msg, secret), msg, pub)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses what ed.verify refuses: a flipped bit in the signature, message or key, or another key', () => {
    fc.assert(
      fc.property(
        seed,
        seed,
        message,
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom('sig', 'msg', 'pub', 'other-key'),
        (secret, other, msg, at, bit, where) => {
          const pub = ed.getPublicKey(secret);
          const sig = ed.sign(msg, secret);
          const flip = (bytes: Uint8Array) => {
            const copy = Uint8Array.from(bytes);
            if (copy.length > 0) copy[at % copy.length]! ^= 1 << bit;
            return copy;
          };
          if (where === 'sig') same(flip(sig), msg, pub);
          else if (where === 'msg') same(sig, msg.length > 0 ? flip(msg) : Uint8Array.of(1), pub);
          else if (where === 'pub') same(sig, msg, flip(pub));
          else same(sig, msg, ed.getPublicKey(other));
        },
      ),
      { numRuns: 120 },
    );
  });

  it('agrees with ed.verify on random bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        message,
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (sig, msg, pub) => {
          same(sig, msg, pub);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('refuses a malleated S (S + L) like ed.verify, and the wrong lengths', () => {
    const secret = new Uint8Array(32).fill(7);
    const msg = new TextEncoder().encode('approve 3f1c');
    const pub = ed.getPublicKey(secret);
    const sig = ed.sign(msg, secret);
    const malleated = Uint8Array.from([...sig.subarray(0, 32), ...le32(leNumber(sig.subarray(32)) + L)]);
    expect(same(malleated, msg, pub)).toBe(false);
    expect(verifyWithoutBaseTable(sig.subarray(0, 63), msg, pub)).toBe(false);
    expect(verifyWithoutBaseTable(sig, msg, pub.subarray(0, 31))).toBe(false);
  });

  it('treats small-order and non-canonical encodings (ZIP-215) as ed.verify does', () => {
    const identity = le32(1n); // y = 1: the neutral point
    const nonCanonicalIdentity = le32(2n ** 255n - 19n + 1n); // y = p + 1, ZIP-215 reads it as y = 1
    const zeroS = new Uint8Array(32);
    const msg = new TextEncoder().encode('anything');
    for (const pub of [identity, nonCanonicalIdentity]) {
      for (const r of [identity, nonCanonicalIdentity]) same(Uint8Array.from([...r, ...zeroS]), msg, pub);
    }
    // s = 0 with an honest R: [8]([k]A + R) is not the identity.
    const secret = new Uint8Array(32).fill(9);
    const sig = ed.sign(msg, secret);
    expect(same(Uint8Array.from([...sig.subarray(0, 32), ...zeroS]), msg, ed.getPublicKey(secret))).toBe(false);
    // A signer who adds a point of order 2 to R: [k]A + R - [s]B is that point, which only the cofactored
    // equation (noble's) accepts.
    const { scalar, pointBytes } = ed.utils.getExtendedPublicKey(secret);
    const torsion = ed.Point.fromBytes(le32(2n ** 255n - 19n - 1n)); // (0, -1)
    const rScalar = 123456789n;
    const R = ed.Point.BASE.multiply(rScalar).add(torsion).toBytes();
    const k = leNumber(sha512(Uint8Array.from([...R, ...pointBytes, ...msg]))) % L;
    const torsioned = Uint8Array.from([...R, ...le32((rScalar + k * scalar) % L)]);
    expect(same(torsioned, msg, pointBytes)).toBe(true);
  });
});

describe('verifySignedApproval', () => {
  const key = { privateKey: '11'.repeat(32), publicKey: '' };
  key.publicKey = ed.etc.bytesToHex(ed.getPublicKey(ed.etc.hexToBytes(key.privateKey)));
  const claim: ApprovalClaim = {
    v: 1,
    change: 'acme/shop#7',
    sha: 'a'.repeat(40),
    person: 'alex',
    channel: 'cli',
    decision: 'approve',
    evidence: { tokenLogin: 'alex' },
    at: '2026-12-01T00:00:00.000Z',
    nonce: 'n-1',
  };

  it('counts a claim signed by a trusted key and nothing altered after signing', () => {
    const signed = signClaim(claim, key);
    expect(verifySignedApproval(signed, [key.publicKey])).toBe(true);
    expect(verifySignedApproval({ ...signed, claim: { ...claim, person: 'sam' } }, [key.publicKey])).toBe(false);
    expect(verifySignedApproval(signed, ['22'.repeat(32)])).toBe(false);
  });
});
