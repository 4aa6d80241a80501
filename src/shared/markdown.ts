// Untrusted text (titles, comments, logins, reasons) in GitHub Markdown: it must not inject Markdown, HTML,
// links or @mentions. Pure: used by the pull request's summary comment and the emergency announcement.

const SPECIAL = /[\\`*_{}[\]()#+\-.!|<>~@&:=^$%]/g;

/** Untrusted text as inert inline Markdown: one line, every markup character as an HTML entity. */
export function md(text: string, max = 300): string {
  const oneLine = String(text ?? '')
    .replace(/[\r\n\t\u2028\u2029]+/g, ' ')
    .replace(/[\u0000-\u001f\u007f]/g, '');
  const cut = oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
  return cut.replace(SPECIAL, (c) => `&#${c.charCodeAt(0)};`);
}
