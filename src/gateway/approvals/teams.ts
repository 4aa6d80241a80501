// The Microsoft Teams channel. Teams reaches a bot through the Bot Framework, which signs every request
// with a JWT (RS256) in `Authorization: Bearer`; a request counts as Teams' only if that token verifies
// against the keys the Bot Framework publishes (its OpenID metadata names the JWKS), was issued by
// https://api.botframework.com for this bot's app id, is within its lifetime (5 minutes of clock skew), and
// names the same serviceUrl as the activity. The conversation must belong to the configured tenant, and
// the Teams user (`from.aadObjectId`) maps to a person in foureyes.yaml (`people[].teams`); the display
// name Teams sends is never used as an identity.
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import type { FoureyesConfig } from '../../config/schema.ts';
import { ChangeRefError, parseChangeRef } from '../../shared/change-ref.ts';
import type { ApprovalDecision } from '../../shared/types.ts';
import type { GatewayContext } from '../app.ts';
import { HttpError } from '../http.ts';
import {
  ChannelRefusal,
  type ApprovalChannelAdapter,
  type ApprovalIntent,
  type AuthenticatedPerson,
  type ChannelRequest,
} from './channel.ts';

export const BOT_FRAMEWORK_OPENID_METADATA_URL = 'https://login.botframework.com/v1/.well-known/openidconfiguration';
export const BOT_FRAMEWORK_ISSUER = 'https://api.botframework.com';
export const TEAMS_CLOCK_SKEW_SECONDS = 5 * 60;
/** The invoke activity Teams sends for an Adaptive Card Action.Execute (Universal Actions). */
export const CARD_ACTION_INVOKE = 'adaptiveCard/action';
/** The Action.Execute verb on foureyes cards; the decision itself is in the action's data. */
export const TEAMS_VERB = 'foureyes';

/** The parts of a Bot Framework activity foureyes reads. */
export interface TeamsActivity {
  type?: string;
  name?: string;
  id?: string;
  channelId?: string;
  serviceUrl?: string;
  from?: { id?: string; aadObjectId?: string; name?: string };
  conversation?: { id?: string; tenantId?: string; conversationType?: string };
  channelData?: { tenant?: { id?: string } };
  value?: { action?: { type?: string; verb?: string; data?: unknown }; parameters?: unknown };
}

export interface VerifiedTeamsRequest {
  activity: TeamsActivity;
  /** The configured tenant the conversation belongs to (lower case). */
  tenantId: string;
  claims: JWTPayload;
}

export interface TeamsVerifyOptions {
  now?: Date;
  /**
   * Minimum time between two JWKS fetches caused by an unknown `kid` (jose's cooldown), so a flood of tokens
   * with made-up key ids cannot make the gateway hammer the key endpoint. Tests of key rotation pass 0.
   */
  keyRefreshCooldownMs?: number;
}

type KeySet = ReturnType<typeof createRemoteJWKSet>;
const METADATA_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const keySets = new Map<string, { at: number; keys: Promise<KeySet> }>();

