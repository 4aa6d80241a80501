// A local Microsoft Teams / Bot Framework stand-in over real HTTP, for tests and the offline sandbox. It
// plays the Bot Framework's side toward the gateway:
// - it serves an OpenID metadata document and the JWKS it names, from an RSA key it generates at start
//   (point the gateway's TEAMS_OPENID_METADATA_URL at `openIdMetadataUrl`);
// - it sends activities to the gateway's messaging endpoint (POST /teams/messages) with a Bearer JWT
//   signed the way the Bot Framework signs them (RS256, iss https://api.botframework.com, aud = the bot's
//   app id, serviceurl = the activity's serviceUrl), most importantly Adaptive Card Action.Execute invokes
//   and message-extension searches.
// Options produce the tokens a forger or a broken client would send (another key, expired, wrong audience).
// It also plays the bot's outgoing side, for the orchestrator's proactive cards:
// - Entra ID's client-credentials token endpoint (`POST /<tenant>/oauth2/v2.0/token`, point TEAMS_LOGIN_URL
//   at `loginUrl`): the bot's app password, or a certificate client assertion (RFC 7523) verified against
//   the registered certificate; it issues short-lived bearer tokens for https://api.botframework.com;
// - the Bot Connector API at `serviceUrl`: `POST v3/conversations/{id}/activities` and
//   `PUT v3/conversations/{id}/activities/{activityId}`, only with a token it issued, only in conversations
//   the app was installed in (`install`, which also sends the gateway the conversationUpdate Teams sends).
import { createHash, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importX509,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';

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

/** A message the bot posted into a conversation, with every version it was updated to. */
export interface PostedMessage {
  id: string;
  conversationId: string;
  /** The Adaptive Card of the latest version. */
  card: { body?: Array<Record<string, unknown>>; actions?: Array<Record<string, unknown>> } & Record<string, unknown>;
  versions: number;
}

export interface TeamsStandin {
  url: string;
  /** Entra ID's login base for the bot (TEAMS_LOGIN_URL); the token endpoint is `${loginUrl}/${tenantId}/oauth2/v2.0/token`. */
  loginUrl: string;
  /** Tokens issued / connector calls refused for a missing or unknown token. */
  tokenRequests: number;
  refusedConnectorCalls: number;
  /** Answer every Bot Connector call with this HTTP status (an outage), or serve normally (undefined). */
  connectorOutage: number | undefined;
  /** Install the app in a conversation: the conversationUpdate goes to the gateway, signed as Teams signs it. */
  install(
    conversation?: { id?: string; conversationType?: string },
    options?: InvokeOptions,
  ): Promise<{ conversationId: string; reply: TeamsReply }>;
  /** The messages the bot posted to a conversation, oldest first. */
  messages(conversationId: string): PostedMessage[];
  /** Makes every issued token expire now (the bot must fetch a new one). */
  expireTokens(): void;
  /** Every Bot Connector token issued so far (for tests that scan for leaked secrets). */
  issuedTokens(): string[];
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
  signedRequest(
    user: TeamsUser,
    activity: Record<string, unknown>,
    options?: InvokeOptions,
  ): Promise<{ headers: Record<string, string>; rawBody: Buffer }>;
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
  /** The bot's app password (client secret) Entra ID accepts. */
  appPassword?: string;
  /** PEM certificate whose private key may sign the bot's client assertions. */
  botCertificatePem?: string;
  /** Lifetime of issued Bot Connector tokens in seconds; default 3600. */
  tokenLifetimeSeconds?: number;
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
  return {
    kid,
    privateKey,
    jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256', endorsements } as JWK,
  };
}

/** What the stand-in's parts share: the identities, the keys, and what was issued, installed and posted. */
interface Teams {
  options: TeamsStandinOptions;
  appId: string;
  tenantId: string;
  /** The stand-in's own URL, known once it listens. */
  base: string;
  serviceUrl: string;
  published: SigningKeyPair;
  forger: SigningKeyPair;
  jwksFetches: number;
  /** Bot Connector tokens issued by the Entra ID endpoint, with when each expires (ms). */
  issued: Map<string, number>;
  installedIn: Set<string>;
  posted: Map<string, PostedMessage>;
  tokenRequests: number;
  refusedConnectorCalls: number;
  connectorOutage: number | undefined;
  certificate: X509Certificate | undefined;
  certificateThumbprint: string | undefined;
}

export async function startTeamsStandin(options: TeamsStandinOptions): Promise<TeamsStandin> {
  const certificate = options.botCertificatePem ? new X509Certificate(options.botCertificatePem) : undefined;
  const teams: Teams = {
    options,
    appId: options.appId ?? randomUUID(),
    tenantId: options.tenantId ?? randomUUID(),
    base: '',
    serviceUrl: '',
    published: await newKey(),
    forger: await newKey(),
    jwksFetches: 0,
    issued: new Map(),
    installedIn: new Set(),
    posted: new Map(),
    tokenRequests: 0,
    refusedConnectorCalls: 0,
    connectorOutage: undefined,
    certificate,
    certificateThumbprint: certificate ? createHash('sha256').update(certificate.raw).digest('base64url') : undefined,
  };
  const server: Server = createServer((req, res) => route(teams, req, res));
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  teams.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  teams.serviceUrl = `${teams.base}/teams/`;
  return handle(teams, server);
}

// --- the HTTP side: OpenID metadata, JWKS, Entra ID's token endpoint, the Bot Connector API ------------
function route(teams: Teams, req: IncomingMessage, res: ServerResponse): void {
  const base = teams.base;
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
    teams.jwksFetches += 1;
    return json(200, { keys: [teams.published.jwk] });
  }
  if (req.method === 'POST' && /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(path))
    return void answerToken(teams, req, path).then(
      ([status, body]) => json(status, body),
      () => json(500, { error: 'server_error' }),
    );
  const connector = /^\/teams\/v3\/conversations\/([^/]+)\/activities(?:\/([^/]+))?$/.exec(path);
  if (connector && (req.method === 'POST' || req.method === 'PUT')) {
    return void answerConnector(
      teams,
      req,
      decodeURIComponent(connector[1] as string),
      connector[2] === undefined ? undefined : decodeURIComponent(connector[2]),
    ).then(
      ([status, body]) => json(status, body),
      () => json(500, { error: { code: 'ServiceError', message: 'stand-in failure' } }),
    );
  }
  return json(404, { error: { code: 'NotFound', message: `the Teams stand-in does not serve ${path}` } });
}

