// Adaptive Cards for the Teams channel. Pure.
// Text that comes from a change or a request (PR title, change and environment names, refusal reasons) is
// untrusted. A TextBlock renders a markdown subset (emphasis, lists, links) that has no documented escape,
// so untrusted text never goes into a TextBlock: it goes into a RichTextBlock TextRun, which the Adaptive
// Card schema defines as plain text (no markdown), after control characters are removed and it is capped.
// Mentions need an `msteams.entities` entry, which foureyes never adds, so `<at>` in text stays text.

import type { ChangeStatus } from './types.ts';

export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';

export interface TextRun {
  type: 'TextRun';
  text: string;
  weight?: 'Bolder';
  color?: 'Good' | 'Attention' | 'Warning';
}

export interface AdaptiveCard {
  type: 'AdaptiveCard';
  $schema: string;
  version: string;
  body: Array<Record<string, unknown>>;
  actions?: Array<Record<string, unknown>>;
}

/** Plain text for a TextRun: no control characters (a newline would start a new visual line), capped. */
export function plainCardText(text: string, max = 2000): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, ' ');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean || ' ';
}

export function textRun(text: string, style: Omit<TextRun, 'type' | 'text'> = {}): TextRun {
  return { type: 'TextRun', text: plainCardText(text), ...style };
}

/** One paragraph of plain runs. */
export function plainParagraph(...runs: Array<string | TextRun>): Record<string, unknown> {
  return { type: 'RichTextBlock', inlines: runs.map((r) => (typeof r === 'string' ? textRun(r) : r)) };
}

export function card(body: Array<Record<string, unknown>>, actions?: Array<Record<string, unknown>>): AdaptiveCard {
  return {
    type: 'AdaptiveCard',
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    // Action.Execute (Universal Actions) needs 1.4.
    version: '1.4',
    body: [{ type: 'TextBlock', text: 'foureyes', weight: 'Bolder', size: 'Medium' }, ...body],
    ...(actions?.length ? { actions } : {}),
  };
}

/** What an Action.Execute button of foureyes carries back in `value.action.data`. */
export interface TeamsButtonData {
  change: string;
  sha: string;
  environment?: string;
  decision: 'approve' | 'reject';
  confirmed?: boolean;
}

export function executeAction(
  title: string,
  data: TeamsButtonData,
  style: 'positive' | 'destructive' | 'default' = 'default',
): Record<string, unknown> {
  return { type: 'Action.Execute', verb: 'foureyes', title: plainCardText(title, 60), style, data };
}

/** The invoke response body Teams expects for adaptiveCard/action: a card that replaces the clicked one. */
export function cardResponse(value: AdaptiveCard): {
  statusCode: 200;
  type: typeof ADAPTIVE_CARD_CONTENT_TYPE;
  value: AdaptiveCard;
} {
  return { statusCode: 200, type: ADAPTIVE_CARD_CONTENT_TYPE, value };
}

/** A plain answer card: accepted (Good) or refused (Attention), with the reason. */
export function outcomeCard(accepted: boolean, text: string, detail?: string): AdaptiveCard {
  return card([
    plainParagraph(
      textRun(accepted ? 'Accepted: ' : 'Refused: ', { weight: 'Bolder', color: accepted ? 'Good' : 'Attention' }),
      text,
    ),
    ...(detail ? [plainParagraph(detail)] : []),
  ]);
}

/** The second card for environments with `approval.confirm`: Teams has no native confirmation dialog. */
export function confirmationCard(input: {
  change: string;
  sha: string;
  title?: string;
  environments: string[];
  environment?: string;
}): AdaptiveCard {
  const names = input.environments.join(', ');
  const short = input.sha.slice(0, 12);
  return card(
    [
      plainParagraph(
        textRun('Confirm: ', { weight: 'Bolder', color: 'Warning' }),
        `approve ${input.change} at ${short} for ${names}?`,
      ),
      ...(input.title ? [plainParagraph(input.title)] : []),
      plainParagraph(`This approves exactly commit ${input.sha}; a newer push needs a new approval.`),
    ],
    [
      executeAction(
        `Approve ${names}`,
        {
          change: input.change,
          sha: input.sha,
          ...(input.environment ? { environment: input.environment } : {}),
          decision: 'approve',
          confirmed: true,
        },
        'positive',
      ),
    ],
  );
}

export interface TeamsApprovalRequest {
  change: string;
  title: string;
  sha: string;
  author: string;
  stage: string;
  /** Environments still waiting for approval; `confirm` makes their button ask for a confirmation card. */
  environments: Array<{ name: string; required: number; confirm: boolean }>;
}

/** The "waiting for approval" card: one Approve button per waiting environment plus Reject, all for this commit. */
export function approvalRequestCard(m: TeamsApprovalRequest): AdaptiveCard {
  const short = m.sha.slice(0, 12);
  const waiting = m.environments
    .map(
      (e) =>
        `${e.name} (${e.required} approval${e.required === 1 ? '' : 's'}${e.confirm ? ', asks for confirmation' : ''})`,
    )
    .join(', ');
  const actions = m.environments.map((e) =>
    executeAction(
      `Approve ${e.name}`,
      { change: m.change, sha: m.sha, environment: e.name, decision: 'approve' },
      'positive',
    ),
  );
  if (m.environments.length > 0)
    actions.push(executeAction('Reject', { change: m.change, sha: m.sha, decision: 'reject' }, 'destructive'));
  return card(
    [
      plainParagraph(textRun(`${m.change} at ${short}`, { weight: 'Bolder' }), ` by ${m.author}`),
      plainParagraph(m.title),
      plainParagraph(
        m.environments.length > 0
          ? `Waiting for approval: ${waiting}.`
          : `Nothing waiting for approval (stage ${m.stage}).`,
      ),
    ],
    actions,
  );
}

