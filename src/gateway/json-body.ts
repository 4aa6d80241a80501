// One way for the gateway's JSON routes to read a body: bounded JSON, a strict zod schema, and the first problem
// as a 400 that names the field, so a caller learns what to fix without reading the source.
import type { z } from 'zod';
import { HttpError } from './http.ts';

export interface JsonBodyHints {
  /** What to send, shown when the body is not JSON, e.g. `{"reason": "<why>"}`. */
  send: string;
  /** Why unknown fields are refused, e.g. "who asks is taken from the token, not the body". */
  unknownFields: string;
}

/** The body parsed by `schema`; an empty body is `{}`. Throws HttpError 400 "missing/invalid field X: …". */
export function parseJsonBody<S extends z.ZodType>(raw: Buffer, schema: S, hints: JsonBodyHints): z.output<S> {
  let json: unknown = {};
  if (raw.length > 0) {
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, `request body is not valid JSON; send ${hints.send}`);
    }
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.length ? issue.path.join('.') : '(body)';
  const what =
    issue?.code === 'unrecognized_keys'
      ? `unknown field(s) ${issue.keys.join(', ')}; ${hints.unknownFields}`
      : issue?.message;
  const missing =
    issue?.path.length === 1 &&
    json !== null &&
    typeof json === 'object' &&
    (json as Record<string, unknown>)[String(issue.path[0])] === undefined;
  throw new HttpError(400, `${missing ? 'missing' : 'invalid'} field ${field}: ${what}`, { field });
}
