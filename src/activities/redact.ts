// Redaction of leased values from a command's output, robust to values split across chunks: text is
// released line by line, and a line is redacted whole before anyone (log, tail, error) sees it.

export const REDACTED = '[redacted]';

export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so that a value containing another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length > 0) out = out.split(secret).join(REDACTED);
  }
  return out;
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
    this.keep = Math.max(0, ...secrets.map((s) => s.length));
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
