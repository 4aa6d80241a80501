// The gateway: the only door into foureyes from outside (GitHub webhooks, Slack, Teams, the approval API).
// Routes are small modules; each authenticates its channel before it touches Temporal.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Client } from '@temporalio/client';
import type { FoureyesConfig } from '../config/schema.ts';
import { HttpError, sendJson } from './http.ts';
import { handleHealth } from './routes/health.ts';
import { handleGetChange } from './routes/changes.ts';
import { handleGetAudit } from './routes/audit.ts';
import { handleGetEnvironments } from './routes/environments.ts';
import { handlePostApproval } from './routes/approvals.ts';
import { handlePostEmergency } from './routes/emergencies.ts';
import { handleGetRollback, handlePostRollback } from './routes/rollbacks.ts';
import { handleSlackCommand, handleSlackInteraction } from './routes/slack.ts';
import { handleTeamsMessage } from './routes/teams.ts';
import { handleGitHubWebhook } from './routes/github-webhook.ts';
import { GatewayMetrics, sendMetrics } from './metrics.ts';
import { ReadAccess } from './read-access.ts';

export interface GatewayContext {
  client: Client;
  config: () => FoureyesConfig;
  env: NodeJS.ProcessEnv;
  /** Request counts and latencies served at GET /metrics; createGateway makes one when absent. */
  metrics?: GatewayMetrics;
  /** Who may read changes, audits and environments (and GitHub's cached answers); createGateway makes one when absent. */
  readAccess?: ReadAccess;
}

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  params: Record<string, string>,
  ctx: GatewayContext,
) => Promise<void>;

interface Route {
  method: string;
  path: string;
  pattern: RegExp;
  keys: string[];
  handler: RouteHandler;
}

function route(method: string, path: string, handler: RouteHandler): Route {
  const keys: string[] = [];
  const pattern = new RegExp(
    `^${path.replace(/\{(\w+)\}/g, (_, key: string) => {
      keys.push(key);
      return '([^/]+)';
    })}$`,
  );
  return { method, path, pattern, keys, handler };
}

export const routes: Route[] = [
  route('GET', '/healthz', handleHealth),
  route('GET', '/metrics', async (_req, res, _params, ctx) => sendMetrics(res, ctx.metrics ?? new GatewayMetrics())),
  route('GET', '/api/changes/{owner}/{repo}/{number}', handleGetChange),
  route('GET', '/api/changes/{owner}/{repo}/{number}/audit', handleGetAudit),
  route('POST', '/api/changes/{owner}/{repo}/{number}/approvals', handlePostApproval),
  route('POST', '/api/changes/{owner}/{repo}/{number}/emergency', handlePostEmergency),
  route('GET', '/api/environments', handleGetEnvironments),
  route('GET', '/api/environments/{owner}/{repo}', handleGetEnvironments),
  route('GET', '/api/environments/{owner}/{repo}/{environment}', handleGetEnvironments),
  route('POST', '/api/rollbacks', handlePostRollback),
  route('GET', '/api/rollbacks/{id}', handleGetRollback),
  route('POST', '/webhooks/github', handleGitHubWebhook),
  route('POST', '/slack/commands', handleSlackCommand),
  route('POST', '/slack/interactions', handleSlackInteraction),
  route('POST', '/teams/messages', handleTeamsMessage),
];

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export function createGateway(ctx: GatewayContext): Server {
  const withMetrics = {
    ...ctx,
    metrics: ctx.metrics ?? new GatewayMetrics(),
    readAccess: ctx.readAccess ?? new ReadAccess(),
  };
  return createServer((req, res) => {
    // A request target the URL parser refuses (`//[`) must be a 400, not an exception that ends the process.
    const pathname = safePathname(req.url);
    if (pathname === undefined) {
      sendJson(res, 400, { error: 'malformed request target: not a valid URL path' });
      return;
    }
    const method = KNOWN_METHODS.has(req.method ?? '') ? (req.method as string) : 'OTHER';
    withMetrics.metrics.track(method, routes.find((r) => r.pattern.test(pathname))?.path ?? 'unmatched', res);
    void dispatch(req, res, withMetrics);
  });
}

function safePathname(target: string | undefined): string | undefined {
  try {
    return new URL(target ?? '/', 'http://gateway').pathname;
  } catch {
    return undefined;
  }
}

function decodeParam(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in the path: ${JSON.stringify(value.slice(0, 60))}`);
  }
}

async function dispatch(req: IncomingMessage, res: ServerResponse, ctx: GatewayContext): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://gateway');
  try {
    const candidates = routes.filter((r) => r.pattern.test(url.pathname));
    if (candidates.length === 0) throw new HttpError(404, `no such endpoint: ${url.pathname}`);
    const match = candidates.find((r) => r.method === req.method);
    if (!match)
      throw new HttpError(
        405,
        `method ${req.method} not allowed on ${url.pathname}; use ${candidates.map((r) => r.method).join(', ')}`,
      );
    const values = match.pattern.exec(url.pathname)?.slice(1) ?? [];
    const params: Record<string, string> = {};
    match.keys.forEach((key, i) => {
      params[key] = decodeParam(values[i] ?? '');
    });
    await match.handler(req, res, params, ctx);
  } catch (error) {
    if (res.headersSent) {
      res.end();
      return;
    }
    if (error instanceof HttpError) sendJson(res, error.status, { error: error.message, ...error.extra });
    else {
      // Never echo internal errors (they may name hosts or paths); log them instead.
      console.error(`gateway: ${req.method} ${url.pathname} failed: ${(error as Error).message}`);
      sendJson(res, 500, { error: 'internal error; see the gateway log' });
    }
  }
}