// --- Entra ID: client credentials for the bot -------------------------------------------------------
async function answerToken(teams: Teams, req: IncomingMessage, path: string): Promise<[number, unknown]> {
  const { appId, tenantId, options } = teams;
  const form = new URLSearchParams((await readBody(req)).toString('utf8'));
  const refuse = (error: string, description: string): [number, unknown] => [
    error === 'invalid_client' ? 401 : 400,
    { error, error_description: description },
  ];
  if (path.split('/')[1] !== tenantId) return refuse('invalid_request', 'AADSTS90002: tenant not found');
  if (form.get('grant_type') !== 'client_credentials')
    return refuse('unsupported_grant_type', 'only client_credentials');
  if (form.get('client_id') !== appId)
    return refuse('unauthorized_client', 'AADSTS700016: application not found in the directory');
  if (form.get('scope') !== 'https://api.botframework.com/.default')
    return refuse('invalid_scope', 'AADSTS70011: the scope is not valid');
  const refused = await clientRefusal(teams, form, `${teams.base}${path}`);
  if (refused) return refuse('invalid_client', refused);
  teams.tokenRequests += 1;
  const lifetime = options.tokenLifetimeSeconds ?? 3600;
  const token = randomBytes(24).toString('base64url');
  teams.issued.set(token, Date.now() + lifetime * 1000);
  return [200, { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: token }];
}

