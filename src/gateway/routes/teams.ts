// POST /teams/messages: the Microsoft Teams channel (the bot's messaging endpoint). Every activity must
// carry a valid Bot Framework token (401 otherwise, nothing read further). An Adaptive Card Action.Execute
// (invoke `adaptiveCard/action`) from a known person is an approval or rejection; the answer is the invoke
// response, a card that replaces the clicked one and says whether it counted and why. Teams waits up to
// 15 s for it; recordApproval gives up after 10 s.
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FoureyesConfig } from '../../config/schema.ts';
import { reasonText } from '../../policy/sod.ts';
import { formatChangeRef, workflowIdFor, type ChangeRef } from '../../shared/change-ref.ts';
import { cardResponse, confirmationCard, outcomeCard } from '../../shared/teams-card.ts';
import { statusQuery } from '../../workflows/definitions.ts';
import type { RouteHandler } from '../app.ts';
import { ChannelRefusal } from '../approvals/channel.ts';
import { ApprovalDeliveryError, recordApproval, type RecordedApproval } from '../approvals/record.ts';
import { isCardAction, readCardAction, teamsPerson, verifyTeamsRequest } from '../approvals/teams.ts';
import { readBody, sendJson } from '../http.ts';

const BODY_LIMIT = 256 * 1024;

function repoEnvironments(config: FoureyesConfig, ref: ChangeRef) {
  const repo = config.repositories.find((r) => r.name.toLowerCase() === `${ref.owner}/${ref.repo}`.toLowerCase());
  const names = repo?.environments ?? config.environments.map((e) => e.name);
  return config.environments.filter((e) => names.includes(e.name));
}

export function teamsOutcomeText(recorded: RecordedApproval): string {
  const { outcome, claim } = recorded;
  const what = `${claim.person}'s ${claim.decision === 'reject' ? 'rejection' : 'approval'} of ${claim.change} at ${claim.sha.slice(0, 12)}${claim.environment ? ` for ${claim.environment}` : ''}`;
  return outcome.counted
    ? `${what} counted${outcome.environments.length ? ` (${outcome.environments.join(', ')})` : ''}: ${reasonText(outcome.reason)} · stage ${outcome.stage}`
    : `${what} was refused: ${reasonText(outcome.reason)} · stage ${outcome.stage}`;
}

export const handleTeamsMessage: RouteHandler = async (req, res, _params, ctx) => {
  const rawBody = await readBody(req, BODY_LIMIT);
  const verified = await verifyTeamsRequest({ headers: req.headers, rawBody }, ctx.env);
  const reply = (card: Parameters<typeof cardResponse>[0]) => sendJson(res, 200, cardResponse(card));
  // Messages, installs and conversation updates are acknowledged and ignored: approvals come from cards.
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
  const affected = repoEnvironments(config, intent.ref).filter((e) => !intent.environment || e.name === intent.environment);
  if (intent.decision === 'approve' && !confirmed && affected.some((e) => e.approval.confirm)) {
    let title: string | undefined;
    try {
      title = (await ctx.client.withDeadline(Date.now() + 5000, () => ctx.client.workflow.getHandle(workflowIdFor(intent.ref)).query(statusQuery))).title;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return reply(outcomeCard(false, `no open change ${change}: foureyes has not received its pull request, or the change is closed`));
      title = undefined;
    }
    return reply(confirmationCard({ change, sha: intent.sha as string, ...(title ? { title } : {}), environments: affected.map((e) => e.name), ...(intent.environment ? { environment: intent.environment } : {}) }));
  }

  try {
    const recorded = await recordApproval(ctx, {
      ref: intent.ref,
      person: who.person,
      channel: 'teams',
      decision: intent.decision,
      evidence: who.evidence,
      ...(intent.environment ? { environment: intent.environment } : {}),
      ...(intent.sha ? { sha: intent.sha } : {}),
    });
    return reply(outcomeCard(recorded.outcome.counted, teamsOutcomeText(recorded)));
  } catch (error) {
    if (error instanceof ApprovalDeliveryError) return reply(outcomeCard(false, error.message, 'Nothing was recorded.'));
    console.error(`gateway: Teams approval failed: ${(error as Error).message}`);
    return reply(outcomeCard(false, 'foureyes could not record this (internal error; see the gateway log).', 'Nothing was approved.'));
  }
};
