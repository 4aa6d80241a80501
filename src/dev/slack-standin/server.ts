// A local Slack stand-in over real HTTP, for tests and the offline sandbox. It plays both sides of Slack:
// - toward the gateway it sends slash commands and Block Kit button clicks (form-encoded, `payload=` JSON
//   for interactions), signed exactly as Slack signs them;
// - toward foureyes it serves the Web API method chat.postMessage (Bearer bot token) and the response_url
//   hooks, and keeps what it received so a test can read it.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signedSlackHeaders } from './sign.ts';

export interface SlackUser {
  id: string;
  name: string;
  teamId?: string;
}

export interface PostedMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks?: Array<Record<string, unknown>>;
  thread_ts?: string;
  raw: Record<string, unknown>;
}

export interface ResponseUrlPost {
  /** The id in the response_url path: which command or click it answers. */
  id: string;
  body: Record<string, unknown>;
}

export interface SendOptions {
  /** Override the signing timestamp (seconds) to send stale or future requests. */
  timestamp?: number;
  /** Sign with another secret (a forger). */
  signingSecret?: string;
  /** Send a signature that is not Slack's at all. */
  signature?: string;
}

export interface SlackReply {
  status: number;
  body: Record<string, unknown> | undefined;
  text: string;
  elapsedMs: number;
  responseUrlId: string;
}

export interface SlackStandin {
  url: string;
  /** SLACK_API_URL for foureyes (chat.postMessage lives under it). */
  apiUrl: string;
  botToken: string;
  teamId: string;
  messages: PostedMessage[];
  responses: ResponseUrlPost[];
  /** `/foureyes <text>` typed by `user` in `channel`. */
  command(user: SlackUser, text: string, options?: SendOptions & { channel?: string }): Promise<SlackReply>;
  /** `user` presses the button `actionId` on a message (as posted by foureyes or returned in blocks). */
  click(
    user: SlackUser,
    message: { ts?: string; blocks?: unknown[]; channel?: string },
    actionId: string,
    options?: SendOptions,
  ): Promise<SlackReply>;
  /** Resolves with the first response_url post for `id` (waits up to timeoutMs). */
  waitForResponse(id: string, timeoutMs?: number): Promise<ResponseUrlPost>;
  waitForMessage(predicate: (m: PostedMessage) => boolean, timeoutMs?: number): Promise<PostedMessage>;
  close(): Promise<void>;
}

export interface SlackStandinOptions {
  signingSecret: string;
  /** Where Slack sends slash commands and interactions: the gateway's base URL. */
  gatewayUrl?: string;
  botToken?: string;
  teamId?: string;
  port?: number;
}

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function findButton(blocks: unknown[] | undefined, actionId: string): { value?: string } | undefined {
  for (const block of (blocks ?? []) as Array<{ elements?: Array<{ action_id?: string; value?: string }> }>) {
    const found = block.elements?.find((e) => e.action_id === actionId);
    if (found) return found;
  }
  return undefined;
}

/** What the stand-in's parts share: its identity and what foureyes posted to it. */
interface Slack {
  options: SlackStandinOptions;
  botToken: string;
  teamId: string;
  /** The stand-in's own URL, known once it listens. */
  base: string;
  messages: PostedMessage[];
  responses: ResponseUrlPost[];
  /** Checks of pending waitForResponse / waitForMessage calls, run on every post. */
  waiters: Set<() => void>;
  tsCounter: number;
}

