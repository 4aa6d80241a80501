// The shape every approval channel fits (GitHub review webhook, Slack, the token API / CLI, and later
// Microsoft Teams). A channel only authenticates the person and says what they asked for; recordApproval
// (record.ts) turns that into one signed claim and one workflow update, so the workflow never learns
// channel details beyond the claim's `channel` and `evidence`.
import type { IncomingHttpHeaders } from 'node:http';
import type { ChangeRef } from '../../shared/change-ref.ts';
import type { ApprovalChannel, ApprovalDecision } from '../../shared/types.ts';
import type { GatewayContext } from '../app.ts';

/** A request as it reached the gateway: headers and the raw body bytes (signatures are over raw bytes). */
export interface ChannelRequest {
  headers: IncomingHttpHeaders;
  rawBody: Buffer;
  params: Record<string, string>;
}

/** Who the channel proved the caller to be. */
export interface AuthenticatedPerson {
  /** Canonical identity: the GitHub login from foureyes.yaml or from GitHub's API. */
  person: string;
  /** How: Slack user and team, token login and user id, Teams AAD object id and tenant... (no secrets). */
  evidence: Record<string, string>;
}

/** What the person asked for. */
export interface ApprovalIntent {
  ref: ChangeRef;
  decision: ApprovalDecision;
  environment?: string;
  /** The commit the person saw: an approval counts for that commit only. */
  sha: string;
  comment?: string;
}

/**
 * A channel adapter. `authenticate` must prove identity from the channel's own credential (a request
 * signature, a bearer token checked against its issuer, a JWT checked against the issuer's keys) and throw
 * HttpError(401) otherwise; it never trusts a name in the body. A refusal that the person should read in
 * the channel (e.g. an unknown Slack user) is thrown as ChannelRefusal.
 */
export interface ApprovalChannelAdapter {
  readonly channel: ApprovalChannel;
  authenticate(request: ChannelRequest, ctx: GatewayContext): Promise<AuthenticatedPerson>;
  intent(request: ChannelRequest, ctx: GatewayContext): ApprovalIntent;
}

/** The person is authenticated by the channel but may not act (unknown to foureyes.yaml, say). */
export class ChannelRefusal extends Error {
  override name = 'ChannelRefusal';
}
