import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineRedactor, REDACTED, redactText } from '../../src/activities/redact.ts';

function feed(text: string, cuts: number[], secrets: string[], maxLine?: number): string[] {
  const lines: string[] = [];
  const redactor = new LineRedactor(secrets, (l) => lines.push(l), maxLine);
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    redactor.push(text.slice(at, cut));
    at = Math.max(at, cut);
  }
  redactor.push(text.slice(at));
  redactor.flush();
  return lines;
}

describe('redaction of leased values', () => {
  it('replaces every occurrence, longest value first', () => {
    expect(redactText('user=abc pass=abcdef', ['abc', 'abcdef'])).toBe(`user=${REDACTED} pass=${REDACTED}`);
  });

  it('no secret survives, however the output is chunked, and lines come out whole', () => {
    const secretArb = fc.string({ unit: fc.constantFrom('a', 'b', 'x', 'Z', '9'), minLength: 6, maxLength: 12 });
    fc.assert(
      fc.property(
        fc.array(secretArb, { minLength: 1, maxLength: 3 }),
        fc.array(fc.oneof(fc.string({ maxLength: 20 }), fc.constant('\n')), { maxLength: 20 }),
        fc.array(fc.nat(400), { maxLength: 30 }),
        fc.boolean(),
        (secrets, noise, cuts, tinyLines) => {
          const text = noise.flatMap((n, i) => [n, secrets[i % secrets.length] as string]).join('');
          const out = feed(text, cuts, secrets, tinyLines ? 8 : undefined).join('\n');
          for (const s of secrets) expect(out.includes(s)).toBe(false);
          if (!tinyLines) expect(out).toBe(redactText(text, secrets).split('\n').join('\n'));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('secrets in every form a command may print them in', () => {
  const pem = [
    '-----BEGIN PRIVATE KEY-----',
    'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj',
    'MZR5tPx0Q2rwPP4e1n6V4k6ZbW9Y8W3a0p3e2sFq1t9h0b2m3n4o5p6q7r8s9t0u',
    '-----END PRIVATE KEY-----',
    '',
  ].join('\n');

  it('a multi-line secret (a PEM key) printed line by line, base64-encoded, wrapped, URL-encoded or JSON-escaped leaves nothing behind', () => {
    const b64 = Buffer.from(pem).toString('base64');
    const wrapped = (b64.match(/.{1,76}/g) ?? []).join('\n');
    const printed = [
      pem,
      b64,
      wrapped,
      Buffer.from(pem).toString('base64url'),
      encodeURIComponent(pem),
      JSON.stringify({ key: pem }),
    ].join('\n');
    const lines = feed(printed, [13, 200, 401], [pem]);
    const out = lines.join('\n');
    for (const line of pem.split('\n').filter((l) => l.length >= 8 && !l.startsWith('-----')))
      expect(out).not.toContain(line);
    expect(out).not.toContain(b64.slice(0, 40));
    for (const piece of wrapped.split('\n').filter((p) => p.length >= 8)) expect(out).not.toContain(piece);
    expect(out).not.toContain(encodeURIComponent(pem).slice(0, 30));
    expect(out).not.toContain('MIIEvQIBADANBgkq');
  });

  it('credentials in URLs are stripped, the rest of the URL stays', () => {
    expect(
      redactText('fatal: unable to access https://x-access-token:ghs_abc123@github.com/acme/shop.git/: 403', []),
    ).toBe(`fatal: unable to access https://${REDACTED}@github.com/acme/shop.git/: 403`);
    expect(redactText('postgres://app:s3cret@db:5432/x and ssh://git@host/repo', [])).toBe(
      `postgres://${REDACTED}@db:5432/x and ssh://${REDACTED}@host/repo`,
    );
    expect(redactText('see https://github.com/acme/shop/pull/1 (user@example.com)', [])).toBe(
      'see https://github.com/acme/shop/pull/1 (user@example.com)',
    );
  });
});