export async function startSlackStandin(options: SlackStandinOptions): Promise<SlackStandin> {
  const slack: Slack = {
    options,
    botToken: options.botToken ?? `xoxb-standin-${randomBytes(12).toString('hex')}`,
    teamId: options.teamId ?? 'T0STANDIN',
    base: '',
    messages: [],
    responses: [],
    waiters: new Set(),
    tsCounter: 0,
  };
  const server: Server = createServer((req, res) => {
    serve(slack, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  slack.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return handle(slack, server);
}

const notify = (slack: Slack) => slack.waiters.forEach((w) => w());

// --- toward foureyes: the Web API's chat.postMessage and the response_url hooks --------------------------
async function serve(slack: Slack, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://slack');
  const body = await readAll(req);
  if (req.method === 'POST' && url.pathname === '/api/chat.postMessage') {
    const answer = postMessage(slack, req, body);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
    return;
  }
  const hook = /^\/hooks\/response\/([\w-]+)$/.exec(url.pathname);
  if (req.method === 'POST' && hook) {
    try {
      slack.responses.push({ id: hook[1] as string, body: JSON.parse(body) as Record<string, unknown> });
    } catch {
      res.writeHead(400).end('invalid_payload');
      return;
    }
    notify(slack);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  res.writeHead(404).end('not found');
}

/** chat.postMessage's answer; like Slack, an auth or argument problem is HTTP 200 with ok:false. */
function postMessage(slack: Slack, req: IncomingMessage, body: string): Record<string, unknown> {
  if (req.headers.authorization !== `Bearer ${slack.botToken}`) return { ok: false, error: 'invalid_auth' };
  let raw: Record<string, unknown>;
  try {
    raw = (req.headers['content-type'] ?? '').includes('json')
      ? (JSON.parse(body) as Record<string, unknown>)
      : Object.fromEntries(new URLSearchParams(body));
  } catch {
    return { ok: false, error: 'invalid_json' };
  }
  if (typeof raw.channel !== 'string' || !raw.channel) return { ok: false, error: 'channel_not_found' };
  if (typeof raw.text !== 'string' && !Array.isArray(raw.blocks)) return { ok: false, error: 'no_text' };
  const ts = `${Math.floor(Date.now() / 1000)}.${String(++slack.tsCounter).padStart(6, '0')}`;
  const message: PostedMessage = {
    channel: raw.channel,
    ts,
    raw,
    ...(typeof raw.text === 'string' ? { text: raw.text } : {}),
    ...(Array.isArray(raw.blocks) ? { blocks: raw.blocks as Array<Record<string, unknown>> } : {}),
    ...(typeof raw.thread_ts === 'string' ? { thread_ts: raw.thread_ts } : {}),
  };
  slack.messages.push(message);
  notify(slack);
  return { ok: true, channel: raw.channel, ts, message: { type: 'message', text: raw.text, ts } };
}

// --- toward the gateway: slash commands and button clicks, signed as Slack signs them -------------------
async function send(
  slack: Slack,
  path: string,
  body: string,
  responseUrlId: string,
  opts: SendOptions = {},
): Promise<SlackReply> {
  const { options } = slack;
  if (!options.gatewayUrl) throw new Error('the Slack stand-in was started without gatewayUrl');
  const headers = signedSlackHeaders(opts.signingSecret ?? options.signingSecret, body, opts.timestamp);
  if (opts.signature) headers['x-slack-signature'] = opts.signature;
  const started = performance.now();
  const response = await fetch(`${options.gatewayUrl}${path}`, { method: 'POST', headers, body });
  const text = await response.text();
  const elapsedMs = Math.round(performance.now() - started);
  let parsed: Record<string, unknown> | undefined;
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, body: parsed, text, elapsedMs, responseUrlId };
}

/** The form Slack posts for `/foureyes <text>`; its response_url answers to `id`. */
function commandForm(slack: Slack, user: SlackUser, text: string, id: string, channel?: string): URLSearchParams {
  return new URLSearchParams({
    token: 'deprecated-verification-token',
    team_id: user.teamId ?? slack.teamId,
    team_domain: 'standin',
    channel_id: channel ?? 'C0FOUREYES',
    channel_name: 'deployments',
    user_id: user.id,
    user_name: user.name,
    command: '/foureyes',
    text,
    api_app_id: 'A0FOUREYES',
    is_enterprise_install: 'false',
    response_url: `${slack.base}/hooks/response/${id}`,
    trigger_id: `${Date.now()}.${randomBytes(4).toString('hex')}`,
  });
}

/** The block_actions payload Slack posts when `user` presses a button; its response_url answers to `id`. */
function clickPayload(
  slack: Slack,
  user: SlackUser,
  message: { ts?: string; blocks?: unknown[]; channel?: string },
  actionId: string,
  button: { value?: string },
  id: string,
) {
  const teamId = user.teamId ?? slack.teamId;
  return {
    type: 'block_actions',
    user: { id: user.id, username: user.name, name: user.name, team_id: teamId },
    api_app_id: 'A0FOUREYES',
    token: 'deprecated-verification-token',
    container: {
      type: 'message',
      message_ts: message.ts ?? '0',
      channel_id: message.channel ?? 'C0FOUREYES',
      is_ephemeral: !message.ts,
    },
    trigger_id: `${Date.now()}.${randomBytes(4).toString('hex')}`,
    team: { id: teamId, domain: 'standin' },
    channel: { id: message.channel ?? 'C0FOUREYES', name: 'deployments' },
    message: message.ts ? { type: 'message', ts: message.ts, blocks: message.blocks } : undefined,
    response_url: `${slack.base}/hooks/response/${id}`,
    actions: [
      { type: 'button', action_id: actionId, block_id: 'b', value: button.value, action_ts: String(Date.now() / 1000) },
    ],
  };
}

function waitFor<T>(slack: Slack, find: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = find();
      if (found !== undefined) {
        slack.waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      }
    };
    const timer = setTimeout(() => {
      slack.waiters.delete(check);
      reject(new Error(`Slack stand-in: no ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    slack.waiters.add(check);
    check();
  });
}

/** The handle tests hold: what foureyes posted, and the acts of Slack users. */
function handle(slack: Slack, server: Server): SlackStandin {
  const { base, botToken, teamId, messages, responses } = slack;
  return {
    url: base,
    apiUrl: `${base}/api`,
    botToken,
    teamId,
    messages,
    responses,
    async command(user, text, opts = {}) {
      const id = randomUUID();
      return send(slack, '/slack/commands', commandForm(slack, user, text, id, opts.channel).toString(), id, opts);
    },
    async click(user, message, actionId, opts = {}) {
      const button = findButton(message.blocks, actionId);
      if (!button) throw new Error(`Slack stand-in: no button ${actionId} on that message`);
      const id = randomUUID();
      const payload = clickPayload(slack, user, message, actionId, button, id);
      const form = new URLSearchParams({ payload: JSON.stringify(payload) });
      return send(slack, '/slack/interactions', form.toString(), id, opts);
    },
    waitForResponse(id, timeoutMs = 10_000) {
      return waitFor(slack, () => responses.find((r) => r.id === id), `response_url post for ${id}`, timeoutMs);
    },
    waitForMessage(predicate, timeoutMs = 10_000) {
      return waitFor(slack, () => messages.find(predicate), 'chat.postMessage', timeoutMs);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
