// Slack message formatting shared by the orchestrator's notification and the gateway's answers. Pure.
// Text that comes from a change (PR title, branch, comments) is untrusted: it must never inject a mention
// (<!channel>, <@U123>, @here) or a link into a message, so it is escaped and placed in plain_text fields.

/** Escapes Slack's control characters (&, <, >) and defuses @-mentions (@here, @channel, @everyone, @name). */
export function escapeSlackText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/@/g, '@\u200b');
}

/** Plain text for Block Kit: no mrkdwn parsing at all, still escaped and capped. */
export function plainText(text: string, max = 3000): { type: 'plain_text'; text: string; emoji: false } {
  const escaped = escapeSlackText(text);
  // Cutting must not split an entity (`&g…`) or separate an @ from the zero-width space that defuses it.
  const cut = () =>
    `${escaped
      .slice(0, max - 1)
      .replace(/&[a-z]{0,3}$/, '')
      .replace(/@$/, '')}…`;
  return { type: 'plain_text', text: escaped.length > max ? cut() : escaped || ' ', emoji: false };
}

export const APPROVE_ACTION = 'foureyes_approve';
export const REJECT_ACTION = 'foureyes_reject';

/** What an Approve/Reject button carries: the change, the exact commit shown, and the environment if any. */
export interface ButtonValue {
  change: string;
  sha: string;
  environment?: string;
  /** What the person typed after a slash command; recorded with the click. */
  comment?: string;
}

/** Slack caps a button's value at 2000 characters: a comment rides along, cut to fit. */
const MAX_BUTTON_COMMENT = 1000;

export function encodeButtonValue(value: ButtonValue): string {
  return JSON.stringify({
    c: value.change,
    s: value.sha,
    ...(value.environment ? { e: value.environment } : {}),
    ...(value.comment ? { m: value.comment.slice(0, MAX_BUTTON_COMMENT) } : {}),
  });
}

export function decodeButtonValue(text: string): ButtonValue | undefined {
  try {
    const v = JSON.parse(text) as { c?: unknown; s?: unknown; e?: unknown; m?: unknown };
    if (typeof v.c !== 'string' || typeof v.s !== 'string' || !/^[0-9a-f]{40}$/.test(v.s)) return undefined;
    if (v.e !== undefined && typeof v.e !== 'string') return undefined;
    return {
      change: v.c,
      sha: v.s,
      ...(typeof v.e === 'string' ? { environment: v.e } : {}),
      ...(typeof v.m === 'string' ? { comment: v.m.slice(0, MAX_BUTTON_COMMENT) } : {}),
    };
  } catch {
    return undefined;
  }
}

export interface ApprovalRequestMessage {
  change: string;
  title: string;
  sha: string;
  author: string;
  /** Environments waiting for approval; `confirm` adds a confirmation dialog to its button. */
  environments: Array<{ name: string; required: number; confirm: boolean }>;
  /** Link to the workflow in the Temporal UI (trusted configuration). */
  url?: string;
}

/** Block Kit: who asks for what, and one Approve button per environment plus Reject. */
export function approvalRequestBlocks(m: ApprovalRequestMessage): { text: string; blocks: unknown[] } {
  const short = m.sha.slice(0, 12);
  const envButtons = m.environments.map((env) => ({
    type: 'button',
    action_id: `${APPROVE_ACTION}:${env.name}`,
    style: 'primary',
    text: plainText(`Approve ${env.name}`, 75),
    value: encodeButtonValue({ change: m.change, sha: m.sha, environment: env.name }),
    ...(env.confirm ? { confirm: confirmDialog(m.change, short, env.name) } : {}),
  }));
  const reject = {
    type: 'button',
    action_id: REJECT_ACTION,
    style: 'danger',
    text: plainText('Reject', 75),
    value: encodeButtonValue({ change: m.change, sha: m.sha }),
  };
  const needs = m.environments.map((e) => `${e.name} (${e.required})`).join(', ') || 'none';
  return {
    text: `${escapeSlackText(m.change)} is waiting for approval at ${short}: ${escapeSlackText(m.title)}`,
    blocks: [
      { type: 'header', text: plainText(`Approval needed: ${m.change}`, 150) },
      { type: 'section', text: plainText(m.title) },
      {
        type: 'context',
        elements: [
          plainText(
            `commit ${short} · opened by ${m.author} · approvals needed: ${needs} · the author and committers cannot approve`,
          ),
        ],
      },
      ...(m.url && /^https?:\/\//.test(m.url)
        ? [
            {
              type: 'context',
              elements: [{ type: 'mrkdwn', text: `<${m.url.replace(/[<>|]/g, '')}|Workflow in Temporal>` }],
            },
          ]
        : []),
      { type: 'actions', block_id: `foureyes:${short}`, elements: [...envButtons, reject] },
    ],
  };
}

export function confirmDialog(change: string, shortSha: string, environment: string) {
  return {
    title: plainText(`Approve ${environment}?`, 100),
    text: plainText(
      `You approve ${change} at ${shortSha} for ${environment}. The pipeline will deploy exactly this commit.`,
      300,
    ),
    confirm: plainText('Approve', 30),
    deny: plainText('Cancel', 30),
    style: 'primary',
  };
}
