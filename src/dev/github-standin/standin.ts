// The GitHub stand-in: people act (open a pull request, push, review) through this programmatic API or the
// HTTP control API (src/dev/github-standin/server.ts); the stand-in keeps GitHub's state, serves it through
// GitHub's REST API and sends webhooks signed exactly as GitHub signs them.
import { createHmac, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import {
  changedFiles,
  countCommitsBetween,
  initBareRepository,
  readCommit,
  readCommitsBetween,
  resolveRef,
  updateRef,
  writeCommit,
  writeCommitChain,
  writeMergeCommit,
  type ChangedFile,
  type GitCommit,
} from './git.ts';
import {
  emptyState,
  type AppManifest,
  type StandinApp,
  type StandinManifestCode,
  type StandinDelivery,
  type StandinPull,
  type StandinRepo,
  type CollaboratorRole,
  type StandinReview,
  type StandinState,
  type StandinUser,
} from './model.ts';

/** Who did something in git: a stand-in user by login, or a bare name and e-mail (an unknown author). */
export type PersonSpec = string | { login?: string; name?: string; email?: string };

export interface CommitSpec {
  message: string;
  /** path -> content; null deletes. */
  files?: Record<string, string | null>;
  author?: PersonSpec;
  /** Defaults to the author. */
  committer?: PersonSpec;
}

export interface DeliveryOptions {
  /** false: record the delivery without sending it (send later with sendDelivery, e.g. out of order). */
  deliver?: boolean;
}

export interface ActionResult {
  delivery: StandinDelivery;
  /** Status code the webhook receiver answered (absent when not delivered). */
  status?: number;
}

export class StandinError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface StandinOptions {
  /** Folder for the git repositories (and the state file when `persist`). */
  dataDir: string;
  /** Save the state to `<dataDir>/state.json` after each change and load it at start. */
  persist?: boolean;
  webhook?: { url: string; secret: string };
}

export class GitHubStandin {
  state: StandinState;
  /** Base URL of the HTTP server once listening (set by the server). */
  baseUrl = 'http://127.0.0.1';
  private lastTime = 0;
  private readonly stateFile: string;

  constructor(readonly options: StandinOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    this.stateFile = join(options.dataDir, 'state.json');
    this.state =
      options.persist && existsSync(this.stateFile)
        ? { ...emptyState(), ...(JSON.parse(readFileSync(this.stateFile, 'utf8')) as StandinState) }
        : emptyState();
    if (options.webhook) this.state.webhook = options.webhook;
  }

  // ---------- bookkeeping ----------

  nextId(): number {
    return this.state.nextId++;
  }

  /** Strictly increasing timestamps, so that "newest wins" is decidable even within one millisecond. */
  now(): string {
    this.lastTime = Math.max(Date.now(), this.lastTime + 1);
    return new Date(this.lastTime).toISOString();
  }

  save(): void {
    if (!this.options.persist) return;
    const tmp = `${this.stateFile}.tmp`;
    // The webhook secret is not saved: whoever starts the stand-in sets it again.
    writeFileSync(tmp, JSON.stringify({ ...this.state, webhook: undefined }), { mode: 0o600 });
    renameSync(tmp, this.stateFile);
  }

  setWebhook(url: string, secret: string): void {
    this.state.webhook = { url, secret };
    this.save();
  }

  // ---------- users, tokens, apps ----------

  addUser(input: { login: string; name?: string; email?: string; type?: 'User' | 'Bot' }): {
    user: StandinUser;
    token: string;
  } {
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(\[bot\])?$/.test(input.login))
      throw new StandinError(422, `invalid login ${JSON.stringify(input.login)}`);
    let user = this.findUser(input.login);
    if (!user) {
      user = {
        id: this.nextId(),
        login: input.login,
        name: input.name ?? input.login,
        email: input.email ?? `${input.login.toLowerCase()}@users.noreply.standin.local`,
        type: input.type ?? 'User',
      };
      this.state.users.push(user);
    }
    let token = this.state.tokens.find((t) => t.kind === 'user' && t.login === user.login);
    if (!token) {
      token = { token: `ghp_${randomBytes(18).toString('hex')}`, kind: 'user', login: user.login };
      this.state.tokens.push(token);
    }
    this.save();
    return { user, token: token.token };
  }

  findUser(login: string): StandinUser | undefined {
    return this.state.users.find((u) => u.login.toLowerCase() === login.toLowerCase());
  }

  userByEmail(email: string): StandinUser | undefined {
    return this.state.users.find((u) => u.email.toLowerCase() === email.toLowerCase());
  }

  requireUser(login: string): StandinUser {
    const user = this.findUser(login);
    if (!user) throw new StandinError(404, `no stand-in user ${JSON.stringify(login)}; add it first`);
    return user;
  }

  /**
   * A GitHub App, installed at once on `repositories` (default: every repository of the stand-in); returns
   * its private key (PEM).
   */
  addApp(input: { slug: string; repositories?: string[] }): {
    appId: number;
    installationId: number;
    privateKey: string;
  } {
    const { app, privateKey } = this.newApp(input.slug);
    const installationId = this.installApp(app.id, input.repositories);
    return { appId: app.id, installationId, privateKey };
  }

  private newApp(slug: string, extra: Partial<StandinApp> = {}): { app: StandinApp; privateKey: string } {
    if (!/^[a-z0-9][a-z0-9-]{0,33}$/.test(slug))
      throw new StandinError(422, `invalid App slug ${JSON.stringify(slug)}`);
    if (this.state.apps.some((a) => a.slug === slug))
      throw new StandinError(422, `Name ${JSON.stringify(slug)} is already taken`);
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const app: StandinApp = {
      id: this.nextId(),
      slug,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      ...extra,
    };
    this.state.apps.push(app);
    this.addUser({ login: `${slug}[bot]`, type: 'Bot', email: `${app.id}+${slug}[bot]@users.noreply.standin.local` });
    this.save();
    // GitHub hands out PKCS#1 ("BEGIN RSA PRIVATE KEY") files; Octokit reads both.
    return { app, privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString() };
  }

  /** Installs (or re-scopes) an App, as a person does on its "Install" page; returns the installation id. */
  installApp(appId: number, repositories?: string[]): number {
    const app = this.requireApp(appId);
    for (const name of repositories ?? []) this.requireRepo(name);
    app.installationId ??= this.nextId();
    app.repositories = repositories?.map((r) => r.toLowerCase());
    this.save();
    return app.installationId;
  }

  requireApp(appId: number): StandinApp {
    const app = this.state.apps.find((a) => a.id === appId);
    if (!app) throw new StandinError(404, `no stand-in App ${appId}`);
    return app;
  }

  /** Whether the App's installation covers the repository (GitHub answers 404 otherwise). */
  appCovers(app: StandinApp, fullName: string): boolean {
    return (
      app.installationId !== undefined &&
      (app.repositories === undefined || app.repositories.includes(fullName.toLowerCase()))
    );
  }

  /**
   * The person confirmed "Create GitHub App" on the page a manifest was posted to: GitHub redirects to the
   * manifest's redirect_url with a one-time code (valid for an hour) that the App's creator exchanges.
   */
  confirmManifest(raw: unknown, owner: string): { code: string; redirectUrl: string | undefined } {
    const manifest = validateManifest(raw);
    const code = randomBytes(20).toString('hex');
    this.state.manifestCodes.push({ code, manifest, owner, createdAt: new Date().toISOString() });
    this.save();
    return { code, redirectUrl: manifest.redirect_url };
  }

  /** POST /app-manifests/{code}/conversions: creates the App once per code; the only time its key and secret are shown. */
  convertManifest(code: string): { app: StandinApp; privateKey: string; webhookSecret: string; clientSecret: string } {
    const index = this.state.manifestCodes.findIndex(
      (c) => c.code === code && Date.parse(c.createdAt) > Date.now() - 3_600_000,
    );
    if (index < 0) throw new StandinError(404, 'Not Found');
    const [pending] = this.state.manifestCodes.splice(index, 1) as [StandinManifestCode];
    const slug =
      pending.manifest.name
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-|-$/g, '')
        .slice(0, 34) || 'app';
    const { app, privateKey } = this.newApp(slug, { owner: pending.owner, manifest: pending.manifest });
    return {
      app,
      privateKey,
      webhookSecret: randomBytes(20).toString('hex'),
      clientSecret: randomBytes(20).toString('hex'),
    };
  }

  // ---------- repositories and git ----------

  repoKey(owner: string, name: string): string {
    return `${owner}/${name}`.toLowerCase();
  }

  findRepo(fullName: string): StandinRepo | undefined {
    return this.state.repos.find((r) => `${r.owner}/${r.name}`.toLowerCase() === fullName.toLowerCase());
  }

  requireRepo(fullName: string): StandinRepo {
    const repo = this.findRepo(fullName);
    if (!repo) throw new StandinError(404, `no stand-in repository ${JSON.stringify(fullName)}`);
    return repo;
  }

  /** The repository's git remote: a local bare repository (`git fetch <remote> <sha>` works). */
  remoteOf(fullName: string): string {
    return this.requireRepo(fullName).gitDir;
  }

  /**
   * `firstPullNumber` lets several stand-ins share one Temporal namespace (as the test files do) without
   * two of them opening `acme/shop#1`, which is the same workflow ID.
   */
  createRepo(input: {
    fullName: string;
    defaultBranch?: string;
    files?: Record<string, string>;
    owner?: PersonSpec;
    firstPullNumber?: number;
    private?: boolean;
  }): StandinRepo {
    const existing = this.findRepo(input.fullName);
    if (existing) return existing;
    const [owner, name] = input.fullName.split('/') as [string, string];
    if (!owner || !name || !/^[A-Za-z0-9-]{1,39}$/.test(owner) || !/^[A-Za-z0-9._-]{1,100}$/.test(name))
      throw new StandinError(422, `invalid repository name ${JSON.stringify(input.fullName)}`);
    const gitDir = join(this.options.dataDir, 'git', owner, `${name}.git`);
    initBareRepository(gitDir);
    const repo: StandinRepo = {
      id: this.nextId(),
      owner,
      name,
      defaultBranch: input.defaultBranch ?? 'main',
      gitDir,
      nextNumber: input.firstPullNumber ?? 1,
      ...(input.private ? { private: true } : {}),
    };
    if (!resolveRef(gitDir, `refs/heads/${repo.defaultBranch}`)) {
      const who = this.gitPerson(input.owner ?? { name: 'Stand-in', email: 'standin@users.noreply.standin.local' });
      const sha = writeCommit(gitDir, {
        files: input.files ?? { 'README.md': `# ${input.fullName}\n` },
        message: 'Initial commit',
        author: who,
        committer: who,
      });
      updateRef(gitDir, `refs/heads/${repo.defaultBranch}`, sha);
      git_symbolic(gitDir, repo.defaultBranch);
    }
    this.state.repos.push(repo);
    this.save();
    return repo;
  }

  gitPerson(spec: PersonSpec): { name: string; email: string } {
    if (typeof spec === 'string') {
      const user = this.requireUser(spec);
      return { name: user.name, email: user.email };
    }
    if (spec.login) {
      const user = this.requireUser(spec.login);
      return { name: spec.name ?? user.name, email: spec.email ?? user.email };
    }
    if (!spec.email) throw new StandinError(422, 'a commit author needs a login or an e-mail');
    return { name: spec.name ?? spec.email, email: spec.email };
  }

  /** Writes commits on top of `parent`; returns the new head. */
  private writeCommits(repo: StandinRepo, parent: string, commits: CommitSpec[], defaultAuthor: PersonSpec): string {
    const chain = commits.map((c) => {
      const author = this.gitPerson(c.author ?? defaultAuthor);
      return {
        files: c.files ?? { [`changes/${randomUUID()}.txt`]: `${c.message}\n` },
        message: c.message,
        author,
        committer: c.committer ? this.gitPerson(c.committer) : author,
      };
    });
    return writeCommitChain(repo.gitDir, parent, chain).at(-1) ?? parent;
  }

  commit(repo: StandinRepo, sha: string): GitCommit {
    try {
      return readCommit(repo.gitDir, sha);
    } catch {
      throw new StandinError(404, `No commit found for SHA: ${sha}`);
    }
  }

  /** GitHub's compare of base...head: ahead_by/behind_by count the commits each side has that the other lacks. */
  compare(
    repo: StandinRepo,
    base: string,
    head: string,
  ): {
    status: 'ahead' | 'behind' | 'identical' | 'diverged';
    ahead_by: number;
    behind_by: number;
    total_commits: number;
    commits: [];
  } {
    this.commit(repo, base);
    this.commit(repo, head);
    const aheadBy = countCommitsBetween(repo.gitDir, base, head);
    const behindBy = countCommitsBetween(repo.gitDir, head, base);
    const status =
      aheadBy === 0 && behindBy === 0 ? 'identical' : behindBy === 0 ? 'ahead' : aheadBy === 0 ? 'behind' : 'diverged';
    return { status, ahead_by: aheadBy, behind_by: behindBy, total_commits: aheadBy, commits: [] };
  }

  pullCommits(pull: StandinPull): GitCommit[] {
    const repo = this.requireRepo(pull.repo);
    return readCommitsBetween(repo.gitDir, this.baseSha(pull), pull.headSha);
  }

  pullFiles(pull: StandinPull): ChangedFile[] {
    const repo = this.requireRepo(pull.repo);
    return changedFiles(repo.gitDir, this.baseSha(pull), pull.headSha);
  }

  baseSha(pull: StandinPull): string {
    const repo = this.requireRepo(pull.repo);
    const sha = resolveRef(repo.gitDir, `refs/heads/${pull.baseRef}`);
    if (!sha) throw new StandinError(422, `base branch ${pull.baseRef} does not exist`);
    return sha;
  }

  // ---------- pull requests ----------

  findPull(fullName: string, number: number): StandinPull | undefined {
    return this.state.pulls.find((p) => p.repo.toLowerCase() === fullName.toLowerCase() && p.number === number);
  }

  requirePull(fullName: string, number: number): StandinPull {
    const pull = this.findPull(fullName, number);
    if (!pull) throw new StandinError(404, `no pull request ${fullName}#${number}`);
    return pull;
  }

  async openPullRequest(
    input: {
      repo: string;
      author: string;
      title: string;
      body?: string;
      head?: string;
      base?: string;
      commits: CommitSpec[];
    } & DeliveryOptions,
  ): Promise<ActionResult & { pull: StandinPull }> {
    const repo = this.requireRepo(input.repo);
    this.requireUser(input.author);
    const baseRef = input.base ?? repo.defaultBranch;
    const number = repo.nextNumber++;
    const headRef = input.head ?? `change-${number}`;
    const start = resolveRef(repo.gitDir, `refs/heads/${headRef}`) ?? resolveRef(repo.gitDir, `refs/heads/${baseRef}`);
    if (!start) throw new StandinError(422, `base branch ${baseRef} does not exist`);
    if (input.commits.length === 0 && start === resolveRef(repo.gitDir, `refs/heads/${baseRef}`))
      throw new StandinError(422, `No commits between ${baseRef} and ${headRef}`);
    const headSha = this.writeCommits(repo, start, input.commits, input.author);
    updateRef(repo.gitDir, `refs/heads/${headRef}`, headSha);
    updateRef(repo.gitDir, `refs/pull/${number}/head`, headSha);
    const at = this.now();
    const pull: StandinPull = {
      repo: `${repo.owner}/${repo.name}`,
      id: this.nextId(),
      number,
      title: input.title,
      body: input.body ?? '',
      author: this.requireUser(input.author).login,
      headRef,
      baseRef,
      headSha,
      state: 'open',
      merged: false,
      createdAt: at,
      updatedAt: at,
    };
    this.state.pulls.push(pull);
    this.save();
    const result = await this.emit(
      'pull_request',
      {
        action: 'opened',
        number,
        pull_request: this.pullJson(pull),
        repository: this.repoJson(repo),
        sender: this.userJson(pull.author),
      },
      input,
    );
    return { ...result, pull };
  }

  async pushCommits(
    input: { repo: string; number: number; pusher: string; commits: CommitSpec[]; force?: boolean } & DeliveryOptions,
  ): Promise<ActionResult & { pull: StandinPull; before: string }> {
    const pull = this.requirePull(input.repo, input.number);
    const repo = this.requireRepo(pull.repo);
    this.requireUser(input.pusher);
    const before = pull.headSha;
    const parent = input.force ? this.baseSha(pull) : pull.headSha;
    const after = this.writeCommits(repo, parent, input.commits, input.pusher);
    updateRef(repo.gitDir, `refs/heads/${pull.headRef}`, after);
    updateRef(repo.gitDir, `refs/pull/${pull.number}/head`, after);
    pull.headSha = after;
    pull.updatedAt = this.now();
    this.save();
    const result = await this.emit(
      'pull_request',
      {
        action: 'synchronize',
        number: pull.number,
        before,
        after,
        pull_request: this.pullJson(pull),
        repository: this.repoJson(repo),
        sender: this.userJson(input.pusher),
      },
      input,
    );
    return { ...result, pull, before };
  }

  async submitReview(
    input: {
      repo: string;
      number: number;
      reviewer: string;
      event: 'APPROVE' | 'REQUEST_CHANGES' | 'COMMENT';
      body?: string;
      commitId?: string;
    } & DeliveryOptions,
  ): Promise<ActionResult & { review: StandinReview }> {
    const pull = this.requirePull(input.repo, input.number);
    const user = this.requireUser(input.reviewer);
    if (input.event !== 'COMMENT' && user.login.toLowerCase() === pull.author.toLowerCase()) {
      // GitHub refuses this too; foureyes must refuse it on its own anyway (a token could act for anyone).
      throw new StandinError(
        422,
        `Unprocessable Entity: "Can not ${input.event === 'APPROVE' ? 'approve' : 'request changes on'} your own pull request"`,
      );
    }
    const state =
      input.event === 'APPROVE' ? 'APPROVED' : input.event === 'REQUEST_CHANGES' ? 'CHANGES_REQUESTED' : 'COMMENTED';
    const review: StandinReview = {
      repo: pull.repo,
      pull: pull.number,
      id: this.nextId(),
      user: user.login,
      state,
      body: input.body ?? '',
      commitId: input.commitId ?? pull.headSha,
      submittedAt: this.now(),
    };
    this.state.reviews.push(review);
    this.save();
    const result = await this.emit(
      'pull_request_review',
      {
        action: 'submitted',
        review: this.reviewJson(review, 'webhook'),
        pull_request: this.pullJson(pull),
        repository: this.repoJson(this.requireRepo(pull.repo)),
        sender: this.userJson(user.login),
      },
      input,
    );
    return { ...result, review };
  }

  async dismissReview(
    input: { repo: string; number: number; reviewId: number; by: string; message?: string } & DeliveryOptions,
  ): Promise<ActionResult & { review: StandinReview }> {
    const pull = this.requirePull(input.repo, input.number);
    const review = this.state.reviews.find(
      (r) => r.id === input.reviewId && r.pull === pull.number && r.repo === pull.repo,
    );
    if (!review) throw new StandinError(404, `no review ${input.reviewId} on ${pull.repo}#${pull.number}`);
    if (review.state !== 'APPROVED' && review.state !== 'CHANGES_REQUESTED')
      throw new StandinError(422, `Can not dismiss a ${review.state.toLowerCase()} pull request review`);
    this.requireUser(input.by);
    review.state = 'DISMISSED';
    this.save();
    const result = await this.emit(
      'pull_request_review',
      {
        action: 'dismissed',
        review: this.reviewJson(review, 'webhook'),
        pull_request: this.pullJson(pull),
        repository: this.repoJson(this.requireRepo(pull.repo)),
        sender: this.userJson(input.by),
      },
      input,
    );
    return { ...result, review };
  }

  async closePullRequest(
    input: { repo: string; number: number; by: string } & DeliveryOptions,
  ): Promise<ActionResult & { pull: StandinPull }> {
    const pull = this.requirePull(input.repo, input.number);
    this.requireUser(input.by);
    pull.state = 'closed';
    pull.closedAt = pull.updatedAt = this.now();
    this.save();
    const result = await this.emit(
      'pull_request',
      {
        action: 'closed',
        number: pull.number,
        pull_request: this.pullJson(pull),
        repository: this.repoJson(this.requireRepo(pull.repo)),
        sender: this.userJson(input.by),
      },
      input,
    );
    return { ...result, pull };
  }

  async reopenPullRequest(
    input: { repo: string; number: number; by: string } & DeliveryOptions,
  ): Promise<ActionResult & { pull: StandinPull }> {
    const pull = this.requirePull(input.repo, input.number);
    if (pull.merged) throw new StandinError(422, 'a merged pull request cannot be reopened');
    pull.state = 'open';
    pull.closedAt = undefined;
    pull.updatedAt = this.now();
    this.save();
    const result = await this.emit(
      'pull_request',
      {
        action: 'reopened',
        number: pull.number,
        pull_request: this.pullJson(pull),
        repository: this.repoJson(this.requireRepo(pull.repo)),
        sender: this.userJson(input.by),
      },
      input,
    );
    return { ...result, pull };
  }

  /**
   * Someone pushes commits straight to a branch (no pull request): GitHub sends a `push` webhook. Creates the
   * branch from `from` (default: the default branch) when it does not exist.
   */
  async pushBranch(
    input: { repo: string; branch: string; from?: string; pusher: string; commits: CommitSpec[] } & DeliveryOptions,
  ): Promise<ActionResult & { before: string; after: string }> {
    const repo = this.requireRepo(input.repo);
    this.requireUser(input.pusher);
    const existing = resolveRef(repo.gitDir, `refs/heads/${input.branch}`);
    const start = existing ?? resolveRef(repo.gitDir, `refs/heads/${input.from ?? repo.defaultBranch}`);
    if (!start) throw new StandinError(422, `branch ${input.from ?? repo.defaultBranch} does not exist`);
    const after = this.writeCommits(repo, start, input.commits, input.pusher);
    updateRef(repo.gitDir, `refs/heads/${input.branch}`, after);
    this.save();
    const before = existing ?? '0'.repeat(40);
    const result = await this.emit(
      'push',
      {
        ref: `refs/heads/${input.branch}`,
        before,
        after,
        repository: this.repoJson(repo),
        pusher: { name: input.pusher },
        sender: this.userJson(input.pusher),
      },
      input,
    );
    return { ...result, before, after };
  }

  /** Edit → base: the pull request now targets another branch (`pull_request.edited` with `changes.base`). */
  async retargetPullRequest(
    input: { repo: string; number: number; base: string; by: string } & DeliveryOptions,
  ): Promise<ActionResult & { pull: StandinPull }> {
    const pull = this.requirePull(input.repo, input.number);
    const repo = this.requireRepo(pull.repo);
    this.requireUser(input.by);
    const from = { ref: pull.baseRef, sha: safe(() => this.baseSha(pull)) ?? '' };
    if (!resolveRef(repo.gitDir, `refs/heads/${input.base}`))
      throw new StandinError(422, `base branch ${input.base} does not exist`);
    pull.baseRef = input.base;
    pull.updatedAt = this.now();
    this.save();
    const changes = { base: { ref: { from: from.ref }, sha: { from: from.sha } } };
    const result = await this.emit(
      'pull_request',
      {
        action: 'edited',
        number: pull.number,
        changes,
        pull_request: this.pullJson(pull),
        repository: this.repoJson(repo),
        sender: this.userJson(input.by),
      },
      input,
    );
    return { ...result, pull };
  }

  /** The REST merge (PUT /pulls/{n}/merge), guarded by `sha` as GitHub guards it. */
  async mergePullRequest(input: {
    repo: string;
    number: number;
    by: string;
    sha?: string;
    commitTitle?: string;
  }): Promise<{ sha: string; merged: true; message: string }> {
    const pull = this.requirePull(input.repo, input.number);
    const repo = this.requireRepo(pull.repo);
    if (pull.merged) throw new StandinError(405, 'Pull Request is not mergeable (already merged)');
    if (pull.state !== 'open') throw new StandinError(405, 'Pull Request is not mergeable');
    if (input.sha && input.sha !== pull.headSha)
      throw new StandinError(409, 'Head branch was modified. Review and try the merge again.');
    const user = this.requireUser(input.by);
    const mergeSha = writeMergeCommit(repo.gitDir, {
      base: this.baseSha(pull),
      head: pull.headSha,
      message: input.commitTitle ?? `Merge pull request #${pull.number} from ${pull.headRef}\n\n${pull.title}`,
      committer: { name: user.name, email: user.email },
    });
    updateRef(repo.gitDir, `refs/heads/${pull.baseRef}`, mergeSha);
    pull.merged = true;
    pull.mergedBy = user.login;
    pull.mergeCommitSha = mergeSha;
    pull.state = 'closed';
    pull.mergedAt = pull.closedAt = pull.updatedAt = this.now();
    this.save();
    await this.emit(
      'pull_request',
      {
        action: 'closed',
        number: pull.number,
        pull_request: this.pullJson(pull),
        repository: this.repoJson(repo),
        sender: this.userJson(user.login),
      },
      {},
    );
    return { sha: mergeSha, merged: true, message: 'Pull Request successfully merged' };
  }

  // ---------- webhooks ----------

  /** GitHub's signature header value for a body. */
  static sign(body: string, secret: string): string {
    return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
  }

  async emit(event: string, payload: Record<string, unknown>, options: DeliveryOptions): Promise<ActionResult> {
    const delivery: StandinDelivery = {
      id: randomUUID(),
      event,
      action: typeof payload.action === 'string' ? payload.action : undefined,
      body: JSON.stringify(payload),
      createdAt: this.now(),
      attempts: [],
    };
    this.state.deliveries.push(delivery);
    if (this.state.deliveries.length > 500) this.state.deliveries.splice(0, this.state.deliveries.length - 500);
    this.save();
    if (options.deliver === false || !this.state.webhook) return { delivery };
    const status = await this.sendDelivery(delivery.id);
    return { delivery, status };
  }

  findDelivery(id: string): StandinDelivery {
    const delivery = this.state.deliveries.find((d) => d.id === id);
    if (!delivery) throw new StandinError(404, `no delivery ${id}`);
    return delivery;
  }

  /** Sends (or re-sends, with the same X-GitHub-Delivery, as GitHub's "Redeliver" does) a recorded delivery. */
  async sendDelivery(id: string): Promise<number | undefined> {
    const delivery = this.findDelivery(id);
    const hook = this.state.webhook;
    if (!hook) throw new StandinError(409, 'no webhook configured; set one first');
    const started = Date.now();
    let status: number | null = null;
    let response = '';
    try {
      const res = await fetch(hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'GitHub-Hookshot/standin',
          'x-github-event': delivery.event,
          'x-github-delivery': delivery.id,
          'x-github-hook-id': '1',
          'x-github-hook-installation-target-type': 'repository',
          'x-hub-signature-256': GitHubStandin.sign(delivery.body, hook.secret),
        },
        body: delivery.body,
        signal: AbortSignal.timeout(10_000),
      });
      status = res.status;
      response = (await res.text()).slice(0, 2000);
    } catch (error) {
      response = `delivery failed: ${(error as Error).message}`;
    }
    delivery.attempts.push({ at: new Date().toISOString(), status, response, durationMs: Date.now() - started });
    this.save();
    return status ?? undefined;
  }

  // ---------- JSON shapes (as GitHub's REST API and webhooks spell them) ----------

  userJson(login: string): Record<string, unknown> {
    const user = this.findUser(login) ?? { id: 0, login, type: 'User' as const };
    return {
      login: user.login,
      id: user.id,
      node_id: `U_${user.id}`,
      avatar_url: `${this.baseUrl}/avatars/${user.login}`,
      url: `${this.baseUrl}/users/${user.login}`,
      html_url: `${this.baseUrl}/${user.login}`,
      type: user.type,
      site_admin: false,
    };
  }

  /** Adds (or changes, or with `undefined` removes) a collaborator, as `PUT /repos/{o}/{r}/collaborators/{u}` does once accepted. */
  setCollaborator(fullName: string, login: string, role: CollaboratorRole | undefined): void {
    const repo = this.requireRepo(fullName);
    const user = this.requireUser(login);
    const collaborators = { ...repo.collaborators };
    if (role) collaborators[user.login.toLowerCase()] = role;
    else delete collaborators[user.login.toLowerCase()];
    repo.collaborators = collaborators;
    this.save();
  }

  /**
   * What a user may do in a repository, as GitHub's `permissions` object says it: the owner is admin, a
   * collaborator has their role, anyone else can pull a public repository; undefined = cannot see it.
   */
  permissionsOf(repo: StandinRepo, login: string): Record<string, boolean> | undefined {
    const role: CollaboratorRole | undefined =
      login.toLowerCase() === repo.owner.toLowerCase() ? 'admin' : repo.collaborators?.[login.toLowerCase()];
    if (!role && repo.private) return undefined;
    const rank = ['read', 'triage', 'write', 'maintain', 'admin'].indexOf(role ?? 'read');
    return { admin: rank >= 4, maintain: rank >= 3, push: rank >= 2, triage: rank >= 1, pull: true };
  }

  repoJson(repo: StandinRepo): Record<string, unknown> {
    const fullName = `${repo.owner}/${repo.name}`;
    return {
      id: repo.id,
      node_id: `R_${repo.id}`,
      name: repo.name,
      full_name: fullName,
      private: repo.private === true,
      visibility: repo.private ? 'private' : 'public',
      owner: { ...this.userJson(repo.owner), type: 'Organization' },
      html_url: `${this.baseUrl}/${fullName}`,
      url: `${this.baseUrl}/repos/${fullName}`,
      clone_url: repo.gitDir,
      default_branch: repo.defaultBranch,
    };
  }

  pullJson(pull: StandinPull): Record<string, unknown> {
    const repo = this.requireRepo(pull.repo);
    const repoJson = this.repoJson(repo);
    let commits = 0;
    let files: ChangedFile[] = [];
    try {
      commits = countCommitsBetween(repo.gitDir, this.baseSha(pull), pull.headSha);
      files = this.pullFiles(pull);
    } catch {
      // a merged pull request's commits are reachable from base: counts are informative only
    }
    return {
      url: `${this.baseUrl}/repos/${pull.repo}/pulls/${pull.number}`,
      id: pull.id,
      node_id: `PR_${pull.id}`,
      html_url: `${this.baseUrl}/${pull.repo}/pull/${pull.number}`,
      number: pull.number,
      state: pull.state,
      locked: false,
      title: pull.title,
      user: this.userJson(pull.author),
      body: pull.body,
      created_at: pull.createdAt,
      updated_at: pull.updatedAt,
      closed_at: pull.closedAt ?? null,
      merged_at: pull.mergedAt ?? null,
      merge_commit_sha: pull.mergeCommitSha ?? null,
      draft: false,
      head: {
        label: `${repo.owner}:${pull.headRef}`,
        ref: pull.headRef,
        sha: pull.headSha,
        user: this.userJson(pull.author),
        repo: repoJson,
      },
      base: {
        label: `${repo.owner}:${pull.baseRef}`,
        ref: pull.baseRef,
        sha: safe(() => this.baseSha(pull)) ?? '',
        user: repoJson.owner,
        repo: repoJson,
      },
      author_association: 'MEMBER',
      merged: pull.merged,
      mergeable: pull.state === 'open' ? true : null,
      merged_by: pull.mergedBy ? this.userJson(pull.mergedBy) : null,
      commits,
      additions: files.reduce((n, f) => n + f.additions, 0),
      deletions: files.reduce((n, f) => n + f.deletions, 0),
      changed_files: files.length,
    };
  }

  /** Reviews: the webhook spells the state in lower case (`approved`), the REST API in upper case (`APPROVED`). */
  reviewJson(review: StandinReview, shape: 'rest' | 'webhook'): Record<string, unknown> {
    return {
      id: review.id,
      node_id: `PRR_${review.id}`,
      user: this.userJson(review.user),
      body: review.body,
      commit_id: review.commitId,
      submitted_at: review.submittedAt,
      state: shape === 'webhook' ? review.state.toLowerCase() : review.state,
      html_url: `${this.baseUrl}/${review.repo}/pull/${review.pull}#pullrequestreview-${review.id}`,
      pull_request_url: `${this.baseUrl}/repos/${review.repo}/pulls/${review.pull}`,
      author_association: 'MEMBER',
    };
  }

  commitJson(repo: StandinRepo, commit: GitCommit): Record<string, unknown> {
    const fullName = `${repo.owner}/${repo.name}`;
    const author = this.userByEmail(commit.author.email);
    const committer = this.userByEmail(commit.committer.email);
    return {
      sha: commit.sha,
      node_id: `C_${commit.sha}`,
      commit: {
        author: commit.author,
        committer: commit.committer,
        message: commit.message,
        tree: { sha: commit.tree },
        comment_count: 0,
      },
      url: `${this.baseUrl}/repos/${fullName}/commits/${commit.sha}`,
      html_url: `${this.baseUrl}/${fullName}/commit/${commit.sha}`,
      author: author ? this.userJson(author.login) : null,
      committer: committer ? this.userJson(committer.login) : null,
      parents: commit.parents.map((sha) => ({ sha, url: `${this.baseUrl}/repos/${fullName}/commits/${sha}` })),
    };
  }
}

