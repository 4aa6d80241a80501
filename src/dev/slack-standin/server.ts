// A local Slack stand-in over real HTTP, for tests and the offline sandbox. It plays both sides of Slack:
// - toward the gateway it sends slash commands and Block Kit button clicks (form-encoded, `payload=` JSON
//   for interactions), signed exactly as Slack signs them;
// - toward foureyes it serves the Web API method chat.postMessage (Bearer bot token) and the response_url
//   hooks, and keeps what it received so a test can read it.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
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

export async function startSlackStandin(options: SlackStandinOptions): Promise<SlackStandin> {
  const botToken = options.botToken ?? `xoxb-standin-${randomBytes(12).toString('hex')}`;
  const teamId = options.teamId ?? 'T0STANDIN';
  const messages: PostedMessage[] = [];
  const responses: ResponseUrlPost[] = [];
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  let tsCounter = 0;

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://slack');
      const body = await readAll(req);
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.method === 'POST' && url.pathname === '/api/chat.postMessage') {
        // Like Slack: HTTP 200 with ok:false for an auth problem.
        if (req.headers.authorization !== `Bearer ${botToken}`) return json(200, { ok: false, error: 'invalid_auth' });
        let raw: Record<string, unknown>;
        try {
          raw = (req.headers['content-type'] ?? '').includes('json')
            ? (JSON.parse(body) as Record<string, unknown>)
            : Object.fromEntries(new URLSearchParams(body));
        } catch {
          return json(200, { ok: false, error: 'invalid_json' });
        }
        if (typeof raw.channel !== 'string' || !raw.channel)
          return json(200, { ok: false, error: 'channel_not_found' });
        if (typeof raw.text !== 'string' && !Array.isArray(raw.blocks))
          return json(200, { ok: false, error: 'no_text' });
        const ts = `${Math.floor(Date.now() / 1000)}.${String(++tsCounter).padStart(6, '0')}`;
        const message: PostedMessage = {
          channel: raw.channel,
          ts,
          raw,
          ...(typeof raw.text === 'string' ? { text: raw.text } : {}),
          ...(Array.isArray(raw.blocks) ? { blocks: raw.blocks as Array<Record<string, unknown>> } : {}),
          ...(typeof raw.thread_ts === 'string' ? { thread_ts: raw.thread_ts } : {}),
        };
        messages.push(message);
        notify();
        return json(200, { ok: true, channel: raw.channel, ts, message: { type: 'message', text: raw.text, ts } });
      }
      const hook = /^\/hooks\/response\/([\w-]+)$/.exec(url.pathname);
      if (req.method === 'POST' && hook) {
        try {
          responses.push({ id: hook[1] as string, body: JSON.parse(body) as Record<string, unknown> });
        } catch {
          res.writeHead(400).end('invalid_payload');
          return;
        }
        notify();
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      }
      res.writeHead(404).end('not found');
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const send = async (
    path: string,
    body: string,
    responseUrlId: string,
    opts: SendOptions = {},
  ): Promise<SlackReply> => {
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
  };

  const waitFor = <T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`Slack stand-in: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  return {
    url: base,
    apiUrl: `${base}/api`,
    botToken,
    teamId,
    messages,
    responses,
    async command(user, text, opts = {}) {
      const id = randomUUID();
      const form = new URLSearchParams({
        token: 'deprecated-verification-token',
        team_id: user.teamId ?? teamId,
        team_domain: 'standin',
        channel_id: opts.channel ?? 'C0FOUREYES',
        channel_name: 'deployments',
        user_id: user.id,
        user_name: user.name,
        command: '/foureyes',
        text,
        api_app_id: 'A0FOUREYES',
        is_enterprise_install: 'false',
        response_url: `${base}/hooks/response/${id}`,
        trigger_id: `${Date.now()}.${randomBytes(4).toString('hex')}`,
      });
      return send('/slack/commands', form.toString(), id, opts);
    },
    async click(user, message, actionId, opts = {}) {
      const button = findButton(message.blocks, actionId);
      if (!button) throw new Error(`Slack stand-in: no button ${actionId} on that message`);
      const id = randomUUID();
      const payload = {
        type: 'block_actions',
        user: { id: user.id, username: user.name, name: user.name, team_id: user.teamId ?? teamId },
        api_app_id: 'A0FOUREYES',
        token: 'deprecated-verification-token',
        container: {
          type: 'message',
          message_ts: message.ts ?? '0',
          channel_id: message.channel ?? 'C0FOUREYES',
          is_ephemeral: !message.ts,
        },
        trigger_id: `${Date.now()}.${randomBytes(4).toString('hex')}`,
        team: { id: user.teamId ?? teamId, domain: 'standin' },
        channel: { id: message.channel ?? 'C0FOUREYES', name: 'deployments' },
        message: message.ts ? { type: 'message', ts: message.ts, blocks: message.blocks } : undefined,
        response_url: `${base}/hooks/response/${id}`,
        actions: [
          {
            type: 'button',
            action_id: actionId,
            block_id: 'b',
            value: button.value,
            action_ts: String(Date.now() / 1000),
          },
        ],
      };
      return send(
        '/slack/interactions',
        new URLSearchParams({ payload: JSON.stringify(payload) }).toString(),
        id,
        opts,
      );
    },
    waitForResponse(id, timeoutMs = 10_000) {
      return waitFor(() => responses.find((r) => r.id === id), `response_url post for ${id}`, timeoutMs);
    },
    waitForMessage(predicate, timeoutMs = 10_000) {
      return waitFor(() => messages.find(predicate), 'chat.postMessage', timeoutMs);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
