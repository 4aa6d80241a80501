// POST /slack/commands and POST /slack/interactions: the Slack channel. Both verify Slack's request
// signature over the raw body first (401 otherwise), map the Slack user to a person in foureyes.yaml, and
// answer within Slack's three seconds: the slash command in its HTTP reply, a button click in the message's
// thread through response_url.
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FoureyesConfig } from '../../config/schema.ts';
import { ChangeRefError, parseChangeRef, workflowIdFor, type ChangeRef } from '../../shared/change-ref.ts';
import {
  APPROVE_ACTION,
  confirmDialog,
  decodeButtonValue,
  encodeButtonValue,
  escapeSlackText,
  plainText,
  REJECT_ACTION,
} from '../../shared/slack-format.ts';
import type { ApprovalDecision, ChangeStatus } from '../../shared/types.ts';
import { statusQuery } from '../../workflows/definitions.ts';
import { formatStatus, outcomeText } from '../../presentation/texts.ts';
import type { GatewayContext, RouteHandler } from '../app.ts';
import { ChannelRefusal } from '../approvals/channel.ts';
import { ApprovalDeliveryError, recordApproval } from '../approvals/record.ts';
import { parseSlashCommand, slackPerson, SLASH_USAGE, verifySlackSignature } from '../approvals/slack.ts';
import { HttpError, readBody, sendJson } from '../http.ts';

const BODY_LIMIT = 64 * 1024;
/** Slack wants an answer within 3 s; past this the slash command acknowledges and the outcome follows. */
const SLASH_ANSWER_MS = 2500;

interface SlackReply {
  response_type: 'ephemeral' | 'in_channel';
  text: string;
  blocks?: unknown[];
  replace_original?: boolean;
  thread_ts?: string;
}

const ephemeral = (text: string, blocks?: unknown[]): SlackReply => ({
  response_type: 'ephemeral',
  text,
  ...(blocks ? { blocks } : {}),
});

function repoEnvironments(config: FoureyesConfig, ref: ChangeRef) {
  const repo = config.repositories.find((r) => r.name.toLowerCase() === `${ref.owner}/${ref.repo}`.toLowerCase());
  const names = repo?.environments ?? config.environments.map((e) => e.name);
  return config.environments.filter((e) => names.includes(e.name));
}

