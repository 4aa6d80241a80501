// The Teams conversations foureyes' bot was installed in: one long-lived workflow the gateway signals with
// each conversation reference Teams hands the bot (`conversationUpdate`), signed by the gateway, and the
// orchestrator's Teams activity queries. Temporal is the store every zone already shares, so nothing is lost
// when the gateway restarts. The workflow keeps what it is sent; the orchestrator uses only references whose
// gateway signature verifies (src/shared/teams-conversation.ts).
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { SignedTeamsConversation } from '../shared/teams-conversation.ts';

/** One per orchestrator task queue (`teams-conversations:foureyes` by default), so deployments sharing a namespace stay apart. */
export function teamsConversationsWorkflowId(taskQueue: string): string {
  return `teams-conversations:${taskQueue}`;
}
export const teamsConversationSignal = defineSignal<[SignedTeamsConversation]>('teamsConversation');
export const teamsConversationsQuery = defineQuery<SignedTeamsConversation[]>('teamsConversations');

/** Kept per conversation, newest last: a forged signal cannot push the last genuine one out. */
const PER_CONVERSATION = 3;
const MAX_CONVERSATIONS = 500;

export interface TeamsConversationsInput {
  carried?: SignedTeamsConversation[];
}

export async function teamsConversationsWorkflow(input: TeamsConversationsInput = {}): Promise<void> {
  const byConversation = new Map<string, SignedTeamsConversation[]>();
  const add = (signed: SignedTeamsConversation) => {
    const id = signed?.reference?.conversationId;
    if (typeof id !== 'string' || id.length === 0 || id.length > 300) return;
    const kept = (byConversation.get(id) ?? []).filter((s) => s.signature !== signed.signature);
    byConversation.delete(id);
    byConversation.set(id, [...kept, signed].slice(-PER_CONVERSATION));
    if (byConversation.size > MAX_CONVERSATIONS) byConversation.delete(byConversation.keys().next().value as string);
  };
  for (const signed of input.carried ?? []) add(signed);
  setHandler(teamsConversationSignal, add);
  setHandler(teamsConversationsQuery, () => [...byConversation.values()].flat());
  await condition(() => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > 5000);
  await condition(allHandlersFinished);
  await continueAsNew<typeof teamsConversationsWorkflow>({ carried: [...byConversation.values()].flat() });
}