/** What each webhook event needs the App to hold (GitHub refuses a manifest subscribing to an event without it). */
export const EVENT_PERMISSIONS: Record<string, string> = {
  pull_request: 'pull_requests',
  pull_request_review: 'pull_requests',
  pull_request_review_comment: 'pull_requests',
  pull_request_review_thread: 'pull_requests',
  push: 'contents',
  create: 'contents',
  delete: 'contents',
  release: 'contents',
  check_run: 'checks',
  check_suite: 'checks',
  deployment: 'deployments',
  deployment_status: 'deployments',
  status: 'statuses',
  issues: 'issues',
  issue_comment: 'issues',
  label: 'metadata',
  repository: 'metadata',
  public: 'metadata',
  star: 'metadata',
  watch: 'metadata',
};

const PERMISSIONS = new Set([
  'actions',
  'administration',
  'checks',
  'contents',
  'deployments',
  'environments',
  'issues',
  'metadata',
  'packages',
  'pages',
  'pull_requests',
  'repository_hooks',
  'repository_projects',
  'secret_scanning_alerts',
  'secrets',
  'security_events',
  'single_file',
  'statuses',
  'vulnerability_alerts',
  'workflows',
  'members',
  'organization_administration',
  'organization_hooks',
  'organization_projects',
  'organization_secrets',
  'email_addresses',
]);

