// The bot's side of the Bot Connector API, for the orchestrator's proactive Teams cards.
//
// Calls to the Bot Connector (post an activity, update it) go through the Microsoft 365 Agents SDK's
// ConnectorClient (@microsoft/agents-hosting): Microsoft's maintained client for that API. Its token
// provider (MSAL) is not used: MSAL accepts only https authorities that Microsoft's instance discovery
// knows, so it cannot be pointed at a stand-in, and one client-credentials request is small. The token is
// requested from Entra ID (TEAMS_LOGIN_URL, default https://login.microsoftonline.com) with the bot's app
// password or, instead, a certificate (an RFC 7523 client assertion signed with its private key, the
// certificate named by its SHA-256 thumbprint), for the scope https://api.botframework.com/.default.
// Credentials are read from the orchestrator's environment only; neither they nor the token ever appear in
// an error, a log line or a result.
import { ApplicationFailure } from '@temporalio/activity';
import { createHash, createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { importPKCS8, SignJWT } from 'jose';

export const BOT_CONNECTOR_SCOPE = 'https://api.botframework.com/.default';
export const DEFAULT_LOGIN_URL = 'https://login.microsoftonline.com';

export interface TeamsBotSettings {
  appId: string;
  tenantId: string;
  conversationId: string;
  tokenUrl: string;
  credential:
    { kind: 'password'; password: string } | { kind: 'certificate'; certificatePem: string; privateKeyPem: string };
}

/** Teams is half-configured: the message names every missing variable and never a value. */
export class TeamsConfigError extends Error {
  override name = 'TeamsConfigError';
}

/**
 * The orchestrator's Teams settings: undefined when no conversation is configured (no cards, not an error);
 * a TeamsConfigError naming the variables when a conversation is configured but the bot's identity is not.
 */
export function teamsBotSettings(env: NodeJS.ProcessEnv): TeamsBotSettings | undefined {
  const conversationId = env.TEAMS_CONVERSATION_ID?.trim();
  if (!conversationId) return undefined;
  const missing = ['TEAMS_APP_ID', 'TEAMS_TENANT_ID'].filter((name) => !env[name]?.trim());
  const password = env.TEAMS_APP_PASSWORD;
  const certificateFile = env.TEAMS_APP_CERTIFICATE_FILE;
  const keyFile = env.TEAMS_APP_PRIVATE_KEY_FILE;
  if (!password && !(certificateFile && keyFile))
    missing.push(
      certificateFile || keyFile
        ? certificateFile
          ? 'TEAMS_APP_PRIVATE_KEY_FILE'
          : 'TEAMS_APP_CERTIFICATE_FILE'
        : 'TEAMS_APP_PASSWORD (or TEAMS_APP_CERTIFICATE_FILE and TEAMS_APP_PRIVATE_KEY_FILE)',
    );
  if (missing.length > 0) {
    throw new TeamsConfigError(
      `TEAMS_CONVERSATION_ID is set, so the orchestrator posts approval cards to Teams, but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set: give the orchestrator the Azure Bot's app id, its tenant and its client credential (docs/approvals.md), or unset TEAMS_CONVERSATION_ID`,
    );
  }
  const tenantId = (env.TEAMS_TENANT_ID as string).trim();
  const login = (env.TEAMS_LOGIN_URL?.trim() || DEFAULT_LOGIN_URL).replace(/\/+$/, '');
  let credential: TeamsBotSettings['credential'];
  if (password) credential = { kind: 'password', password };
  else {
    try {
      credential = {
        kind: 'certificate',
        certificatePem: readFileSync(certificateFile as string, 'utf8'),
        privateKeyPem: readFileSync(keyFile as string, 'utf8'),
      };
    } catch (error) {
      throw new TeamsConfigError(
        `cannot read the bot's certificate or key (TEAMS_APP_CERTIFICATE_FILE, TEAMS_APP_PRIVATE_KEY_FILE): ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`,
      );
    }
  }
  return {
    appId: (env.TEAMS_APP_ID as string).trim(),
    tenantId,
    conversationId,
    tokenUrl: `${login}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`,
    credential,
  };
}

/** The RFC 7523 client assertion Entra ID accepts for a certificate credential (PS256, x5t#S256). */
async function clientAssertion(
  settings: TeamsBotSettings,
  credential: { certificatePem: string; privateKeyPem: string },
): Promise<string> {
  const certificate = new X509Certificate(credential.certificatePem);
  const thumbprint = createHash('sha256').update(certificate.raw).digest('base64url');
  const pkcs8 = createPrivateKey(credential.privateKeyPem).export({ format: 'pem', type: 'pkcs8' }).toString();
  const key = await importPKCS8(pkcs8, 'PS256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'PS256', typ: 'JWT', 'x5t#S256': thumbprint })
    .setIssuer(settings.appId)
    .setSubject(settings.appId)
    .setAudience(settings.tokenUrl)
    .setJti(randomUUID())
    .setNotBefore(now)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(key);
}

const PERMANENT_TOKEN_ERRORS = new Set([
  'invalid_client',
  'unauthorized_client',
  'invalid_request',
  'invalid_scope',
  'invalid_grant',
]);

/** Client-credentials tokens for the Bot Connector, cached until a minute before they expire. */
export class BotConnectorTokens {
  private cached?: { token: string; expiresAt: number };

  constructor(private readonly settings: TeamsBotSettings) {}

  forget(): void {
    this.cached = undefined;
  }

  async token(): Promise<string> {
    if (this.cached && this.cached.expiresAt - 60_000 > Date.now()) return this.cached.token;
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.settings.appId,
      scope: BOT_CONNECTOR_SCOPE,
    });
    const credential = this.settings.credential;
    if (credential.kind === 'password') form.set('client_secret', credential.password);
    else {
      form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      form.set('client_assertion', await clientAssertion(this.settings, credential));
    }
    let response: Response;
    try {
      response = await fetch(this.settings.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form,
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      throw new Error(
        `Teams: the bot's token endpoint ${this.settings.tokenUrl} is unreachable (${(error as Error).name}); retrying`,
      );
    }
    const body = (await response.json().catch(() => ({}))) as {
      access_token?: unknown;
      expires_in?: unknown;
      error?: unknown;
    };
    if (!response.ok || typeof body.access_token !== 'string') {
      const code = typeof body.error === 'string' ? body.error.slice(0, 40) : `HTTP ${response.status}`;
      const message = `Teams: Entra ID refused the bot's token request (${code}) at ${this.settings.tokenUrl}`;
      if (PERMANENT_TOKEN_ERRORS.has(code)) {
        throw ApplicationFailure.nonRetryable(
          `${message}: check TEAMS_APP_ID, TEAMS_TENANT_ID and the bot's credential`,
          'TeamsConfigError',
        );
      }
      throw new Error(`${message}; retrying`);
    }
    const seconds = typeof body.expires_in === 'number' ? body.expires_in : Number(body.expires_in) || 300;
    this.cached = { token: body.access_token, expiresAt: Date.now() + seconds * 1000 };
    return body.access_token;
  }
}
