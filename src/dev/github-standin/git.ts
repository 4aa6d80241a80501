// The stand-in's repositories are real git repositories on disk (bare), so that checks and deploys can
// `git fetch <remote> <sha>` exactly as they would from GitHub. Commits are written with git plumbing
// (no working tree), with the author and committer the stand-in was told to use.
import { execFileSync } from 'node:child_process';
import { mkdirSync, existsSync, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GitPerson {
  name: string;
  email: string;
  /** ISO 8601; default now. */
  date?: string;
}

const GIT_BASE_ENV: NodeJS.ProcessEnv = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: tmpdir(),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_TERMINAL_PROMPT: '0',
  LANG: 'C',
};

export function git(
  dir: string,
  args: string[],
  options: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {},
): string {
  return execFileSync('git', args, {
    cwd: dir,
    input: options.input,
    env: { ...GIT_BASE_ENV, ...options.env },
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  }).trimEnd();
}

/** Creates (or reuses) a bare repository that lets clients fetch any commit by SHA. */
export function initBareRepository(dir: string): void {
  if (existsSync(join(dir, 'HEAD'))) return;
  mkdirSync(dir, { recursive: true });
  git(dir, ['init', '--bare', '--quiet', '.']);
  git(dir, ['config', 'uploadpack.allowAnySHA1InWant', 'true']);
  git(dir, ['config', 'uploadpack.allowReachableSHA1InWant', 'true']);
}

/**
 * Writes one commit on top of `parent` (or a root commit) with `files` added or replaced (a `null`
 * content deletes the file) and returns its SHA. Refs are not touched.
 */