/** The JWKS named by the OpenID metadata document; metadata cached a day, keys cached and refreshed by jose on an unknown kid. */
function keySetFor(metadataUrl: string, cooldownMs: number): Promise<KeySet> {
  const cacheKey = `${metadataUrl} ${cooldownMs}`;
  const cached = keySets.get(cacheKey);
  if (cached && Date.now() - cached.at < METADATA_MAX_AGE_MS) return cached.keys;
  const keys = (async () => {
    const response = await fetch(metadataUrl, { signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`OpenID metadata answered ${response.status}`);
    const metadata = (await response.json()) as { jwks_uri?: unknown };
    if (typeof metadata.jwks_uri !== 'string' || !/^https?:\/\//.test(metadata.jwks_uri))
      throw new Error('OpenID metadata has no jwks_uri');
    return createRemoteJWKSet(new URL(metadata.jwks_uri), {
      cooldownDuration: cooldownMs,
      cacheMaxAge: METADATA_MAX_AGE_MS,
      timeoutDuration: 10_000,
    });
  })();
  keySets.set(cacheKey, { at: Date.now(), keys });
  // A failed fetch is not cached: the next request tries again.
  keys.catch(() => {
    if (keySets.get(cacheKey)?.keys === keys) keySets.delete(cacheKey);
  });
  return keys;
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Why a token was refused, in words an operator can act on; never the token itself. */
function tokenProblem(error: unknown): HttpError {
  if (error instanceof errors.JWTExpired)
    return new HttpError(401, 'Bot Framework token has expired (exp is more than 5 minutes in the past)');
  if (error instanceof errors.JWTClaimValidationFailed) {
    const claim = error.claim;
    if (claim === 'aud')
      return new HttpError(401, 'Bot Framework token is for another bot: its audience is not TEAMS_APP_ID');
    if (claim === 'iss') return new HttpError(401, `Bot Framework token was not issued by ${BOT_FRAMEWORK_ISSUER}`);
    if (claim === 'nbf')
      return new HttpError(401, 'Bot Framework token is not valid yet (nbf is more than 5 minutes in the future)');
    return new HttpError(401, `Bot Framework token claim ${claim} is invalid`);
  }
  if (error instanceof errors.JWKSNoMatchingKey)
    return new HttpError(401, 'Bot Framework token is signed by a key the Bot Framework does not publish');
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return new HttpError(401, 'invalid Bot Framework token signature');
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid)
    return new HttpError(503, 'cannot fetch the Bot Framework signing keys; try again later');
  if (error instanceof errors.JOSEError) return new HttpError(401, 'invalid Bot Framework token');
  return new HttpError(503, 'cannot fetch the Bot Framework signing keys; try again later');
}

/**
 * Throws HttpError(401) unless the Bot Framework signed a token for this bot that matches the activity,
 * and the activity comes from the configured tenant; 503 when Teams is not configured. Returns the activity.
 */
export async function verifyTeamsRequest(
  request: Pick<ChannelRequest, 'headers' | 'rawBody'>,
  env: NodeJS.ProcessEnv,
  options: TeamsVerifyOptions = {},
): Promise<VerifiedTeamsRequest> {
  const appId = env.TEAMS_APP_ID;
  const configuredTenant = env.TEAMS_TENANT_ID?.toLowerCase();
  if (!appId || !configuredTenant)
    throw new HttpError(
      503,
      'Microsoft Teams is not configured on this gateway: set TEAMS_APP_ID (the bot registration) and TEAMS_TENANT_ID',
    );
  const authorization = one(request.headers.authorization) ?? '';
  const token = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
  if (!token) throw new HttpError(401, 'not a Bot Framework request: Authorization: Bearer <token> is required');

  let claims: JWTPayload;
  let kid: string | undefined;
  let keys: KeySet;
  try {
    keys = await keySetFor(
      env.TEAMS_OPENID_METADATA_URL || BOT_FRAMEWORK_OPENID_METADATA_URL,
      options.keyRefreshCooldownMs ?? 30_000,
    );
    ({
      payload: claims,
      protectedHeader: { kid },
    } = await jwtVerify(token, keys, {
      issuer: BOT_FRAMEWORK_ISSUER,
      audience: appId,
      algorithms: ['RS256'],
      clockTolerance: TEAMS_CLOCK_SKEW_SECONDS,
      requiredClaims: ['exp'],
      ...(options.now ? { currentDate: options.now } : {}),
    }));
  } catch (error) {
    throw tokenProblem(error);
  }

  // Only now is the body worth reading: it came with a valid token (but the token must also be for it).
  let activity: TeamsActivity;
  try {
    activity = JSON.parse(request.rawBody.toString('utf8')) as TeamsActivity;
    if (!activity || typeof activity !== 'object' || Array.isArray(activity)) throw new Error('not an object');
  } catch {
    throw new HttpError(400, 'request body is not a Bot Framework activity (JSON object)');
  }
  // The token is bound to the connector endpoint it was issued for; an activity naming another endpoint
  // may be a token lifted from one conversation and replayed with a forged body.
  if (typeof claims.serviceurl !== 'string' || claims.serviceurl !== activity.serviceUrl) {
    throw new HttpError(401, "the activity's serviceUrl does not match the token's serviceurl claim");
  }
  if (activity.channelId !== 'msteams')
    throw new HttpError(
      401,
      `activity is from channel ${JSON.stringify(String(activity.channelId ?? '')).slice(0, 40)}, not msteams`,
    );
  // The Bot Framework lists on each key the channels it may sign for; a key not endorsed for Teams is not
  // Teams speaking, even with a valid signature.
  const endorsements = (keys.jwks()?.keys.find((k) => k.kid === kid) as { endorsements?: unknown } | undefined)
    ?.endorsements;
  if (Array.isArray(endorsements) && !endorsements.includes('msteams'))
    throw new HttpError(401, 'the key that signed this token is not endorsed for the msteams channel');
  const tenants = [activity.conversation?.tenantId, activity.channelData?.tenant?.id].filter(
    (t): t is string => typeof t === 'string',
  );
  if (tenants.length === 0 || tenants.some((t) => t.toLowerCase() !== configuredTenant)) {
    throw new HttpError(401, 'the conversation does not belong to the tenant in TEAMS_TENANT_ID');
  }
  return { activity, tenantId: configuredTenant, claims };
}

/** Maps a verified Teams user to the person in foureyes.yaml, or refuses with a message for the user. */
export function teamsPerson(config: FoureyesConfig, verified: VerifiedTeamsRequest): AuthenticatedPerson {
  const raw = verified.activity.from?.aadObjectId;
  const aadObjectId = typeof raw === 'string' ? raw.toLowerCase() : '';
  if (!aadObjectId)
    throw new ChannelRefusal(
      'Teams did not send your Entra ID (AAD) object id, so foureyes cannot tell who you are; approve from a Teams chat or channel inside your organisation',
    );
  const person = config.people.find((p) => p.teams === aadObjectId);
  if (!person) {
    // The id is checked against a GUID shape before it is echoed back.
    const shown = /^[0-9a-f-]{36}$/.test(aadObjectId) ? aadObjectId : '(not a valid object id)';
    throw new ChannelRefusal(
      `your Teams user ${shown} is not listed in foureyes.yaml, so foureyes cannot tell who you are; ask a foureyes administrator to add "teams: ${shown}" to your entry under people`,
    );
  }
  return { person: person.github, evidence: { teamsUser: aadObjectId, teamsTenant: verified.tenantId } };
}

/** The data an Action.Execute button on a foureyes card carries. */
export interface CardActionData {
  change: string;
  sha: string;
  environment?: string;
  decision: ApprovalDecision;
  /** Set on the button of the confirmation card (environments with `approval.confirm`). */
  confirmed?: boolean;
}

/** The invoke a message extension search sends (`composeExtensions` command `change` in the Teams app manifest). */
export const SEARCH_INVOKE = 'composeExtension/query';

export function isSearch(activity: TeamsActivity): boolean {
  return activity.type === 'invoke' && activity.name === SEARCH_INVOKE;
}

/** The text typed into the message extension's search box (first parameter), trimmed; '' on the initial run. */
export function searchText(activity: TeamsActivity): string {
  const parameters = (activity.value as { parameters?: Array<{ name?: unknown; value?: unknown }> } | undefined)
    ?.parameters;
  const value = Array.isArray(parameters)
    ? (parameters.find((p) => p?.name === 'change')?.value ?? parameters[0]?.value)
    : undefined;
  return typeof value === 'string' ? value.trim().slice(0, 200) : '';
}

export function isCardAction(activity: TeamsActivity): boolean {
  return activity.type === 'invoke' && activity.name === CARD_ACTION_INVOKE;
}

/** Reads and checks the button's data; a ChannelRefusal is shown on the card, nothing is recorded. */
export function readCardAction(activity: TeamsActivity): { intent: ApprovalIntent; confirmed: boolean } {
  const action = activity.value?.action;
  if (action?.type !== 'Action.Execute')
    throw new ChannelRefusal('this is not a foureyes button (expected an Action.Execute); nothing was recorded');
  const data = (action.data ?? {}) as Record<string, unknown>;
  if (typeof data.change !== 'string' || typeof data.sha !== 'string' || !/^[0-9a-f]{40}$/.test(data.sha)) {
    throw new ChannelRefusal('this button does not name a change and commit; nothing was recorded');
  }
  if (data.decision !== 'approve' && data.decision !== 'reject')
    throw new ChannelRefusal('this button does not say approve or reject; nothing was recorded');
  if (
    data.environment !== undefined &&
    (typeof data.environment !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(data.environment))
  ) {
    throw new ChannelRefusal('this button names an invalid environment; nothing was recorded');
  }
  let ref;
  try {
    ref = parseChangeRef(data.change);
  } catch (error) {
    if (error instanceof ChangeRefError)
      throw new ChannelRefusal('this button names an invalid change; nothing was recorded');
    throw error;
  }
  return {
    intent: {
      ref,
      decision: data.decision,
      sha: data.sha,
      ...(typeof data.environment === 'string' ? { environment: data.environment } : {}),
    },
    confirmed: data.confirmed === true,
  };
}

function bodyOf(request: ChannelRequest): TeamsActivity {
  try {
    return JSON.parse(request.rawBody.toString('utf8')) as TeamsActivity;
  } catch {
    throw new HttpError(400, 'request body is not a Bot Framework activity (JSON object)');
  }
}

/** The Teams channel as an ApprovalChannelAdapter (routes/teams.ts uses its parts to answer with cards). */
export const teamsChannel: ApprovalChannelAdapter = {
  channel: 'teams',
  async authenticate(request: ChannelRequest, ctx: GatewayContext): Promise<AuthenticatedPerson> {
    return teamsPerson(ctx.config(), await verifyTeamsRequest(request, ctx.env));
  },
  intent(request: ChannelRequest): ApprovalIntent {
    return readCardAction(bodyOf(request)).intent;
  },
};
