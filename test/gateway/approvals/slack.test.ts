// Pure pieces of the Slack channel and the signing key: the signature window at its edges, the slash
// command grammar, and the startup error for a missing key.
import { describe, expect, it } from 'vitest';
import { parseSlashCommand, verifySlackSignature } from '../../../src/gateway/approvals/slack.ts';
import { loadSigningKey, SigningKeyError } from '../../../src/gateway/approvals/signing.ts';
import { generateSigningKey } from '../../../src/shared/approval-signature.ts';
import { signedSlackHeaders } from '../../../src/dev/slack-standin/sign.ts';

const secret = 'test-signing-secret';
const body = 'command=%2Ffoureyes&text=status+acme%2Fshop%2312&user_id=U0ALEXRV1';
const now = 1_800_000_000_000;
const at = (deltaSeconds: number) => ({
  headers: signedSlackHeaders(secret, body, Math.floor(now / 1000) + deltaSeconds),
  rawBody: Buffer.from(body),
});
const status = (fn: () => void) => {
  try {
    fn();
    return 200;
  } catch (error) {
    return (error as { status?: number }).status ?? 0;
  }
};

describe('verifySlackSignature', () => {
  it('accepts Slack signatures within five minutes either way, refuses beyond', () => {
    expect([-300, 0, 300].map((d) => status(() => verifySlackSignature(at(d), secret, now)))).toEqual([200, 200, 200]);
    expect([-301, 301, 3600].map((d) => status(() => verifySlackSignature(at(d), secret, now)))).toEqual([
      401, 401, 401,
    ]);
  });

  it('refuses a body changed after signing, another secret, and a missing secret (503)', () => {
    const signed = at(0);
    expect(status(() => verifySlackSignature({ ...signed, rawBody: Buffer.from(`${body}&x=1`) }, secret, now))).toBe(
      401,
    );
    expect(status(() => verifySlackSignature(signed, 'other', now))).toBe(401);
    expect(status(() => verifySlackSignature(signed, undefined, now))).toBe(503);
  });
});

describe('parseSlashCommand', () => {
  const envs = ['staging', 'production'];
  it('reads subcommand, change, optional environment and comment', () => {
    expect(parseSlashCommand('approve acme/shop#12 production ship it', envs)).toEqual({
      kind: 'approve',
      change: 'acme/shop#12',
      environment: 'production',
      comment: 'ship it',
    });
    expect(parseSlashCommand('  reject acme/shop#12   not yet ', envs)).toEqual({
      kind: 'reject',
      change: 'acme/shop#12',
      comment: 'not yet',
    });
    expect(parseSlashCommand('status acme/shop#12', envs)).toEqual({ kind: 'status', change: 'acme/shop#12' });
    expect(parseSlashCommand('deploy acme/shop#12', envs)).toMatchObject({
      kind: 'help',
      problem: expect.stringContaining('unknown subcommand'),
    });
    expect(parseSlashCommand('approve', envs)).toMatchObject({ kind: 'help' });
  });
});

describe('loadSigningKey', () => {
  it('names the variable when it is missing or malformed, never the value', () => {
    expect(() => loadSigningKey({})).toThrow(SigningKeyError);
    expect(() => loadSigningKey({})).toThrow(/FOUREYES_APPROVAL_SIGNING_KEY is not set/);
    const secretish = 'zz'.repeat(32);
    expect(() => loadSigningKey({ FOUREYES_APPROVAL_SIGNING_KEY: secretish })).toThrow(/malformed/);
    try {
      loadSigningKey({ FOUREYES_APPROVAL_SIGNING_KEY: secretish });
    } catch (error) {
      expect((error as Error).message).not.toContain(secretish);
    }
    const key = generateSigningKey();
    expect(loadSigningKey({ FOUREYES_APPROVAL_SIGNING_KEY: key.privateKey }).publicKey).toBe(key.publicKey);
  });
});
