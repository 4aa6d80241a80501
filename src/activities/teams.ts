// Orchestrator activity: the change's approval card in the configured Teams conversation
// (TEAMS_CONVERSATION_ID), posted once the change waits for approval and then updated in place as it moves
// on. Like syncGitHub, it decides from the change's status what the card shows; the workflow only says
// which message it posted before. The conversation's reference (its Bot Connector endpoint) is the one the
// gateway signed when the app was installed there. Not configured = nothing posted, no error. A Teams
// outage throws a retryable error (status shows it as retrying); the change never waits for it.
import { activityInfo, ApplicationFailure, Context } from '@temporalio/activity';
import { ConnectorClient, HttpError } from '@microsoft/agents-hosting';
import { Activity } from '@microsoft/agents-activity';
import type { FoureyesConfig } from '../config/schema.ts';
import {
  ADAPTIVE_CARD_CONTENT_TYPE,
  changeCard,
  type AdaptiveCard,
  type TeamsCardRecord,
} from '../shared/teams-card.ts';
import {
  currentConversation,
  type SignedTeamsConversation,
  type TeamsConversationReference,
} from '../shared/teams-conversation.ts';
import type { ChangeStatus } from '../shared/types.ts';
import { teamsConversationsQuery, teamsConversationsWorkflowId } from '../workflows/teams-conversations.ts';
import { BotConnectorTokens, teamsBotSettings, type TeamsBotSettings } from './teams-connector.ts';

export interface SyncTeamsCardInput {
  status: ChangeStatus;
  /** The message posted before for this change, if any. */
  card?: TeamsCardRecord;
  /** Post a card for the head if none is there (the change waits for approval). */
  post: boolean;
}

export interface SyncTeamsCardResult {
  /** False: Teams is not configured (TEAMS_CONVERSATION_ID unset); nothing was sent. */
  configured: boolean;
  /** The message that now shows the head, if any (a card voided by a push is final and not returned). */
  card?: TeamsCardRecord;
}

/** What a Bot Connector error means for the card: retry (outage, throttling, expired token) or give up. */
function connectorFailure(error: unknown, what: string, tokens: BotConnectorTokens): Error {
  const status = error instanceof HttpError ? error.status || error.response?.status : undefined;
  if (status === 401) tokens.forget();
  if (status === 403 || status === 404) {
    return ApplicationFailure.nonRetryable(
      `Teams: the Bot Connector refused to ${what} (HTTP ${status}): is the foureyes app still installed in TEAMS_CONVERSATION_ID?`,
      'TeamsConversationError',
    );
  }
  const reason = status ? `HTTP ${status}` : (error as Error).name;
  return new Error(`Teams: the Bot Connector did not ${what} (${reason}); retrying`);
}

async function conversationReference(
  settings: TeamsBotSettings,
  trustedKeys: string[],
): Promise<TeamsConversationReference> {
  let stored: SignedTeamsConversation[];
  try {
    stored = await Context.current()
      .client.workflow.getHandle(teamsConversationsWorkflowId(activityInfo().taskQueue))
      .query(teamsConversationsQuery);
  } catch {
    stored = [];
  }
  const reference = currentConversation(stored, settings.conversationId, trustedKeys);
  if (!reference || !reference.installed) {
    throw new Error(
      `Teams: the foureyes app is not installed in conversation ${settings.conversationId} (the gateway has no conversationUpdate from Teams for it); add the app to that team or chat; retrying`,
    );
  }
  return reference;
}

/**
 * Posts one new message with an Adaptive Card into the configured conversation (the one the gateway signed);
 * the activity id Teams gave it. Errors as for the approval card: retryable, or non-retryable when the app is gone.
 */
export async function postTeamsCard(
  settings: TeamsBotSettings,
  tokens: BotConnectorTokens,
  trustedKeys: string[],
  content: AdaptiveCard,
): Promise<string> {
  const reference = await conversationReference(settings, trustedKeys);
  const client = ConnectorClient.createClientWithToken(reference.serviceUrl, await tokens.token());
  const message = Activity.fromObject({
    type: 'message',
    channelId: 'msteams',
    conversation: { id: reference.conversationId },
    from: { id: reference.botId },
    attachments: [{ contentType: ADAPTIVE_CARD_CONTENT_TYPE, content }],
  });
  let posted;
  try {
    posted = await client.sendToConversation(reference.conversationId, message);
  } catch (error) {
    throw connectorFailure(error, 'post the message', tokens);
  }
  if (!posted?.id) throw new Error('Teams: the Bot Connector answered without an activity id; retrying');
  return String(posted.id);
}

export function createTeamsActivities(config: () => FoureyesConfig, env: NodeJS.ProcessEnv, trustedKeys: string[]) {
  // Read at start so that a half-configured orchestrator refuses to start (src/workers/zones.ts).
  const settings = teamsBotSettings(env);
  const tokens = settings ? new BotConnectorTokens(settings) : undefined;

  return {
    async syncTeamsCard(input: SyncTeamsCardInput): Promise<SyncTeamsCardResult> {
      if (!settings || !tokens) return { configured: false };
      const { status } = input;
      const repo = config().repositories.find(
        (r) => r.name.toLowerCase() === status.change.split('#')[0]?.toLowerCase(),
      );
      const confirm = Object.fromEntries(
        config()
          .environments.filter((e) => !repo?.environments || repo.environments.includes(e.name))
          .map((e) => [e.name, e.approval.confirm]),
      );
      const reference = await conversationReference(settings, trustedKeys);
      const client = ConnectorClient.createClientWithToken(reference.serviceUrl, await tokens.token());
      const message = (sha: string, id?: string) =>
        Activity.fromObject({
          type: 'message',
          ...(id ? { id } : {}),
          channelId: 'msteams',
          conversation: { id: reference.conversationId },
          from: { id: reference.botId },
          attachments: [
            { contentType: ADAPTIVE_CARD_CONTENT_TYPE, content: changeCard({ status, cardSha: sha, confirm }) },
          ],
        });

      let card = input.card?.conversationId === reference.conversationId ? input.card : undefined;
      if (card) {
        try {
          await client.updateActivity(card.conversationId, card.activityId, message(card.sha, card.activityId));
        } catch (error) {
          // The message was deleted in Teams: post a fresh one below if the change still waits.
          if (!(error instanceof HttpError && (error.status || error.response?.status) === 404))
            throw connectorFailure(error, 'update the approval card', tokens);
          card = undefined;
        }
        if (card && card.sha !== status.headSha) card = undefined;
      }
      if (!card && input.post && status.headSha) {
        let posted;
        try {
          posted = await client.sendToConversation(reference.conversationId, message(status.headSha));
        } catch (error) {
          throw connectorFailure(error, 'post the approval card', tokens);
        }
        if (!posted?.id) throw new Error('Teams: the Bot Connector answered without an activity id; retrying');
        card = {
          conversationId: reference.conversationId,
          activityId: String(posted.id),
          sha: status.headSha,
          postedAt: new Date().toISOString(),
        };
        Context.current().log.info('approval card posted to Teams', {
          change: status.change,
          attempt: activityInfo().attempt,
        });
      }
      return { configured: true, ...(card ? { card } : {}) };
    },
  };
}