export function writeCommit(
  dir: string,
  input: {
    parent?: string;
    files: Record<string, string | null>;
    message: string;
    author: GitPerson;
    committer: GitPerson;
  },
): string {
  const scratch = mkdtempSync(join(tmpdir(), 'standin-index-'));
  const env = { GIT_INDEX_FILE: join(scratch, 'index') };
  try {
    if (input.parent) git(dir, ['read-tree', input.parent], { env });
    else git(dir, ['read-tree', '--empty'], { env });
    for (const [path, content] of Object.entries(input.files)) {
      if (content === null) {
        git(dir, ['update-index', '--force-remove', '--', path], { env });
        continue;
      }
      const blob = git(dir, ['hash-object', '-w', '--stdin'], { input: content });
      const mode = path.endsWith('.sh') ? '100755' : '100644';
      git(dir, ['update-index', '--add', '--cacheinfo', `${mode},${blob},${path}`], { env });
    }
    const tree = git(dir, ['write-tree'], { env });
    const now = new Date().toISOString();
    return git(dir, ['commit-tree', tree, ...(input.parent ? ['-p', input.parent] : []), '-F', '-'], {
      input: input.message,
      env: {
        GIT_AUTHOR_NAME: input.author.name,
        GIT_AUTHOR_EMAIL: input.author.email,
        GIT_AUTHOR_DATE: input.author.date ?? now,
        GIT_COMMITTER_NAME: input.committer.name,
        GIT_COMMITTER_EMAIL: input.committer.email,
        GIT_COMMITTER_DATE: input.committer.date ?? now,
      },
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

type CommitInput = { files: Record<string, string | null>; message: string; author: GitPerson; committer: GitPerson };

/**
 * Writes a chain of commits on top of `parent` in one `git fast-import` (a pull request with hundreds of commits
 * costs one process, not several per commit) and returns their SHAs in order. Refs are not touched.
 */
export function writeCommitChain(dir: string, parent: string | undefined, commits: CommitInput[]): string[] {
  if (commits.length === 0) return [];
  const scratch = mkdtempSync(join(tmpdir(), 'standin-import-'));
  const marks = join(scratch, 'marks');
  const ref = `refs/standin-import/${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const when = (p: GitPerson) => `${Math.floor(Date.parse(p.date ?? new Date().toISOString()) / 1000)} +0000`;
  const data = (text: string) => `data ${Buffer.byteLength(text)}\n${text}\n`;
  let stream = '';
  commits.forEach((c, i) => {
    stream += `commit ${ref}\nmark :${i + 1}\n`;
    stream += `author ${c.author.name} <${c.author.email}> ${when(c.author)}\ncommitter ${c.committer.name} <${c.committer.email}> ${when(c.committer)}\n`;
    stream += data(c.message);
    if (i === 0 && parent) stream += `from ${parent}\n`;
    for (const [path, content] of Object.entries(c.files)) {
      if (content === null) stream += `D ${path}\n`;
      else stream += `M ${path.endsWith('.sh') ? '100755' : '100644'} inline ${path}\n${data(content)}`;
    }
  });
  try {
    git(dir, ['fast-import', '--quiet', `--export-marks=${marks}`], { input: stream });
    const byMark = new Map(
      readFileSync(marks, 'utf8')
        .trim()
        .split('\n')
        .map((line) => line.split(' ') as [string, string]),
    );
    return commits.map((_, i) => byMark.get(`:${i + 1}`) as string);
  } finally {
    try {
      git(dir, ['update-ref', '-d', ref]);
    } catch {
      // nothing was imported
    }
    rmSync(scratch, { recursive: true, force: true });
  }
}

export function updateRef(dir: string, ref: string, sha: string): void {
  git(dir, ['update-ref', ref, sha]);
}

export function resolveRef(dir: string, ref: string): string | undefined {
  try {
    return git(dir, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  } catch {
    return undefined;
  }
}

/** Commits reachable from `head` and not from `base`, oldest first. */
export function commitsBetween(dir: string, base: string, head: string): string[] {
  const out = git(dir, ['rev-list', '--reverse', `${base}..${head}`]);
  return out ? out.split('\n') : [];
}

export interface ChangedFile {
  filename: string;
  status: 'added' | 'removed' | 'modified' | 'renamed';
  additions: number;
  deletions: number;
}

/** Files changed between the merge base of base and head, and head (what a PR's "Files changed" shows). */
export function changedFiles(dir: string, base: string, head: string): ChangedFile[] {
  const mergeBase = git(dir, ['merge-base', base, head]);
  const status = git(dir, ['diff', '--name-status', '--no-renames', mergeBase, head]);
  const stats = new Map<string, [number, number]>();
  const numstat = git(dir, ['diff', '--numstat', '--no-renames', mergeBase, head]);
  for (const line of numstat ? numstat.split('\n') : []) {
    const [a, d, file] = line.split('\t') as [string, string, string];
    stats.set(file, [Number(a) || 0, Number(d) || 0]);
  }
  return (status ? status.split('\n') : []).map((line) => {
    const [code, filename] = line.split('\t') as [string, string];
    const [additions, deletions] = stats.get(filename) ?? [0, 0];
    return { filename, status: code === 'A' ? 'added' : code === 'D' ? 'removed' : 'modified', additions, deletions };
  });
}

/** A merge commit of `head` into `base` with head's tree (the stand-in does not resolve conflicts). */
export function writeMergeCommit(
  dir: string,
  input: { base: string; head: string; message: string; committer: GitPerson },
): string {
  const now = new Date().toISOString();
  const tree = git(dir, ['rev-parse', `${input.head}^{tree}`]);
  return git(dir, ['commit-tree', tree, '-p', input.base, '-p', input.head, '-F', '-'], {
    input: input.message,
    env: {
      GIT_AUTHOR_NAME: input.committer.name,
      GIT_AUTHOR_EMAIL: input.committer.email,
      GIT_AUTHOR_DATE: now,
      GIT_COMMITTER_NAME: input.committer.name,
      GIT_COMMITTER_EMAIL: input.committer.email,
      GIT_COMMITTER_DATE: now,
    },
  });
}

export interface GitCommit {
  sha: string;
  parents: string[];
  tree: string;
  author: Required<GitPerson>;
  committer: Required<GitPerson>;
  message: string;
}

const COMMIT_FORMAT = '%H%x00%P%x00%T%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B';

export function readCommit(dir: string, sha: string): GitCommit {
  return parseCommit(git(dir, ['show', '-s', `--format=${COMMIT_FORMAT}`, sha]), sha);
}

/** Every commit reachable from `head` and not from `base`, oldest first, in one git call (large pull requests). */
export function readCommitsBetween(dir: string, base: string, head: string): GitCommit[] {
  const out = git(dir, ['log', '--reverse', `--format=${COMMIT_FORMAT}%x1e`, `${base}..${head}`]);
  return out
    .split('\x1e')
    .map((chunk) => chunk.replace(/^\n/, ''))
    .filter((chunk) => chunk.length > 0)
    .map((chunk) => parseCommit(chunk, ''));
}

export function countCommitsBetween(dir: string, base: string, head: string): number {
  return Number(git(dir, ['rev-list', '--count', `${base}..${head}`])) || 0;
}

function parseCommit(out: string, sha: string): GitCommit {
  const [h, p, t, an, ae, ad, cn, ce, cd, ...rest] = out.split('\0') as string[];
  return {
    sha: h ?? sha,
    parents: p ? p.split(' ') : [],
    tree: t ?? '',
    author: { name: an ?? '', email: ae ?? '', date: new Date(ad ?? 0).toISOString() },
    committer: { name: cn ?? '', email: ce ?? '', date: new Date(cd ?? 0).toISOString() },
    message: rest.join('\0').replace(/\n+$/, ''),
  };
}
