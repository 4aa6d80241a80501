// A local Microsoft Teams / Bot Framework stand-in over real HTTP, for tests and the offline sandbox. It
// plays the Bot Framework's side toward the gateway:
// - it serves an OpenID metadata document and the JWKS it names, from an RSA key it generates at start
//   (point the gateway's TEAMS_OPENID_METADATA_URL at `openIdMetadataUrl`);
// - it sends activities to the gateway's messaging endpoint (POST /teams/messages) with a Bearer JWT
//   signed the way the Bot Framework signs them (RS256, iss https://api.botframework.com, aud = the bot's
//   app id, serviceurl = the activity's serviceUrl), most importantly Adaptive Card Action.Execute invokes
//   and message-extension searches.
// Options produce the tokens a forger or a broken client would send (another key, expired, wrong audience).
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export const STANDIN_ISSUER = 'https://api.botframework.com';

export interface TeamsUser {
  /** Entra ID (AAD) object id: what foureyes maps to a person. */
  aadObjectId: string;
  name?: string;
}

export interface InvokeOptions {
  /** Sign with a key the stand-in does not publish; `kid` 'published' reuses the published key's id. */
  forgedKey?: 'published-kid' | 'unknown-kid';
  /** Seconds from now; negative = already expired. Default 3600. */
  expiresIn?: number;
  /** Seconds from now for nbf; default -60. */
  notBefore?: number;
  audience?: string;
  issuer?: string;
  /** conversation.tenantId (and channelData.tenant.id); default the stand-in's tenant. */
  tenantId?: string;
  /** The serviceurl claim in the token; default the activity's serviceUrl. */
  tokenServiceUrl?: string;
  /** Send no Authorization header at all. */
  noToken?: boolean;
}

export interface TeamsReply {
  status: number;
  body: Record<string, unknown> | undefined;
  /** For an invoke answered with a card: the card (`body.value`). */
  card?: { body?: Array<Record<string, unknown>>; actions?: Array<Record<string, unknown>> } & Record<string, unknown>;
  elapsedMs: number;
}

export interface TeamsStandin {
  url: string;
  openIdMetadataUrl: string;
  appId: string;
  tenantId: string;
  /** The serviceUrl activities carry (Bot Connector endpoint of this stand-in). */
  serviceUrl: string;
  /** How many times the JWKS was fetched (the gateway caches it). */
  jwksFetches: number;
  /** `user` presses an Action.Execute button whose data is `data`. */
  execute(user: TeamsUser, data: Record<string, unknown>, options?: InvokeOptions): Promise<TeamsReply>;
  /** `user` types `text` into the foureyes message extension's search box (composeExtension/query). */
  search(user: TeamsUser, text: string, options?: InvokeOptions): Promise<TeamsReply>;
  /** Sends any activity (fields merged over a default message activity), signed per `options`. */
  send(user: TeamsUser, activity: Record<string, unknown>, options?: InvokeOptions): Promise<TeamsReply>;
  /** The headers and body `send` would post, for checking a verifier without a gateway. */
  signedRequest(user: TeamsUser, activity: Record<string, unknown>, options?: InvokeOptions): Promise<{ headers: Record<string, string>; rawBody: Buffer }>;
  /** Replaces the published signing key with a new one (new kid), as the Bot Framework rotates keys. */
  rotateKey(endorsements?: string[]): Promise<void>;
  close(): Promise<void>;
}

export interface TeamsStandinOptions {
  /** The gateway's base URL; activities go to `${gatewayUrl}/teams/messages`. */
  gatewayUrl: string;
  appId?: string;
  tenantId?: string;
  port?: number;
}

interface SigningKeyPair {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(endorsements = ['msteams']): Promise<SigningKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const kid = randomUUID();
  // `endorsements` as the Bot Framework publishes them: the channels a key may sign for.
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256', endorsements } as JWK };
}