/** Why Entra ID refuses the bot's client authentication (app password or certificate assertion), if it does. */
async function clientRefusal(teams: Teams, form: URLSearchParams, tokenUrl: string): Promise<string | undefined> {
  const { appId, options, certificate } = teams;
  const secret = form.get('client_secret');
  const assertion = form.get('client_assertion');
  if (secret !== null) {
    if (!options.appPassword || secret !== options.appPassword) return 'AADSTS7000215: invalid client secret provided';
  } else if (
    assertion !== null &&
    form.get('client_assertion_type') === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
  ) {
    if (!certificate) return 'AADSTS700027: no certificate is registered for the app';
    try {
      if (decodeProtectedHeader(assertion)['x5t#S256'] !== teams.certificateThumbprint)
        return 'AADSTS700027: the assertion names a certificate that is not registered';
      const key = await importX509(options.botCertificatePem as string, String(decodeProtectedHeader(assertion).alg));
      await jwtVerify(assertion, key, {
        audience: tokenUrl,
        issuer: appId,
        subject: appId,
        requiredClaims: ['exp', 'jti'],
      });
    } catch {
      return 'AADSTS700027: the client assertion failed signature validation';
    }
  } else return 'AADSTS7000216: client_assertion or client_secret is required';
  return undefined;
}

// --- the Bot Connector API ------------------------------------------------------------------------
async function answerConnector(
  teams: Teams,
  req: IncomingMessage,
  conversationId: string,
  activityId: string | undefined,
): Promise<[number, unknown]> {
  const body = await readBody(req);
  const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const expiresAt = token ? teams.issued.get(token) : undefined;
  if (!expiresAt || expiresAt <= Date.now()) {
    teams.refusedConnectorCalls += 1;
    return [401, { message: 'Authorization has been denied for this request.' }];
  }
  if (teams.connectorOutage !== undefined)
    return [teams.connectorOutage, { error: { code: 'ServiceError', message: 'the stand-in plays an outage' } }];
  if (!teams.installedIn.has(conversationId))
    return [
      403,
      { error: { code: 'BotNotInConversationRoster', message: 'The bot is not part of the conversation roster.' } },
    ];
  let activity: { type?: string; attachments?: Array<{ contentType?: string; content?: PostedMessage['card'] }> };
  try {
    activity = JSON.parse(body.toString('utf8')) as typeof activity;
  } catch {
    return [400, { error: { code: 'BadArgument', message: 'the activity is not JSON' } }];
  }
  const card = activity.attachments?.find((a) => a.contentType === 'application/vnd.microsoft.card.adaptive')?.content;
  if (activity.type !== 'message' || !card)
    return [400, { error: { code: 'BadArgument', message: 'expected a message with an Adaptive Card' } }];
  if (activityId === undefined) {
    const id = `1:${randomUUID()}`;
    teams.posted.set(id, { id, conversationId, card, versions: 1 });
    return [201, { id }];
  }
  const message = teams.posted.get(activityId);
  if (!message || message.conversationId !== conversationId)
    return [404, { error: { code: 'ActivityNotFoundInConversation', message: 'unknown activity' } }];
  message.card = card;
  message.versions += 1;
  return [200, { id: activityId }];
}

// --- the Bot Framework's side toward the gateway: signed activities ----------------------------------
async function channelToken(teams: Teams, how: InvokeOptions, activityServiceUrl: string): Promise<string> {
  const { published, forger } = teams;
  const key = how.forgedKey ? forger : published;
  const kid = how.forgedKey === 'published-kid' ? published.kid : key.kid;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ serviceurl: how.tokenServiceUrl ?? activityServiceUrl })
    .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
    .setIssuer(how.issuer ?? STANDIN_ISSUER)
    .setAudience(how.audience ?? teams.appId)
    .setIssuedAt(now - 60)
    .setNotBefore(now + (how.notBefore ?? -60))
    .setExpirationTime(now + (how.expiresIn ?? 3600))
    .sign(key.privateKey);
}

async function signedRequest(
  teams: Teams,
  user: TeamsUser,
  fields: Record<string, unknown>,
  how: InvokeOptions = {},
): Promise<{ headers: Record<string, string>; rawBody: Buffer }> {
  const { appId, serviceUrl } = teams;
  const tenant = how.tenantId ?? teams.tenantId;
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
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'user-agent': 'Microsoft-SkypeBotApi (Microsoft-BotFramework 3.0)',
  };
  if (!how.noToken) headers.authorization = `Bearer ${await channelToken(teams, how, serviceUrl)}`;
  return { headers, rawBody: Buffer.from(JSON.stringify(activity)) };
}