/** The checks GitHub makes before it shows the "Create GitHub App" page for a manifest; a 422 names what is wrong. */
export function validateManifest(raw: unknown): AppManifest {
  const m = raw as Partial<AppManifest> | null;
  const bad = (why: string): never => {
    throw new StandinError(422, `Invalid GitHub App manifest: ${why}`);
  };
  if (!m || typeof m !== 'object' || Array.isArray(m)) bad('expected a JSON object');
  const manifest = m as Partial<AppManifest>;
  if (typeof manifest.name !== 'string' || manifest.name.trim() === '' || manifest.name.length > 34)
    bad('name is required (at most 34 characters)');
  if (typeof manifest.url !== 'string' || !/^https?:\/\//.test(manifest.url))
    bad('url is required (the homepage, http or https)');
  const hook = manifest.hook_attributes;
  if (hook !== undefined && (typeof hook.url !== 'string' || !/^https?:\/\//.test(hook.url)))
    bad('hook_attributes.url must be an http(s) URL');
  if (manifest.redirect_url !== undefined && !/^https?:\/\//.test(String(manifest.redirect_url)))
    bad('redirect_url must be an http(s) URL');
  const permissions = manifest.default_permissions ?? {};
  for (const [name, level] of Object.entries(permissions)) {
    if (!PERMISSIONS.has(name)) bad(`unknown permission ${JSON.stringify(name)} in default_permissions`);
    if (!['read', 'write', 'admin'].includes(level)) bad(`default_permissions.${name} must be read, write or admin`);
  }
  for (const event of manifest.default_events ?? []) {
    const needs = EVENT_PERMISSIONS[event];
    if (!needs) bad(`Default events unsupported: ${event}`);
    if (!permissions[needs as string]) bad(`Default events unsupported: ${event} (needs the ${needs} permission)`);
  }
  if ((manifest.default_events?.length ?? 0) > 0 && !hook)
    bad('hook_attributes.url is required to subscribe to events');
  return manifest as AppManifest;
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

function git_symbolic(gitDir: string, branch: string): void {
  writeFileSync(join(gitDir, 'HEAD'), `ref: refs/heads/${branch}\n`);
}
