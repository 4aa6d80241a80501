// What foureyes posts when a break-glass change is declared, and again when its retroactive review is overdue:
// the same facts in Slack (Block Kit), Teams (an Adaptive Card) and on the pull request (a comment). Pure.
// The reason, the title and the names are untrusted: Slack gets them escaped in plain_text fields, Teams in
// TextRuns (plain text by schema), GitHub as inert Markdown (md): none of them can mention anyone or link.
import type { AnnounceEmergencyInput } from '../shared/emergency.ts';
import { md } from '../shared/markdown.ts';
import { escapeSlackText, plainText } from '../shared/slack-format.ts';
import { card, plainParagraph, textRun, type AdaptiveCard } from '../shared/teams-card.ts';

/** The facts every channel shows, as plain (unescaped) text: each channel escapes them its own way. */
export interface EmergencyFacts {
  headline: string;
  facts: Array<[label: string, value: string]>;
  /** What happens now and how to review. */
  action: string;
}

const isSha = (sha: string) => /^[0-9a-f]{40}$/.test(sha);
const isChange = (change: string) => /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+#\d+$/.test(change);

/** The command that reviews it, when the change and the commit are what they should be (else a description). */
export function reviewCommand(input: AnnounceEmergencyInput): string | undefined {
  const { change } = input;
  const { sha } = input.emergency;
  return isChange(change) && isSha(sha) ? `foureyes approve ${change} --sha ${sha}` : undefined;
}

export function emergencyFacts(input: AnnounceEmergencyInput): EmergencyFacts {
  const e = input.emergency;
  const overdue = input.kind === 'overdue';
  const who = `an eligible person who is neither an initiator nor ${e.declaredBy}`;
  const how = reviewCommand(input) ?? `an approval of ${e.sha}`;
  return {
    headline: overdue
      ? `EMERGENCY change ${input.change}: retroactive review OVERDUE`
      : `EMERGENCY change ${input.change}: being deployed without approval`,
    facts: [
      ['Change', input.title ? `${input.change}: ${input.title}` : input.change],
      ['Commit', e.sha.slice(0, 12)],
      ['Declared by', `${e.declaredBy} (via ${e.channel}) at ${e.declaredAt}`],
      ['Reason', e.reason],
      ['Environments', e.environments.join(', ') || 'none'],
      [overdue ? 'Review was due' : 'Review due', e.reviewDueAt],
    ],
    action: overdue
      ? `The review is overdue: the audit records a finding for this emergency. ${who} reviews ${e.sha.slice(0, 12)} now and approves it (${how}, or an approving pull request review at that commit).`
      : `Retroactive review: ${who} reviews ${e.sha.slice(0, 12)} and approves it by ${e.reviewDueAt} (${how}, or an approving pull request review at that commit).`,
  };
}

const httpUrl = (url: string) => (/^https?:\/\/[^\s<>|]+$/.test(url) ? url : undefined);

/** Slack: a header that says EMERGENCY, the facts as plain_text fields, the review, the link. */
export function emergencySlackMessage(input: AnnounceEmergencyInput): { text: string; blocks: unknown[] } {
  const f = emergencyFacts(input);
  const url = httpUrl(input.url);
  const reason = input.emergency.reason;
  return {
    text: escapeSlackText(`🚨 ${f.headline}. Reason: ${reason}. ${f.action}`),
    blocks: [
      { type: 'header', text: plainText(`🚨 ${f.headline}`, 150) },
      { type: 'section', fields: f.facts.map(([label, value]) => plainText(`${label}: ${value}`, 1900)) },
      { type: 'section', text: plainText(f.action) },
      ...(url ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: `<${url}|The change in Temporal>` }] }] : []),
    ],
  };
}

/** Teams: an Adaptive Card whose every untrusted string is a TextRun. */
export function emergencyTeamsCard(input: AnnounceEmergencyInput): AdaptiveCard {
  const f = emergencyFacts(input);
  const url = httpUrl(input.url);
  return card(
    [
      plainParagraph(textRun(`🚨 ${f.headline}`, { weight: 'Bolder', color: 'Attention' })),
      ...f.facts.map(([label, value]) => plainParagraph(textRun(`${label}: `, { weight: 'Bolder' }), value)),
      plainParagraph(f.action),
    ],
    url ? [{ type: 'Action.OpenUrl', title: 'The change in Temporal', url }] : [],
  );
}

/** Finds the comment again on a retry: one per emergency and kind. */
export function emergencyCommentMarker(input: AnnounceEmergencyInput): string {
  return `<!-- foureyes:emergency:${input.emergency.id.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 80)}:${input.kind} -->`;
}

/** The pull request comment: the facts as inert Markdown, the review command as code. */
export function emergencyComment(input: AnnounceEmergencyInput): string {
  const f = emergencyFacts(input);
  const url = httpUrl(input.url);
  const command = reviewCommand(input);
  return [
    emergencyCommentMarker(input),
    `### 🚨 ${md(f.headline)}`,
    '',
    ...f.facts.map(([label, value]) => `- **${label}:** ${md(value, 1000)}`),
    '',
    md(f.action, 1000),
    ...(command ? ['', `Review and approve exactly this commit: \`${command}\``] : []),
    ...(url ? ['', `[The change in the Temporal UI](${url.replace(/[()\s<>]/g, (c) => encodeURIComponent(c))})`] : []),
    '',
  ].join('\n');
}
