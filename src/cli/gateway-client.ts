// How the CLI's commands reach the gateway: one place for its URL (--gateway, FOUREYES_GATEWAY_URL, the local
// default), the call with a timeout and a reason when the gateway is unreachable, and the answer to a refused token.
import { CliError } from './commands.ts';

export const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:3000';

/** The gateway to talk to, without a trailing slash. */
export function gatewayUrl(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return (option ?? env.FOUREYES_GATEWAY_URL ?? DEFAULT_GATEWAY_URL).replace(/\/+$/, '');
}

export function unreachable(gateway: string, error: unknown): CliError {
  const cause = (error as Error).cause as Error | undefined;
  return new CliError(
    `cannot reach the foureyes gateway at ${gateway} (${cause?.message ?? (error as Error).message}); is \`foureyes up\` running? Point at another gateway with --gateway URL or FOUREYES_GATEWAY_URL`,
  );
}

/** One request; the body as JSON (a non-JSON answer becomes {error: its first 200 characters}). */
export async function callGateway(
  gateway: string,
  path: string,
  init: RequestInit,
): Promise<{ status: number; body: Record<string, unknown> }> {
  let response: Response;
  try {
    response = await fetch(`${gateway}${path}`, { ...init, signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw unreachable(gateway, error);
  }
  const text = await response.text();
  try {
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  } catch {
    return { status: response.status, body: { error: text.slice(0, 200) } };
  }
}

/** A 401 to a request made with the person's own GitHub token: what to do about it. */
export function tokenRefused(reason: string): CliError {
  return new CliError(
    `the gateway did not accept your GitHub token: ${reason}. Check it with \`gh auth status\` or set GITHUB_TOKEN to a valid token of your own`,
  );
}
