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