/** The proactive card message the orchestrator posted for a change (carried in the change's state). */
export interface TeamsCardRecord {
  conversationId: string;
  activityId: string;
  /** The head it was posted for. */
  sha: string;
  postedAt: string;
}

/** What the orchestrator's proactive card shows: the change as it is now, seen from the commit the card is for. */
export interface ChangeCardInput {
  status: ChangeStatus;
  /** The commit the card was posted for; once the head moved on the card says it was voided by the push. */
  cardSha: string;
  /** Environments whose Approve button asks for a confirmation card (`approval.confirm`). */
  confirm: Record<string, boolean>;
}

const FINAL_STAGES: ReadonlyArray<ChangeStatus['stage']> = [
  'delivered',
  'abandoned',
  'rejected',
  'failed',
  'checks-failed',
];

/**
 * The card the orchestrator posts when a change waits for approval and then keeps current: waiting (with
 * buttons pinned to the head), approved by…, deploying, delivered, voided by a push, the latest refused
 * attempt. Every untrusted string (title, names, reasons) is a TextRun.
 */
export function changeCard({ status, cardSha, confirm }: ChangeCardInput): AdaptiveCard {
  const short = cardSha.slice(0, 12);
  const header = plainParagraph(
    textRun(`${status.change} at ${short}`, { weight: 'Bolder' }),
    ` by ${status.author || 'unknown'}`,
  );
  if (status.headSha !== cardSha) {
    const push = [...status.timeline].reverse().find((t) => t.kind === 'pushed' && t.sha === status.headSha);
    return card([
      header,
      plainParagraph(status.title),
      plainParagraph(
        textRun('Voided by a push: ', { weight: 'Bolder', color: 'Warning' }),
        `${push?.actor ?? 'someone'} pushed ${status.headSha.slice(0, 12)}, so approvals of ${short} no longer count. A new card follows when it waits for approval.`,
      ),
    ]);
  }
  const lines: Array<Record<string, unknown>> = [header, plainParagraph(status.title)];
  const approved = status.environments
    .filter((e) => e.approvedBy.length > 0)
    .map((e) => `${e.name}: ${e.approvedBy.join(', ')}`);
  if (approved.length > 0)
    lines.push(plainParagraph(textRun('Approved by ', { weight: 'Bolder', color: 'Good' }), approved.join('; ')));
  lines.push(plainParagraph(stageRun(status), stageText(status)));
  const refused = [...status.approvals].reverse().find((a) => !a.counted && a.claim.sha === cardSha);
  if (refused)
    lines.push(
      plainParagraph(
        textRun('Refused attempt: ', { weight: 'Bolder', color: 'Attention' }),
        `${refused.claim.person || 'unknown'} via ${refused.claim.channel}: ${refused.reason.replace(/^refused: /, '')}`,
      ),
    );
  const open = !FINAL_STAGES.includes(status.stage) && status.stage !== 'checking';
  const waiting = open ? status.environments.filter((e) => e.state === 'pending' && e.required > 0) : [];
  const actions = waiting.map((e) =>
    executeAction(
      `Approve ${e.name}`,
      { change: status.change, sha: cardSha, environment: e.name, decision: 'approve' },
      'positive',
    ),
  );
  if (waiting.length > 0)
    actions.push(executeAction('Reject', { change: status.change, sha: cardSha, decision: 'reject' }, 'destructive'));
  if (waiting.length > 0)
    lines.push(
      plainParagraph(
        `Waiting for approval: ${waiting.map((e) => `${e.name} (${e.approvedBy.length}/${e.required}${confirm[e.name] ? ', asks for confirmation' : ''})`).join(', ')}.`,
      ),
    );
  return card(lines, actions);
}

function stageRun(status: ChangeStatus): TextRun {
  const good = status.stage === 'delivered';
  const bad = FINAL_STAGES.includes(status.stage) && !good;
  return textRun(`${status.stage[0]?.toUpperCase() ?? ''}${status.stage.slice(1).replace(/-/g, ' ')}: `, {
    weight: 'Bolder',
    ...(good ? { color: 'Good' as const } : bad ? { color: 'Attention' as const } : {}),
  });
}

function stageText(status: ChangeStatus): string {
  const deployed = status.environments.filter((e) => e.state === 'deployed').map((e) => e.name);
  if (status.stage === 'delivered')
    return `${status.headSha.slice(0, 12)} is deployed to ${deployed.join(', ') || 'every environment'}.`;
  const moving = status.environments.find((e) => e.state === 'deploying' || e.state === 'verifying');
  if (moving)
    return `${moving.state} ${status.headSha.slice(0, 12)} in ${moving.name}${deployed.length ? ` (deployed: ${deployed.join(', ')})` : ''}.`;
  return `waiting for ${status.waitingFor}.`;
}
