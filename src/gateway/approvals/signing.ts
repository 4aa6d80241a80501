// The gateway's approval signing key (Ed25519, hex seed in FOUREYES_APPROVAL_SIGNING_KEY). Only the gateway
// holds it; orchestrators are configured with the public half (FOUREYES_APPROVAL_PUBLIC_KEYS).
import { publicKeyOf, type SigningKey } from '../../shared/approval-signature.ts';

export class SigningKeyError extends Error {
  override name = 'SigningKeyError';
}

const cache = new Map<string, SigningKey>();

/** Reads and checks the key; the message names the variable and what to do, never the value. */
export function loadSigningKey(env: NodeJS.ProcessEnv = process.env): SigningKey {
  const raw = env.FOUREYES_APPROVAL_SIGNING_KEY?.trim();
  if (!raw) {
    throw new SigningKeyError(
      'FOUREYES_APPROVAL_SIGNING_KEY is not set: the gateway signs every approval with it. `foureyes up` generates one in <data>/keys/approval-signing.json; in production set it to a 64-character hex Ed25519 seed and give its public key to the orchestrator in FOUREYES_APPROVAL_PUBLIC_KEYS',
    );
  }
  const cached = cache.get(raw);
  if (cached) return cached;
  if (!/^[0-9a-fA-F]{64}$/.test(raw)) {
    throw new SigningKeyError(
      `FOUREYES_APPROVAL_SIGNING_KEY is malformed: expected 64 hex characters (a 32-byte Ed25519 seed), found ${raw.length} characters`,
    );
  }
  const key = { privateKey: raw.toLowerCase(), publicKey: publicKeyOf(raw.toLowerCase()) };
  cache.set(raw, key);
  return key;
}
