// POST /teams/messages: the Microsoft Teams channel (the bot's messaging endpoint). Every activity must
// carry a valid Bot Framework token (401 otherwise, nothing read further). An Adaptive Card Action.Execute
// (invoke `adaptiveCard/action`) from a known person is an approval or rejection; the answer is the invoke
// response, a card that replaces the clicked one and says whether it counted and why. Teams waits up to
// 15 s for it; recordApproval gives up after 10 s. A message-extension search (`composeExtension/query`)
// for a change answers with its "waiting for approval" card to insert into the conversation.
import { WorkflowNotFoundError } from '@temporalio/client';
import type { ServerResponse } from 'node:http';
import type { FoureyesConfig } from '../../config/schema.ts';
import { teamsOutcomeText } from '../../presentation/texts.ts';
import {
  ChangeRefError,
  formatChangeRef,
  parseChangeRef,
  workflowIdFor,
  type ChangeRef,
} from '../../shared/change-ref.ts';
import {
  ADAPTIVE_CARD_CONTENT_TYPE,
  approvalRequestCard,
  cardResponse,
  confirmationCard,
  outcomeCard,
  plainCardText,
} from '../../shared/teams-card.ts';
import { statusQuery } from '../../workflows/definitions.ts';
import type { GatewayContext, RouteHandler } from '../app.ts';
import { ChannelRefusal } from '../approvals/channel.ts';
import { ApprovalDeliveryError, recordApproval } from '../approvals/record.ts';
import {
  isCardAction,
  isSearch,
  readCardAction,
  searchText,
  teamsPerson,
  verifyTeamsRequest,
  type VerifiedTeamsRequest,
} from '../approvals/teams.ts';
import { readBody, sendJson } from '../http.ts';
import { installation, storeConversation } from '../teams-conversations.ts';

const BODY_LIMIT = 256 * 1024;

function repoEnvironments(config: FoureyesConfig, ref: ChangeRef) {
  const repo = config.repositories.find((r) => r.name.toLowerCase() === `${ref.owner}/${ref.repo}`.toLowerCase());
  const names = repo?.environments ?? config.environments.map((e) => e.name);
  return config.environments.filter((e) => names.includes(e.name));
}

export const handleTeamsMessage: RouteHandler = async (req, res, _params, ctx) => {
  const rawBody = await readBody(req, BODY_LIMIT);
  const verified = await verifyTeamsRequest({ headers: req.headers, rawBody }, ctx.env);
  const reply = (card: Parameters<typeof cardResponse>[0]) => sendJson(res, 200, cardResponse(card));
  if (isSearch(verified.activity)) return answerSearch(res, ctx, verified);
  // The app joined or left a conversation: keep its reference for the orchestrator's proactive cards.
  const installed = installation(verified.activity);
  if (installed !== undefined) {
    await storeConversation(ctx, verified, installed);
    return sendJson(res, 200, {});
  }
  // Messages and other conversation updates are acknowledged and ignored: approvals come from cards.
  if (!isCardAction(verified.activity)) return sendJson(res, 200, {});

  const config = ctx.config();
  let who;
  let action;
  try {
    who = teamsPerson(config, verified);
    action = readCardAction(verified.activity);
  } catch (error) {
    if (error instanceof ChannelRefusal) return reply(outcomeCard(false, error.message));
    throw error;
  }
  const { intent, confirmed } = action;
  const change = formatChangeRef(intent.ref);

  // Approvals that include an environment with `confirm: true` (production) are recorded only from the
  // confirmation card's button, which pins the same commit.
  const affected = repoEnvironments(config, intent.ref).filter(
    (e) => !intent.environment || e.name === intent.environment,
  );
  if (intent.decision === 'approve' && !confirmed && affected.some((e) => e.approval.confirm)) {
    let title: string | undefined;
    try {
      title = (
        await ctx.client.withDeadline(Date.now() + 5000, () =>
          ctx.client.workflow.getHandle(workflowIdFor(intent.ref)).query(statusQuery),
        )
      ).title;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError)
        return reply(
          outcomeCard(
            false,
            `no open change ${change}: foureyes has not received its pull request, or the change is closed`,
          ),
        );
      title = undefined;
    }
    return reply(
      confirmationCard({
        change,
        sha: intent.sha,
        ...(title ? { title } : {}),
        environments: affected.map((e) => e.name),
        ...(intent.environment ? { environment: intent.environment } : {}),
      }),
    );
  }

  try {
    const recorded = await recordApproval(ctx, {
      ref: intent.ref,
      person: who.person,
      channel: 'teams',
      decision: intent.decision,
      evidence: who.evidence,
      ...(intent.environment ? { environment: intent.environment } : {}),
      sha: intent.sha,
    });
    return reply(outcomeCard(recorded.outcome.counted, teamsOutcomeText(recorded)));
  } catch (error) {
    if (error instanceof ApprovalDeliveryError)
      return reply(outcomeCard(false, error.message, 'Nothing was recorded.'));
    console.error(`gateway: Teams approval failed: ${(error as Error).message}`);
    return reply(
      outcomeCard(
        false,
        'foureyes could not record this (internal error; see the gateway log).',
        'Nothing was approved.',
      ),
    );
  }
};