async function postToResponseUrl(responseUrl: string, reply: SlackReply): Promise<void> {
  if (!/^https?:\/\//.test(responseUrl)) return;
  try {
    const response = await fetch(responseUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(reply),
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) console.error(`gateway: Slack response_url answered ${response.status}`);
  } catch (error) {
    console.error(`gateway: posting to Slack response_url failed: ${(error as Error).name}`);
  }
}

function deliveryText(error: unknown): string {
  if (error instanceof ApprovalDeliveryError || error instanceof ChannelRefusal)
    return `:x: ${escapeSlackText(error.message)}`;
  console.error(`gateway: Slack approval failed: ${(error as Error).message}`);
  return ':x: foureyes could not record this (internal error; see the gateway log). Nothing was approved.';
}

async function approveFromSlack(
  ctx: GatewayContext,
  input: {
    ref: ChangeRef;
    decision: ApprovalDecision;
    userId: string;
    teamId?: string;
    userName?: string;
    environment?: string;
    sha: string;
    comment?: string;
    via: string;
  },
): Promise<SlackReply> {
  try {
    const { person, evidence } = slackPerson(ctx.config(), input.userId, input.teamId, input.userName);
    const recorded = await recordApproval(ctx, {
      ref: input.ref,
      person,
      channel: 'slack',
      decision: input.decision,
      evidence: { ...evidence, slackVia: input.via },
      ...(input.environment ? { environment: input.environment } : {}),
      sha: input.sha,
      ...(input.comment ? { comment: input.comment } : {}),
    });
    return { response_type: recorded.outcome.counted ? 'in_channel' : 'ephemeral', text: outcomeText(recorded) };
  } catch (error) {
    return ephemeral(deliveryText(error));
  }
}

/** POST /slack/commands: `/foureyes approve|reject|status owner/repo#12 ...` */
export const handleSlackCommand: RouteHandler = async (req, res, _params, ctx) => {
  const rawBody = await readBody(req, BODY_LIMIT);
  verifySlackSignature({ headers: req.headers, rawBody }, ctx.env.SLACK_SIGNING_SECRET);
  const form = new URLSearchParams(rawBody.toString('utf8'));
  const userId = form.get('user_id') ?? '';
  const teamId = form.get('team_id') ?? undefined;
  const config = ctx.config();
  const command = parseSlashCommand(
    form.get('text') ?? '',
    config.environments.map((e) => e.name),
  );
  if (command.kind === 'help')
    return sendJson(
      res,
      200,
      ephemeral(`${command.problem ? `${escapeSlackText(command.problem)}. ` : ''}${SLASH_USAGE}`),
    );
  let ref: ChangeRef;
  try {
    ref = parseChangeRef(command.change);
  } catch (error) {
    if (error instanceof ChangeRefError)
      return sendJson(res, 200, ephemeral(`${escapeSlackText(error.message)}. ${SLASH_USAGE}`));
    throw error;
  }
  try {
    slackPerson(config, userId, teamId);
  } catch (error) {
    if (error instanceof ChannelRefusal)
      return sendJson(res, 200, ephemeral(`:x: refused: ${escapeSlackText(error.message)}`));
    throw error;
  }
  const handle = ctx.client.workflow.getHandle(workflowIdFor(ref));

  if (command.kind === 'status') {
    try {
      const status = await ctx.client.withDeadline(Date.now() + SLASH_ANSWER_MS, () => handle.query(statusQuery));
      return sendJson(
        res,
        200,
        ephemeral(`\`\`\`${escapeSlackText(formatStatus(status)).replace(/```/g, "'''")}\`\`\``),
      );
    } catch (error) {
      if (error instanceof WorkflowNotFoundError)
        return sendJson(
          res,
          200,
          ephemeral(`no change ${escapeSlackText(command.change)}: foureyes has not received its pull request`),
        );
      throw error;
    }
  }

  // The command names no commit, so it records nothing: the person gets buttons pinned to the head they are
  // shown (with Slack's confirmation dialog where an environment asks for one), and the click records it.
  const affected = repoEnvironments(config, ref).filter((e) => !command.environment || e.name === command.environment);
  try {
    const status = await ctx.client.withDeadline(Date.now() + SLASH_ANSWER_MS, () => handle.query(statusQuery));
    return sendJson(res, 200, pinnedToHead(status, command.kind, affected, command.environment, command.comment));
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      return sendJson(
        res,
        200,
        ephemeral(`:x: no change ${escapeSlackText(command.change)}: foureyes has not received its pull request`),
      );
    throw error;
  }
};

/** Approve (or Reject) buttons for the exact head the person is shown. */
function pinnedToHead(
  status: ChangeStatus,
  kind: 'approve' | 'reject',
  affected: ReturnType<typeof repoEnvironments>,
  environment: string | undefined,
  comment: string | undefined,
): SlackReply {
  const short = status.headSha.slice(0, 12);
  const names = affected.map((e) => e.name).join(', ');
  const confirmEnv = kind === 'approve' ? affected.find((e) => e.approval.confirm)?.name : undefined;
  const value = encodeButtonValue({
    change: status.change,
    sha: status.headSha,
    ...(environment ? { environment } : {}),
    ...(comment ? { comment } : {}),
  });
  const button =
    kind === 'approve'
      ? {
          type: 'button',
          action_id: `${APPROVE_ACTION}:pinned`,
          style: 'primary',
          text: plainText(`Approve ${names}`, 75),
          value,
          ...(confirmEnv ? { confirm: confirmDialog(status.change, short, confirmEnv) } : {}),
        }
      : { type: 'button', action_id: REJECT_ACTION, style: 'danger', text: plainText('Request changes', 75), value };
  const question =
    kind === 'approve'
      ? `Approve ${status.change} at ${short} for ${names}? ${status.title}`
      : `Request changes to ${status.change} at ${short}? ${status.title}`;
  const blocks = [
    { type: 'section', text: plainText(question) },
    { type: 'actions', elements: [button] },
  ];
  return ephemeral(
    `press the button below to ${kind === 'approve' ? 'approve' : 'request changes to'} ${escapeSlackText(status.change)} at ${short}, the commit shown here: an approval counts for the commit you saw.`,
    blocks,
  );
}

