// When the foureyes app is installed in a Teams team or chat, Teams tells the bot with a `conversationUpdate`
// (the bot among `membersAdded`) or an `installationUpdate` (action `add`); removal is the reverse. The
// gateway signs the conversation reference and hands it to the conversations workflow, where the
// orchestrator finds it to post approval cards proactively (TEAMS_CONVERSATION_ID names which one).
import { signTeamsConversation, type TeamsConversationReference } from '../shared/teams-conversation.ts';
import { teamsConversationSignal, teamsConversationsWorkflowId } from '../workflows/teams-conversations.ts';
import type { GatewayContext } from './app.ts';
import type { VerifiedTeamsRequest } from './approvals/teams.ts';
import { loadSigningKey } from './approvals/signing.ts';

interface MembershipActivity {
  type?: string;
  action?: string;
  recipient?: { id?: string };
  membersAdded?: Array<{ id?: string }>;
  membersRemoved?: Array<{ id?: string }>;
}

/** installed / removed when the activity says the bot itself joined or left the conversation; else undefined. */
export function installation(activity: VerifiedTeamsRequest['activity']): boolean | undefined {
  const a = activity as VerifiedTeamsRequest['activity'] & MembershipActivity;
  const bot = a.recipient?.id;
  if (a.type === 'installationUpdate') return a.action === 'add' ? true : a.action === 'remove' ? false : undefined;
  if (a.type !== 'conversationUpdate' || typeof bot !== 'string') return undefined;
  if (a.membersAdded?.some((m) => m?.id === bot)) return true;
  if (a.membersRemoved?.some((m) => m?.id === bot)) return false;
  return undefined;
}

/** Signs the verified conversation and records it; logs where it was installed so an operator can set TEAMS_CONVERSATION_ID. */
export async function storeConversation(
  ctx: GatewayContext,
  verified: VerifiedTeamsRequest,
  installed: boolean,
): Promise<TeamsConversationReference> {
  const activity = verified.activity as VerifiedTeamsRequest['activity'] & MembershipActivity;
  const reference: TeamsConversationReference = {
    v: 1,
    conversationId: String(activity.conversation?.id ?? '').slice(0, 300),
    // verifyTeamsRequest checked that it equals the Microsoft-signed token's serviceurl claim.
    serviceUrl: String(activity.serviceUrl),
    tenantId: verified.tenantId,
    botId: String(activity.recipient?.id ?? '').slice(0, 200),
    ...(activity.conversation?.conversationType
      ? { conversationType: String(activity.conversation.conversationType).slice(0, 40) }
      : {}),
    installed,
    at: new Date().toISOString(),
  };
  const signed = signTeamsConversation(reference, loadSigningKey(ctx.env));
  const taskQueue = ctx.env.FOUREYES_TASK_QUEUE || 'foureyes';
  await ctx.client.workflow.signalWithStart('teamsConversationsWorkflow', {
    workflowId: teamsConversationsWorkflowId(taskQueue),
    taskQueue,
    args: [{}],
    signal: teamsConversationSignal,
    signalArgs: [signed],
  });
  console.log(
    `gateway: Teams app ${installed ? 'installed in' : 'removed from'} conversation ${JSON.stringify(reference.conversationId)} (${reference.conversationType ?? 'conversation'})${installed ? '; set TEAMS_CONVERSATION_ID to it for approval cards there' : ''}`,
  );
  return reference;
}