async function send(
  teams: Teams,
  user: TeamsUser,
  fields: Record<string, unknown>,
  how: InvokeOptions = {},
): Promise<TeamsReply> {
  const { headers, rawBody } = await signedRequest(teams, user, fields, how);
  const started = performance.now();
  const response = await fetch(`${teams.options.gatewayUrl}/teams/messages`, {
    method: 'POST',
    headers,
    body: rawBody,
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  const elapsedMs = Math.round(performance.now() - started);
  let body: Record<string, unknown> | undefined;
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    body = undefined;
  }
  const card =
    body?.type === 'application/vnd.microsoft.card.adaptive' ? (body.value as TeamsReply['card']) : undefined;
  return { status: response.status, body, ...(card ? { card } : {}), elapsedMs };
}

/** The conversationUpdate Teams sends when the app is added to a conversation. */
function installActivity(teams: Teams, conversationId: string, conversationType: string, tenantId: string) {
  const bot = { id: `28:${teams.appId}`, name: 'foureyes' };
  return {
    type: 'conversationUpdate',
    recipient: bot,
    membersAdded: [bot],
    conversation: { id: conversationId, conversationType, tenantId },
    channelData: {
      eventType: 'teamMemberAdded',
      team: { id: conversationId, name: 'Shop team' },
      tenant: { id: tenantId },
    },
  };
}

/** The handle tests hold: what the stand-in saw, and the acts of Teams users and admins. */
function handle(teams: Teams, server: Server): TeamsStandin {
  const { base } = teams;
  return {
    url: base,
    loginUrl: base,
    get tokenRequests() {
      return teams.tokenRequests;
    },
    get refusedConnectorCalls() {
      return teams.refusedConnectorCalls;
    },
    get connectorOutage() {
      return teams.connectorOutage;
    },
    set connectorOutage(status: number | undefined) {
      teams.connectorOutage = status;
    },
    async install(conversation = {}, invokeOptions) {
      const conversationId = conversation.id ?? `19:${randomUUID().replace(/-/g, '')}@thread.tacv2`;
      teams.installedIn.add(conversationId);
      const activity = installActivity(
        teams,
        conversationId,
        conversation.conversationType ?? 'channel',
        invokeOptions?.tenantId ?? teams.tenantId,
      );
      const reply = await send(teams, { aadObjectId: randomUUID(), name: 'Teams admin' }, activity, invokeOptions);
      return { conversationId, reply };
    },
    messages: (conversationId) => [...teams.posted.values()].filter((m) => m.conversationId === conversationId),
    expireTokens() {
      for (const token of teams.issued.keys()) teams.issued.set(token, 0);
    },
    issuedTokens: () => [...teams.issued.keys()],
    openIdMetadataUrl: `${base}/v1/.well-known/openidconfiguration`,
    appId: teams.appId,
    tenantId: teams.tenantId,
    serviceUrl: teams.serviceUrl,
    get jwksFetches() {
      return teams.jwksFetches;
    },
    execute: (user, data, invokeOptions) =>
      send(
        teams,
        user,
        {
          type: 'invoke',
          name: 'adaptiveCard/action',
          value: { action: { type: 'Action.Execute', verb: 'foureyes', data }, trigger: 'manual' },
        },
        invokeOptions,
      ),
    search: (user, text, invokeOptions) =>
      send(
        teams,
        user,
        {
          type: 'invoke',
          name: 'composeExtension/query',
          value: {
            commandId: 'change',
            parameters: [{ name: 'change', value: text }],
            queryOptions: { skip: 0, count: 25 },
          },
        },
        invokeOptions,
      ),
    send: (user, fields, how) => send(teams, user, fields, how),
    signedRequest: (user, fields, how) => signedRequest(teams, user, fields, how),
    async rotateKey(endorsements) {
      teams.published = await newKey(endorsements);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