interface BlockActionsPayload {
  type?: string;
  user?: { id?: string; name?: string; username?: string; team_id?: string };
  team?: { id?: string };
  actions?: Array<{ action_id?: string; value?: string }>;
  response_url?: string;
  container?: { message_ts?: string; thread_ts?: string };
  message?: { ts?: string; thread_ts?: string };
}

/** POST /slack/interactions: Approve / Reject buttons. Acknowledged at once; the outcome goes to the thread. */
export const handleSlackInteraction: RouteHandler = async (req, res, _params, ctx) => {
  const rawBody = await readBody(req, BODY_LIMIT);
  verifySlackSignature({ headers: req.headers, rawBody }, ctx.env.SLACK_SIGNING_SECRET);
  let payload: BlockActionsPayload;
  try {
    payload = JSON.parse(new URLSearchParams(rawBody.toString('utf8')).get('payload') ?? '') as BlockActionsPayload;
  } catch {
    throw new HttpError(400, 'expected a form field payload= with Slack interaction JSON');
  }
  // `null`, a number or a list parse as JSON too; reading fields of them was a 500.
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload))
    throw new HttpError(400, 'expected a form field payload= with a Slack interaction JSON object');
  const first: unknown = payload.actions?.[0];
  const action = first && typeof first === 'object' ? (first as { action_id?: unknown; value?: unknown }) : undefined;
  const actionId = typeof action?.action_id === 'string' ? action.action_id : '';
  const decision: ApprovalDecision | undefined = actionId.startsWith(APPROVE_ACTION)
    ? 'approve'
    : actionId === REJECT_ACTION
      ? 'reject'
      : undefined;
  // Acknowledge first: Slack shows an error to the user if the answer takes more than three seconds.
  res.writeHead(200, { 'content-length': 0 });
  res.end();
  if (payload.type !== 'block_actions' || !decision || !payload.response_url) return;
  const threadTs =
    payload.message?.thread_ts ?? payload.container?.thread_ts ?? payload.message?.ts ?? payload.container?.message_ts;
  const respond = (reply: SlackReply) =>
    postToResponseUrl(payload.response_url as string, {
      ...reply,
      replace_original: false,
      ...(threadTs ? { thread_ts: threadTs } : {}),
    });
  const value = decodeButtonValue(typeof action?.value === 'string' ? action.value : '');
  let ref: ChangeRef | undefined;
  try {
    if (value) ref = parseChangeRef(value.change);
  } catch {
    ref = undefined;
  }
  if (!value || !ref)
    return respond(ephemeral(':x: this button does not name a change and commit; nothing was recorded'));
  const teamId = payload.user?.team_id ?? payload.team?.id;
  const userName = payload.user?.username ?? payload.user?.name;
  await respond(
    await approveFromSlack(ctx, {
      ref,
      decision,
      userId: payload.user?.id ?? '',
      sha: value.sha,
      via: 'button',
      ...(teamId ? { teamId } : {}),
      ...(userName ? { userName } : {}),
      ...(value.environment ? { environment: value.environment } : {}),
      ...(value.comment ? { comment: value.comment } : {}),
    }),
  );
};
