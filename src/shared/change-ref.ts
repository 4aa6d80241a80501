// The change reference `owner/repo#number` and the workflow ID derived from it (public contract).
// Pure: imported by workflow code, the gateway and the CLI.

export interface ChangeRef {
  owner: string;
  repo: string;
  number: number;
}

// GitHub's own limits: owner 39 chars, repository name 100 chars of [A-Za-z0-9._-].
const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const REPO = /^[A-Za-z0-9._-]{1,100}$/;

export class ChangeRefError extends Error {
  override name = 'ChangeRefError';
}

/**
 * Quotes untrusted input for an error message: JSON escapes plus every invisible or direction-changing
 * character (bidi overrides, zero-width, line separators) as \uXXXX, so a refusal cannot spoof what it shows.
 */
function quote(text: string, max: number): string {
  return JSON.stringify(text.slice(0, max)).replace(
    /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function validateRepoName(owner: string, repo: string): void {
  if (!OWNER.test(owner))
    throw new ChangeRefError(
      `invalid repository owner ${quote(owner, 60)}: expected letters, digits and dashes, at most 39 characters`,
    );
  if (!REPO.test(repo) || repo === '.' || repo === '..') {
    throw new ChangeRefError(
      `invalid repository name ${quote(repo, 120)}: expected letters, digits, '.', '_' or '-', at most 100 characters`,
    );
  }
}

export function parseChangeRef(text: string): ChangeRef {
  if (typeof text !== 'string' || text.length > 200)
    throw new ChangeRefError('invalid change reference: expected owner/repo#number');
  const match = /^([^/#\s]+)\/([^/#\s]+)#(\d{1,9})$/.exec(text.trim());
  if (!match)
    throw new ChangeRefError(
      `invalid change reference ${quote(text, 80)}: expected owner/repo#number, e.g. acme/shop#12`,
    );
  const [, owner, repo, num] = match as unknown as [string, string, string, string];
  validateRepoName(owner, repo);
  const number = Number(num);
  if (!Number.isSafeInteger(number) || number < 1)
    throw new ChangeRefError(`invalid pull request number in ${quote(text, 80)}`);
  return { owner, repo, number };
}

export function makeChangeRef(owner: string, repo: string, number: number): ChangeRef {
  validateRepoName(owner, repo);
  if (!Number.isSafeInteger(number) || number < 1 || number > 999_999_999)
    throw new ChangeRefError(`invalid pull request number ${number}`);
  return { owner, repo, number };
}

export function formatChangeRef(ref: ChangeRef): string {
  return `${ref.owner}/${ref.repo}#${ref.number}`;
}

export function repoFullName(ref: ChangeRef): string {
  return `${ref.owner}/${ref.repo}`;
}

export function workflowIdFor(ref: ChangeRef | string): string {
  return `change:${typeof ref === 'string' ? ref : formatChangeRef(ref)}`;
}

export function changeRefFromWorkflowId(workflowId: string): ChangeRef {
  if (!workflowId.startsWith('change:')) throw new ChangeRefError(`not a foureyes workflow ID: ${workflowId}`);
  return parseChangeRef(workflowId.slice('change:'.length));
}
