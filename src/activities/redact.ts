// Redaction of leased values from a command's output, robust to values split across chunks: text is
// released line by line, and a line is redacted whole before anyone (log, tail, error) sees it. Each
// value is redacted in every form it may be printed in (secretForms), and credentials in URLs go too.

export const REDACTED = '[redacted]';

/** Pieces of a multi-line secret shorter than this are left alone (a PEM's empty or dash-only lines). */
const MIN_PART = 8;
/** Line widths base64 tools wrap at (base64(1): 76; PEM and openssl: 64). */
const BASE64_WIDTHS = [76, 64];

function chunks(text: string, width: number): string[] {
  const out: string[] = [];
  for (let at = 0; at < text.length; at += width) out.push(text.slice(at, at + width));
  return out;
}

const formsCache = new WeakMap<readonly string[], string[]>();
/**
 * Every form in which a configured secret may show up in line-based output: the value; each of its lines
 * (a PEM key printed line by line); base64 (standard, unpadded, URL-safe) whole and as wrapped lines;
 * URL-encoded; JSON-escaped. Longest first, so that a value containing another is replaced whole.
 */
export function secretForms(secrets: readonly string[]): string[] {
  const cached = formsCache.get(secrets);
  if (cached) return cached;
  const forms = new Set<string>();
  const add = (form: string, min = 1) => {
    if (form.length >= min) forms.add(form);
  };
  for (const secret of secrets) {
    if (!secret) continue;
    add(secret);
    if (/[\r\n]/.test(secret)) {
      for (const line of secret.split(/\r?\n/)) {
        add(line, MIN_PART);
        add(line.trim(), MIN_PART);
      }
    }
    const b64 = Buffer.from(secret, 'utf8').toString('base64');
    for (const encoded of new Set([b64, b64.replace(/=+$/, ''), Buffer.from(secret, 'utf8').toString('base64url')])) {
      add(encoded);
      for (const width of BASE64_WIDTHS)
        if (encoded.length > width) for (const part of chunks(encoded, width)) add(part, MIN_PART);
    }
    add(encodeURIComponent(secret));
    add(JSON.stringify(secret).slice(1, -1));
  }
  const sorted = [...forms].sort((a, b) => b.length - a.length);
  formsCache.set(secrets, sorted);
  return sorted;
}

/** `scheme://user:password@host` -> `scheme://[redacted]@host`: remotes with credentials never reach a message. */
export function redactCredentialUrls(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, `$1${REDACTED}@`);
}

export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secretForms(secrets)) out = out.split(secret).join(REDACTED);
  return redactCredentialUrls(out);
}

/** Splits a stream into lines and redacts each; a line longer than `maxLine` is released in pieces
 * that keep back enough characters to never cut a secret in two. */
export class LineRedactor {
  private buffer = '';
  private readonly keep: number;

  constructor(
    private readonly secrets: readonly string[],
    private readonly emit: (line: string) => void,
    private readonly maxLine = 16_384,
  ) {
    this.keep = Math.max(0, ...secretForms(secrets).map((s) => s.length));
  }

  push(chunk: string): void {
    this.buffer += chunk;
    let newline = this.buffer.indexOf('\n');
    while (newline >= 0) {
      this.emit(redactText(this.buffer.slice(0, newline), this.secrets));
      this.buffer = this.buffer.slice(newline + 1);
      newline = this.buffer.indexOf('\n');
    }
    if (this.buffer.length > this.maxLine + this.keep) {
      // Redact the whole buffer first, then release all but a tail that could hold the start of a secret.
      const redacted = redactText(this.buffer, this.secrets);
      const cut = redacted.length - this.keep;
      // Only release up to a point where the redacted and the original text agree on the tail.
      const tail = this.buffer.slice(this.buffer.length - this.keep);
      if (redacted.endsWith(tail)) {
        this.emit(redacted.slice(0, cut));
        this.buffer = tail;
      } else {
        this.emit(redacted);
        this.buffer = '';
      }
    }
  }

  flush(): void {
    if (this.buffer.length > 0) this.emit(redactText(this.buffer, this.secrets));
    this.buffer = '';
  }
}