export async function startTeamsStandin(options: TeamsStandinOptions): Promise<TeamsStandin> {
  let published = await newKey();
  const forger = await newKey();
  const appId = options.appId ?? randomUUID();
  const tenantId = options.tenantId ?? randomUUID();
  let jwksFetches = 0;

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://standin').pathname;
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method === 'GET' && path === '/v1/.well-known/openidconfiguration') {
      return json(200, {
        issuer: STANDIN_ISSUER,
        authorization_endpoint: `${base}/v1/authorize`,
        jwks_uri: `${base}/v1/.well-known/keys`,
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
      });
    }
    if (req.method === 'GET' && path === '/v1/.well-known/keys') {
      jwksFetches += 1;
      return json(200, { keys: [published.jwk] });
    }
    // The Bot Connector API (serviceUrl) is not served: foureyes answers invokes in the HTTP response.
    return json(404, { error: { code: 'NotFound', message: `the Teams stand-in does not serve ${path}` } });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const serviceUrl = `${base}/teams/`;

  async function token(how: InvokeOptions, activityServiceUrl: string): Promise<string> {
    const key = how.forgedKey ? forger : published;
    const kid = how.forgedKey === 'published-kid' ? published.kid : key.kid;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ serviceurl: how.tokenServiceUrl ?? activityServiceUrl })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(how.issuer ?? STANDIN_ISSUER)
      .setAudience(how.audience ?? appId)
      .setIssuedAt(now - 60)
      .setNotBefore(now + (how.notBefore ?? -60))
      .setExpirationTime(now + (how.expiresIn ?? 3600))
      .sign(key.privateKey);
  }

  async function signedRequest(user: TeamsUser, fields: Record<string, unknown>, how: InvokeOptions = {}): Promise<{ headers: Record<string, string>; rawBody: Buffer }> {
    const tenant = how.tenantId ?? tenantId;
    const activity = {
      type: 'message',
      id: randomUUID(),
      timestamp: new Date().toISOString(),
      channelId: 'msteams',
      serviceUrl,
      from: { id: `29:${user.aadObjectId}`, aadObjectId: user.aadObjectId, name: user.name ?? 'Teams user' },
      recipient: { id: `28:${appId}`, name: 'foureyes' },
      conversation: { id: `19:${randomUUID()}@thread.tacv2`, conversationType: 'channel', tenantId: tenant },
      channelData: { tenant: { id: tenant } },
      ...fields,
    };
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'Microsoft-SkypeBotApi (Microsoft-BotFramework 3.0)' };
    if (!how.noToken) headers.authorization = `Bearer ${await token(how, serviceUrl)}`;
    return { headers, rawBody: Buffer.from(JSON.stringify(activity)) };
  }

  async function send(user: TeamsUser, fields: Record<string, unknown>, how: InvokeOptions = {}): Promise<TeamsReply> {
    const { headers, rawBody } = await signedRequest(user, fields, how);
    const started = performance.now();
    const response = await fetch(`${options.gatewayUrl}/teams/messages`, { method: 'POST', headers, body: rawBody, signal: AbortSignal.timeout(20_000) });
    const text = await response.text();
    const elapsedMs = Math.round(performance.now() - started);
    let body: Record<string, unknown> | undefined;
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    } catch {
      body = undefined;
    }
    const card = body?.type === 'application/vnd.microsoft.card.adaptive' ? (body.value as TeamsReply['card']) : undefined;
    return { status: response.status, body, ...(card ? { card } : {}), elapsedMs };
  }

  return {
    url: base,
    openIdMetadataUrl: `${base}/v1/.well-known/openidconfiguration`,
    appId,
    tenantId,
    serviceUrl,
    get jwksFetches() {
      return jwksFetches;
    },
    execute: (user, data, invokeOptions) =>
      send(user, { type: 'invoke', name: 'adaptiveCard/action', value: { action: { type: 'Action.Execute', verb: 'foureyes', data }, trigger: 'manual' } }, invokeOptions),
    search: (user, text, invokeOptions) =>
      send(user, { type: 'invoke', name: 'composeExtension/query', value: { commandId: 'change', parameters: [{ name: 'change', value: text }], queryOptions: { skip: 0, count: 25 } } }, invokeOptions),
    send,
    signedRequest,
    async rotateKey(endorsements) {
      published = await newKey(endorsements);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