/** A message-extension answer that is a note, not a card (Teams shows it in the search pane). */
const searchNote = (res: ServerResponse, text: string) =>
  sendJson(res, 200, { composeExtension: { type: 'message', text: plainCardText(text, 500) } });

/**
 * composeExtension/query: the person searches for `owner/repo#12` in the foureyes message extension and gets
 * the change's "waiting for approval" card, with buttons for the current head, to insert into the
 * conversation. Cards inserted this way are sent via the bot, so their Action.Execute buttons come back to
 * /teams/messages. This needs no Bot Connector credentials and no change to the workflow.
 */
async function answerSearch(res: ServerResponse, ctx: GatewayContext, verified: VerifiedTeamsRequest): Promise<void> {
  const config = ctx.config();
  try {
    teamsPerson(config, verified);
  } catch (error) {
    if (error instanceof ChannelRefusal) return searchNote(res, `refused: ${error.message}`);
    throw error;
  }
  const text = searchText(verified.activity);
  if (!text) return searchNote(res, 'type a change such as acme/shop#12');
  let ref: ChangeRef;
  try {
    ref = parseChangeRef(text);
  } catch (error) {
    if (error instanceof ChangeRefError) return searchNote(res, `${error.message}; type a change such as acme/shop#12`);
    throw error;
  }
  const change = formatChangeRef(ref);
  let status;
  try {
    status = await ctx.client.withDeadline(Date.now() + 5000, () =>
      ctx.client.workflow.getHandle(workflowIdFor(ref)).query(statusQuery),
    );
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      return searchNote(
        res,
        `no open change ${change}: foureyes has not received its pull request, or the change is closed`,
      );
    throw error;
  }
  const confirm = new Map(repoEnvironments(config, ref).map((e) => [e.name, e.approval.confirm]));
  const waiting = status.stage === 'awaiting-approval' ? status.environments.filter((e) => e.state === 'pending') : [];
  const content = approvalRequestCard({
    change: status.change,
    title: status.title,
    sha: status.headSha,
    author: status.author,
    stage: status.stage,
    environments: waiting.map((e) => ({ name: e.name, required: e.required, confirm: confirm.get(e.name) ?? false })),
  });
  // The preview in the result list holds no untrusted text (the title could carry markup).
  const preview = {
    contentType: 'application/vnd.microsoft.card.thumbnail',
    content: { title: `${status.change} at ${status.headSha.slice(0, 12)}`, text: `stage ${status.stage}` },
  };
  sendJson(res, 200, {
    composeExtension: {
      type: 'result',
      attachmentLayout: 'list',
      attachments: [{ contentType: ADAPTIVE_CARD_CONTENT_TYPE, content, preview }],
    },
  });
}
