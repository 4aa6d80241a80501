// HTTP face of the stand-in: GitHub's REST API (the endpoints foureyes calls), served at the root and, as
// GitHub Enterprise Server serves it, under /api/v3; the two web pages of the App-manifest flow; and a
// control API under /_standin/ through which tests and `foureyes sandbox` act as people. An endpoint it does
// not know answers 404 as GitHub does, and is marked in the request record so a test can fail on it. Fault
// injection answers chosen requests with 500, 429 + Retry-After, or slowly.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createPublicKey, randomBytes, verify as verifySignature } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import { GitHubStandin, StandinError, type StandinOptions } from './standin.ts';
import type { AppManifest, CollaboratorRole, StandinApp, StandinCheckRun, StandinToken } from './model.ts';

/** GitHub's caps on a pull request's listed commits and files. */
export const MAX_LISTED_COMMITS = 250;
export const MAX_LISTED_FILES = 3000;

type Json = Record<string, unknown>;

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: string[];
  body: Json;
  standin: GitHubStandin;
}

type Handler = (ctx: Ctx) => Promise<unknown> | unknown;
type Table = Array<[string, RegExp, Handler]>;
type Route = (method: string, path: string, handler: Handler) => void;

/** Adds routes to a table; a `:name` in a path is one segment, handed to the handler in `ctx.params`. */
function router(table: Table, prefix = ''): Route {
  return (method, path, handler) => {
    table.push([method, new RegExp(`^${prefix}${path.replace(/:\w+/g, '([^/]+)')}$`), handler]);
  };
}

/** A repository's REST path; its owner and name are ctx.params[0] and [1]. */
const repoRoute = '/repos/:owner/:repo';

interface Auth {
  login: string;
  kind: StandinToken['kind'] | 'app';
  appId?: number;
  installationId?: number;
}

/** One request to the REST API or the web pages (not the control API). */
export interface StandinRequest {
  method: string;
  /** As sent, with the /api/v3 prefix when there was one. */
  path: string;
  query: string;
  /** The Host header: which host the caller thought it was talking to. */
  host: string;
  /** false: no such endpoint (GitHub answers 404 too); foureyes must never call one. */
  known: boolean;
  answeredAt: number;
  status: number;
}

/** GitHub Enterprise Server serves the REST API under this prefix. */
const GHES_PREFIX = '/api/v3';

const DOCS = 'https://docs.github.com/rest';

function fail(status: number, message: string): never {
  throw new StandinError(status, message);
}

function str(body: Json, key: string, required = true): string {
  const value = body[key];
  if (typeof value === 'string' && value.length > 0) return value;
  if (required) fail(422, `Invalid request.\n\n"${key}" is missing or not a string.`);
  return '';
}

function base64url(text: string): Buffer {
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

export class StandinServer {
  server: Server;
  url = '';
  private readonly rest: Table = [];
  private readonly web: Table = [];
  private readonly control: Table = [];
  /** The REST and web requests answered (not the control API), oldest first, at most 10 000: what a test may assert was read when. */
  readonly requests: StandinRequest[] = [];

  constructor(readonly standin: GitHubStandin) {
    this.server = createServer((req, res) => void this.dispatch(req, res));
    this.defineRest();
    this.defineWeb();
    this.defineControl();
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, host, resolve));
    const address = this.server.address() as AddressInfo;
    this.url = `http://${host}:${address.port}`;
    this.standin.baseUrl = this.url;
    return this.url;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---------- dispatch ----------

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin');
    const isControl = url.pathname.startsWith('/_standin/');
    // The REST API answers at the root (github.com's api host) and under /api/v3 (GitHub Enterprise Server).
    const path =
      url.pathname === GHES_PREFIX || url.pathname.startsWith(`${GHES_PREFIX}/`)
        ? url.pathname.slice(GHES_PREFIX.length) || '/'
        : url.pathname;
    let known = false;
    if (!isControl) {
      res.once('finish', () => {
        this.requests.push({
          method: req.method ?? '',
          path: url.pathname,
          query: url.search,
          host: req.headers.host ?? '',
          known,
          answeredAt: Date.now(),
          status: res.statusCode,
        });
        if (this.requests.length > 10_000) this.requests.splice(0, this.requests.length - 10_000);
      });
    }
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: Json = {};
      if (/^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? ''))
        body = Object.fromEntries(new URLSearchParams(raw));
      else if (raw.trim()) {
        try {
          body = JSON.parse(raw) as Json;
        } catch {
          fail(400, 'Problems parsing JSON');
        }
      }
      if (!isControl && (await this.injectFault(req, res, path))) return;
      // Web pages live on the web host only, never under the API prefix.
      const tables = isControl ? [this.control] : path === url.pathname ? [this.web, this.rest] : [this.rest];
      for (const table of tables) {
        for (const [method, pattern, handler] of table) {
          const m = pattern.exec(path);
          if (!m || method !== req.method) continue;
          known = true;
          const ctx = { req, res, url, params: m.slice(1).map(decodeURIComponent), body, standin: this.standin };
          if (table === this.rest) {
            this.requireInstallationCovers(ctx, path);
            this.requireUserCanSee(ctx, path);
          }
          const result = await handler(ctx);
          if (!res.headersSent) send(res, req.method === 'POST' ? 201 : 200, result ?? {});
          return;
        }
      }
      fail(404, 'Not Found');
    } catch (error) {
      if (res.headersSent) return void res.end();
      if (error instanceof StandinError)
        send(res, error.status, { message: error.message, documentation_url: DOCS, status: String(error.status) });
      else send(res, 500, { message: `stand-in error: ${(error as Error).message}` });
    }
  }

  private async injectFault(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    const faults = this.standin.state.faults;
    const fault = faults.find(
      (f) => f.remaining !== 0 && (!f.method || f.method === req.method) && new RegExp(f.path).test(path),
    );
    if (!fault) return false;
    if (fault.remaining > 0) fault.remaining--;
    if (fault.delayMs) await sleep(fault.delayMs);
    if (!fault.status) return false;
    const headers: Record<string, string> = {};
    if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
    if (fault.status === 429 || fault.status === 403) {
      headers['x-ratelimit-remaining'] = '0';
      headers['x-ratelimit-reset'] = String(Math.ceil(Date.now() / 1000) + (fault.retryAfter ?? 60));
    }
    send(
      res,
      fault.status,
      {
        message: fault.status === 429 ? 'API rate limit exceeded (stand-in fault)' : `stand-in fault ${fault.status}`,
        documentation_url: DOCS,
      },
      headers,
    );
    return true;
  }

  // ---------- authentication ----------

  private auth(ctx: Ctx, options: { jwt?: boolean } = {}): Auth {
    const header = ctx.req.headers.authorization;
    if (!header) fail(401, 'Requires authentication');
    const value = header.replace(/^(token|bearer)\s+/i, '').trim();
    if (options.jwt && value.split('.').length === 3) return this.verifyJwt(value);
    const token = this.standin.state.tokens.find((t) => t.token === value);
    if (!token || (token.expiresAt && Date.parse(token.expiresAt) < Date.now())) fail(401, 'Bad credentials');
    return {
      login: token.login,
      kind: token.kind,
      ...(token.installationId !== undefined ? { installationId: token.installationId } : {}),
    };
  }

  /** An installation token reaches only the repositories its installation covers; others are 404, as on GitHub. */
  private requireInstallationCovers(ctx: Ctx, path: string): void {
    const repo = /^\/repos\/([^/]+)\/([^/]+)/.exec(path);
    const value = ctx.req.headers.authorization?.replace(/^(token|bearer)\s+/i, '').trim();
    const token =
      repo && value ? this.standin.state.tokens.find((t) => t.token === value && t.kind === 'installation') : undefined;
    if (!repo || !token) return;
    const app = this.standin.state.apps.find((a) => a.installationId === token.installationId);
    if (
      !app ||
      !this.standin.appCovers(app, `${decodeURIComponent(repo[1] ?? '')}/${decodeURIComponent(repo[2] ?? '')}`)
    )
      fail(404, 'Not Found');
  }

  /** A private repository does not exist for a user who is neither its owner nor a collaborator: 404, as on GitHub. */
  private requireUserCanSee(ctx: Ctx, path: string): void {
    const repoPath = /^\/repos\/([^/]+)\/([^/]+)/.exec(path);
    const value = ctx.req.headers.authorization?.replace(/^(token|bearer)\s+/i, '').trim();
    const token =
      repoPath && value ? this.standin.state.tokens.find((t) => t.token === value && t.kind === 'user') : undefined;
    if (!repoPath || !token) return;
    const repo = this.standin.findRepo(
      `${decodeURIComponent(repoPath[1] ?? '')}/${decodeURIComponent(repoPath[2] ?? '')}`,
    );
    if (repo && !this.standin.permissionsOf(repo, token.login)) fail(404, 'Not Found');
  }

  private verifyJwt(jwt: string): Auth {
    const [h, p, s] = jwt.split('.') as [string, string, string];
    let claims: { iss?: string | number; exp?: number; iat?: number };
    let header: { alg?: string };
    try {
      header = JSON.parse(base64url(h).toString('utf8')) as typeof header;
      claims = JSON.parse(base64url(p).toString('utf8')) as typeof claims;
    } catch {
      fail(401, 'A JSON web token could not be decoded');
    }
    // GitHub accepts RS256 only: an unsigned ("alg": "none") or HMAC token is refused before any key is looked at.
    if (header.alg !== 'RS256') fail(401, 'A JSON web token could not be decoded');
    const app = this.standin.state.apps.find((a) => String(a.id) === String(claims.iss));
    if (!app) fail(401, `Integration not found`);
    const ok = verifySignature('RSA-SHA256', Buffer.from(`${h}.${p}`), createPublicKey(app.publicKeyPem), base64url(s));
    if (!ok) fail(401, 'A JSON web token could not be decoded');
    const now = Math.floor(Date.now() / 1000);
    if (!claims.exp || claims.exp < now || claims.exp - (claims.iat ?? now) > 660)
      fail(401, "'Expiration time' claim ('exp') is too far in the future or expired");
    return { login: `${app.slug}[bot]`, kind: 'app', appId: app.id };
  }

  private repoOf(ctx: Ctx) {
    return this.standin.requireRepo(`${ctx.params[0]}/${ctx.params[1]}`);
  }

  // ---------- REST ----------

  private defineRest(): void {
    const R = router(this.rest);
    this.restAccounts(R);
    this.restPulls(R);
    this.restComments(R);
    this.restChecks(R);
    this.restDeployments(R);
  }

  /** The user, the GitHub App (JWT) and its installations, the manifest conversion. */
  private restAccounts(R: Route): void {
    const s = this.standin;
    R('GET', '/user', (ctx) => {
      const auth = this.auth(ctx);
      if (auth.kind !== 'user') fail(403, 'Resource not accessible by integration');
      const user = s.requireUser(auth.login);
      return { ...s.userJson(user.login), name: user.name, email: user.email };
    });

    // GitHub App endpoints (JWT)
    R('GET', '/app', (ctx) => {
      const auth = this.auth(ctx, { jwt: true });
      const app = s.state.apps.find((a) => a.id === auth.appId) ?? fail(401, 'A JSON web token is required');
      return { id: app.id, slug: app.slug, name: app.slug, owner: s.userJson('standin') };
    });
    const jwtApp = (ctx: Ctx) => {
      const auth = this.auth(ctx, { jwt: true });
      if (auth.kind !== 'app') fail(401, 'A JSON web token could not be decoded');
      return s.state.apps.find((a) => a.id === auth.appId) ?? fail(401, 'A JSON web token could not be decoded');
    };
    R('GET', `${repoRoute}/installation`, (ctx) => {
      const app = jwtApp(ctx);
      const repo = s.findRepo(`${ctx.params[0]}/${ctx.params[1]}`);
      if (!repo || !s.appCovers(app, `${repo.owner}/${repo.name}`)) fail(404, 'Not Found');
      return this.installationJson(app);
    });
    R('GET', '/app/installations/:id', (ctx) => {
      const app = jwtApp(ctx);
      if (app.installationId === undefined || String(app.installationId) !== ctx.params[0]) fail(404, 'Not Found');
      return this.installationJson(app);
    });
    R('POST', '/app/installations/:id/access_tokens', (ctx) => {
      const app = jwtApp(ctx);
      if (app.installationId === undefined || String(app.installationId) !== ctx.params[0]) fail(404, 'Not Found');
      const token: StandinToken = {
        token: `ghs_${randomBytes(18).toString('hex')}`,
        kind: 'installation',
        login: `${app.slug}[bot]`,
        installationId: app.installationId,
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      };
      s.state.tokens.push(token);
      s.save();
      return {
        token: token.token,
        expires_at: token.expiresAt,
        permissions: this.appPermissions(app),
        repository_selection: app.repositories ? 'selected' : 'all',
      };
    });
    R('GET', '/installation/repositories', (ctx) => {
      const auth = this.auth(ctx);
      if (auth.kind !== 'installation') fail(403, 'You must authenticate with an installation access token.');
      const app = s.state.apps.find((a) => a.installationId === auth.installationId) ?? fail(404, 'Not Found');
      const repos = s.state.repos.filter((r) => s.appCovers(app, `${r.owner}/${r.name}`));
      const page = paginateItems(ctx, repos);
      return {
        total_count: repos.length,
        repository_selection: app.repositories ? 'selected' : 'all',
        repositories: page.map((r) => s.repoJson(r)),
      };
    });
    // The App-manifest flow's last step: no authentication, the one-time code is the credential.
    R('POST', '/app-manifests/:code/conversions', (ctx) => {
      const { app, privateKey, webhookSecret, clientSecret } = s.convertManifest(ctx.params[0] ?? '');
      const manifest = app.manifest as AppManifest;
      return {
        id: app.id,
        slug: app.slug,
        node_id: `A_${app.id}`,
        owner: s.userJson(app.owner ?? 'standin'),
        name: manifest.name,
        description: manifest.description ?? null,
        external_url: manifest.url,
        html_url: `${this.url}/apps/${app.slug}`,
        created_at: s.now(),
        updated_at: s.now(),
        permissions: manifest.default_permissions ?? {},
        events: manifest.default_events ?? [],
        client_id: `Iv1.${app.id.toString(16).padStart(16, '0')}`,
        client_secret: clientSecret,
        webhook_secret: webhookSecret,
        pem: privateKey,
      };
    });
  }

  /** The repository, its pull requests (commits, files, reviews, merge) and its commits. */
  private restPulls(R: Route): void {
    const s = this.standin;
    R('GET', repoRoute, (ctx) => {
      const auth = this.auth(ctx);
      const repo = this.repoOf(ctx);
      // GitHub adds what the authenticated user may do (requireUserCanSee already answered 404 to a stranger).
      const permissions = auth.kind === 'user' ? s.permissionsOf(repo, auth.login) : undefined;
      return { ...s.repoJson(repo), ...(permissions ? { permissions } : {}) };
    });

    // pull requests
    R('GET', `${repoRoute}/pulls`, (ctx) => {
      this.auth(ctx);
      const repo = this.repoOf(ctx);
      const state = ctx.url.searchParams.get('state') ?? 'open';
      const pulls = s.state.pulls.filter(
        (p) => p.repo === `${repo.owner}/${repo.name}` && (state === 'all' || p.state === state),
      );
      return paginate(
        ctx,
        pulls.map((p) => s.pullJson(p)),
      );
    });
    R('GET', `${repoRoute}/pulls/:number`, (ctx) => {
      this.auth(ctx);
      return s.pullJson(s.requirePull(`${ctx.params[0]}/${ctx.params[1]}`, Number(ctx.params[2])));
    });
    R('GET', `${repoRoute}/pulls/:number/commits`, (ctx) => {
      this.auth(ctx);
      const pull = s.requirePull(`${ctx.params[0]}/${ctx.params[1]}`, Number(ctx.params[2]));
      const repo = this.repoOf(ctx);
      // GitHub lists at most 250 commits of a pull request (the PR's `commits` count says how many there are).
      return paginate(
        ctx,
        s
          .pullCommits(pull)
          .slice(0, MAX_LISTED_COMMITS)
          .map((c) => s.commitJson(repo, c)),
      );
    });
    R('GET', `${repoRoute}/pulls/:number/files`, (ctx) => {
      this.auth(ctx);
      const pull = s.requirePull(`${ctx.params[0]}/${ctx.params[1]}`, Number(ctx.params[2]));
      return paginate(
        ctx,
        // ... and at most 3000 files (`changed_files` counts them all).
        s
          .pullFiles(pull)
          .slice(0, MAX_LISTED_FILES)
          .map((f) => ({
            filename: f.filename,
            status: f.status,
            additions: f.additions,
            deletions: f.deletions,
            changes: f.additions + f.deletions,
          })),
      );
    });
    R('GET', `${repoRoute}/pulls/:number/reviews`, (ctx) => {
      this.auth(ctx);
      const pull = s.requirePull(`${ctx.params[0]}/${ctx.params[1]}`, Number(ctx.params[2]));
      return paginate(
        ctx,
        s.state.reviews
          .filter((r) => r.repo === pull.repo && r.pull === pull.number)
          .map((r) => s.reviewJson(r, 'rest')),
      );
    });
    R('PUT', `${repoRoute}/pulls/:number/merge`, async (ctx) => {
      const auth = this.auth(ctx);
      return s.mergePullRequest({
        repo: `${ctx.params[0]}/${ctx.params[1]}`,
        number: Number(ctx.params[2]),
        by: auth.login,
        sha: str(ctx.body, 'sha', false) || undefined,
        commitTitle: str(ctx.body, 'commit_title', false) || undefined,
      });
    });
    // GitHub's compare: base...head, with how far head is ahead of and behind the base.
    R('GET', `${repoRoute}/compare/:basehead`, (ctx) => {
      this.auth(ctx);
      const repo = this.repoOf(ctx);
      const [base, head] = decodeURIComponent(ctx.params[2] ?? '').split('...') as [string, string | undefined];
      if (!head) fail(404, 'Not Found');
      return s.compare(repo, base, head);
    });
    R('GET', `${repoRoute}/commits/:ref`, (ctx) => {
      this.auth(ctx);
      const repo = this.repoOf(ctx);
      return s.commitJson(repo, s.commit(repo, ctx.params[2] ?? ''));
    });
  }

  /** Issue comments: foureyes' summary comment on a pull request. */
  private restComments(R: Route): void {
    const s = this.standin;
    R('GET', `${repoRoute}/issues/:number/comments`, (ctx) => {
      this.auth(ctx);
      const repo = this.repoOf(ctx);
      const number = Number(ctx.params[2]);
      s.requirePull(`${repo.owner}/${repo.name}`, number);
      return paginate(
        ctx,
        s.state.comments
          .filter((c) => c.repo === `${repo.owner}/${repo.name}` && c.issue === number)
          .map((c) => this.commentJson(c.id)),
      );
    });
    R('POST', `${repoRoute}/issues/:number/comments`, (ctx) => {
      const auth = this.auth(ctx);
      const repo = this.repoOf(ctx);
      const number = Number(ctx.params[2]);
      s.requirePull(`${repo.owner}/${repo.name}`, number);
      const body = str(ctx.body, 'body');
      if (body.length > 65536) fail(422, 'Validation Failed: body is too long (maximum is 65536 characters)');
      const at = s.now();
      const comment = {
        repo: `${repo.owner}/${repo.name}`,
        id: s.nextId(),
        issue: number,
        user: auth.login,
        body,
        createdAt: at,
        updatedAt: at,
        updates: 0,
      };
      s.state.comments.push(comment);
      s.save();
      return this.commentJson(comment.id);
    });
    R('PATCH', `${repoRoute}/issues/comments/:id`, (ctx) => {
      const auth = this.auth(ctx);
      const comment = s.state.comments.find((c) => c.id === Number(ctx.params[2])) ?? fail(404, 'Not Found');
      if (comment.user !== auth.login) fail(403, 'Resource not accessible by integration');
      comment.body = str(ctx.body, 'body');
      comment.updatedAt = s.now();
      comment.updates++;
      s.save();
      return this.commentJson(comment.id);
    });
  }

  /** Check runs (GitHub Apps only, as on GitHub) and commit statuses. */
  private restChecks(R: Route): void {
    const s = this.standin;
    R('POST', `${repoRoute}/check-runs`, (ctx) => {
      const auth = this.auth(ctx);
      if (auth.kind !== 'installation') fail(403, 'You must authenticate via a GitHub App.');
      const repo = this.repoOf(ctx);
      const headSha = str(ctx.body, 'head_sha');
      s.commit(repo, headSha);
      const run: StandinCheckRun = {
        repo: `${repo.owner}/${repo.name}`,
        id: s.nextId(),
        headSha,
        name: str(ctx.body, 'name'),
        status: 'queued',
        conclusion: null,
        startedAt: s.now(),
        completedAt: null,
        appId: s.state.apps.find((a) => `${a.slug}[bot]` === auth.login)?.id,
        updates: 0,
      };
      applyCheckRun(run, ctx.body);
      s.state.checkRuns.push(run);
      s.save();
      return this.checkRunJson(run);
    });
    R('PATCH', `${repoRoute}/check-runs/:id`, (ctx) => {
      const auth = this.auth(ctx);
      if (auth.kind !== 'installation') fail(403, 'You must authenticate via a GitHub App.');
      const run = s.state.checkRuns.find((r) => r.id === Number(ctx.params[2])) ?? fail(404, 'Not Found');
      applyCheckRun(run, ctx.body);
      run.updates++;
      s.save();
      return this.checkRunJson(run);
    });
    R('GET', `${repoRoute}/commits/:ref/check-runs`, (ctx) => {
      this.auth(ctx);
      const repo = this.repoOf(ctx);
      const name = ctx.url.searchParams.get('check_name');
      const runs = s.state.checkRuns.filter(
        (r) => r.repo === `${repo.owner}/${repo.name}` && r.headSha === ctx.params[2] && (!name || r.name === name),
      );
      const page = paginateItems(ctx, runs);
      return { total_count: runs.length, check_runs: page.map((r) => this.checkRunJson(r)) };
    });

    // commit statuses
    R('POST', `${repoRoute}/statuses/:sha`, (ctx) => {
      const auth = this.auth(ctx);
      const repo = this.repoOf(ctx);
      const sha = ctx.params[2] ?? '';
      s.commit(repo, sha);
      const state = str(ctx.body, 'state');
      if (!['error', 'failure', 'pending', 'success'].includes(state))
        fail(422, 'Validation Failed: state is not included in the list');
      const status = {
        repo: `${repo.owner}/${repo.name}`,
        id: s.nextId(),
        sha,
        context: str(ctx.body, 'context', false) || 'default',
        state: state as 'pending',
        description: (ctx.body.description as string | undefined) ?? null,
        targetUrl: (ctx.body.target_url as string | undefined) ?? null,
        creator: auth.login,
        createdAt: s.now(),
      };
      s.state.statuses.push(status);
      s.save();
      return this.statusJson(status.id);
    });
    R('GET', `${repoRoute}/commits/:ref/statuses`, (ctx) => {
      this.auth(ctx);
      const repo = this.repoOf(ctx);
      const list = s.state.statuses
        .filter((x) => x.repo === `${repo.owner}/${repo.name}` && x.sha === ctx.params[2])
        .reverse();
      return paginate(
        ctx,
        list.map((x) => this.statusJson(x.id)),
      );
    });
    R('GET', `${repoRoute}/commits/:ref/status`, (ctx) => {
      this.auth(ctx);
      const repo = this.repoOf(ctx);
      const latest = new Map<string, number>();
      for (const x of s.state.statuses)
        if (x.repo === `${repo.owner}/${repo.name}` && x.sha === ctx.params[2]) latest.set(x.context, x.id);
      const statuses = [...latest.values()].map((id) => this.statusJson(id));
      const states = statuses.map((x) => x.state as string);
      const state = states.some((x) => x === 'failure' || x === 'error')
        ? 'failure'
        : states.length > 0 && states.every((x) => x === 'success')
          ? 'success'
          : 'pending';
      return { state, sha: ctx.params[2], total_count: statuses.length, statuses };
    });
  }

  /** Deployments and their statuses. */
  private restDeployments(R: Route): void {
    const s = this.standin;
    R('POST', `${repoRoute}/deployments`, (ctx) => {
      const auth = this.auth(ctx);
      const repo = this.repoOf(ctx);
      const ref = str(ctx.body, 'ref');
      const sha = /^[0-9a-f]{40}$/.test(ref) ? ref : ((): string => fail(422, `No ref found for: ${ref}`))();
      s.commit(repo, sha);
      const environment = str(ctx.body, 'environment', false) || 'production';
      const deployment = {
        repo: `${repo.owner}/${repo.name}`,
        id: s.nextId(),
        sha,
        ref,
        task: str(ctx.body, 'task', false) || 'deploy',
        environment,
        description: (ctx.body.description as string | undefined) ?? null,
        payload: ctx.body.payload ?? {},
        creator: auth.login,
        productionEnvironment: Boolean(ctx.body.production_environment ?? environment === 'production'),
        transientEnvironment: Boolean(ctx.body.transient_environment ?? false),
        createdAt: s.now(),
      };
      s.state.deployments.push(deployment);
      s.save();
      return this.deploymentJson(deployment.id);
    });
    R('GET', `${repoRoute}/deployments`, (ctx) => {
      this.auth(ctx);
      const repo = this.repoOf(ctx);
      const q = ctx.url.searchParams;
      const list = s.state.deployments
        .filter((d) => d.repo === `${repo.owner}/${repo.name}`)
        .filter(
          (d) =>
            (!q.get('sha') || d.sha === q.get('sha')) &&
            (!q.get('ref') || d.ref === q.get('ref')) &&
            (!q.get('environment') || d.environment === q.get('environment')) &&
            (!q.get('task') || d.task === q.get('task')),
        )
        .reverse();
      return paginate(
        ctx,
        list.map((d) => this.deploymentJson(d.id)),
      );
    });
    R('POST', `${repoRoute}/deployments/:id/statuses`, (ctx) => {
      const auth = this.auth(ctx);
      const deployment = s.state.deployments.find((d) => d.id === Number(ctx.params[2])) ?? fail(404, 'Not Found');
      const state = str(ctx.body, 'state');
      if (!['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success'].includes(state))
        fail(422, 'Validation Failed: state is not included in the list');
      const status = {
        repo: deployment.repo,
        id: s.nextId(),
        deploymentId: deployment.id,
        state: state as 'pending',
        description: str(ctx.body, 'description', false),
        environmentUrl: str(ctx.body, 'environment_url', false),
        logUrl: str(ctx.body, 'log_url', false),
        creator: auth.login,
        createdAt: s.now(),
      };
      s.state.deploymentStatuses.push(status);
      s.save();
      return this.deploymentStatusJson(status.id);
    });
    R('GET', `${repoRoute}/deployments/:id/statuses`, (ctx) => {
      this.auth(ctx);
      const id = Number(ctx.params[2]);
      if (!s.state.deployments.some((d) => d.id === id)) fail(404, 'Not Found');
      return paginate(
        ctx,
        s.state.deploymentStatuses
          .filter((x) => x.deploymentId === id)
          .reverse()
          .map((x) => this.deploymentStatusJson(x.id)),
      );
    });
  }

  installationJson(app: StandinApp): Json {
    const account = app.owner ?? 'standin';
    return {
      id: app.installationId,
      app_id: app.id,
      app_slug: app.slug,
      account: this.standin.userJson(account),
      target_type: 'Organization',
      repository_selection: app.repositories ? 'selected' : 'all',
      permissions: this.appPermissions(app),
      events: app.manifest?.default_events ?? ['pull_request', 'pull_request_review'],
      html_url: `${this.url}/organizations/${account}/settings/installations/${app.installationId}`,
    };
  }

  /** An App from a manifest holds what it asked for; one added directly holds what foureyes may use. */
  private appPermissions(app: StandinApp): Record<string, string> {
    return (
      app.manifest?.default_permissions ?? {
        checks: 'write',
        pull_requests: 'write',
        statuses: 'write',
        deployments: 'write',
        contents: 'write',
        issues: 'write',
        metadata: 'read',
      }
    );
  }

  // ---------- web pages (the browser's side of the App-manifest flow) ----------

  private defineWeb(): void {
    const W = router(this.web);
    // The form a manifest is posted to. GitHub shows "Create GitHub App for <account>"; the stand-in acts
    // as if the person clicked it and redirects to the manifest's redirect_url with the code and the state.
    const confirm = (ctx: Ctx, owner: string) => {
      let manifest: unknown;
      try {
        manifest = JSON.parse(str(ctx.body, 'manifest'));
      } catch (error) {
        if (error instanceof StandinError) throw error;
        fail(422, 'Invalid GitHub App manifest: not JSON');
      }
      const { code, redirectUrl } = this.standin.confirmManifest(manifest, owner);
      if (!redirectUrl) return { message: 'App created; the manifest has no redirect_url', code };
      const target = new URL(redirectUrl);
      target.searchParams.set('code', code);
      const state = ctx.url.searchParams.get('state');
      if (state) target.searchParams.set('state', state);
      ctx.res.writeHead(302, { location: target.toString(), 'content-type': 'text/html; charset=utf-8' });
      ctx.res.end(`<a href="${target.toString().replace(/&/g, '&amp;').replace(/"/g, '&quot;')}">continue</a>`);
      return undefined;
    };
    W('POST', '/settings/apps/new', (ctx) =>
      confirm(ctx, this.standin.state.users.find((u) => u.type === 'User')?.login ?? 'standin'),
    );
    W('POST', '/organizations/:org/settings/apps/new', (ctx) => confirm(ctx, ctx.params[0] ?? 'standin'));
  }

  commentJson(id: number): Json {
    const c = this.standin.state.comments.find((x) => x.id === id) ?? fail(404, 'Not Found');
    return {
      id: c.id,
      node_id: `IC_${c.id}`,
      url: `${this.url}/repos/${c.repo}/issues/comments/${c.id}`,
      html_url: `${this.url}/${c.repo}/pull/${c.issue}#issuecomment-${c.id}`,
      issue_url: `${this.url}/repos/${c.repo}/issues/${c.issue}`,
      body: c.body,
      user: this.standin.userJson(c.user),
      created_at: c.createdAt,
      updated_at: c.updatedAt,
      author_association: 'NONE',
    };
  }

  checkRunJson(run: StandinCheckRun): Json {
    const app = this.standin.state.apps.find((a) => a.id === run.appId);
    return {
      id: run.id,
      head_sha: run.headSha,
      node_id: `CR_${run.id}`,
      external_id: run.externalId ?? '',
      url: `${this.url}/repos/${run.repo}/check-runs/${run.id}`,
      html_url: `${this.url}/${run.repo}/runs/${run.id}`,
      details_url: run.detailsUrl ?? null,
      status: run.status,
      conclusion: run.conclusion,
      started_at: run.startedAt,
      completed_at: run.completedAt,
      output: { title: run.title ?? null, summary: run.summary ?? null, text: run.text ?? null, annotations_count: 0 },
      name: run.name,
      app: app ? { id: app.id, slug: app.slug, name: app.slug } : null,
      pull_requests: [],
    };
  }

  statusJson(id: number): Json {
    const x = this.standin.state.statuses.find((y) => y.id === id) ?? fail(404, 'Not Found');
    return {
      id: x.id,
      node_id: `S_${x.id}`,
      state: x.state,
      description: x.description,
      target_url: x.targetUrl,
      context: x.context,
      created_at: x.createdAt,
      updated_at: x.createdAt,
      creator: this.standin.userJson(x.creator),
    };
  }

  deploymentJson(id: number): Json {
    const d = this.standin.state.deployments.find((y) => y.id === id) ?? fail(404, 'Not Found');
    return {
      id: d.id,
      node_id: `DE_${d.id}`,
      url: `${this.url}/repos/${d.repo}/deployments/${d.id}`,
      sha: d.sha,
      ref: d.ref,
      task: d.task,
      payload: d.payload,
      environment: d.environment,
      original_environment: d.environment,
      description: d.description,
      creator: this.standin.userJson(d.creator),
      created_at: d.createdAt,
      updated_at: d.createdAt,
      statuses_url: `${this.url}/repos/${d.repo}/deployments/${d.id}/statuses`,
      production_environment: d.productionEnvironment,
      transient_environment: d.transientEnvironment,
    };
  }

  deploymentStatusJson(id: number): Json {
    const x = this.standin.state.deploymentStatuses.find((y) => y.id === id) ?? fail(404, 'Not Found');
    return {
      id: x.id,
      node_id: `DES_${x.id}`,
      state: x.state,
      description: x.description,
      environment_url: x.environmentUrl,
      log_url: x.logUrl,
      target_url: x.logUrl,
      creator: this.standin.userJson(x.creator),
      created_at: x.createdAt,
      updated_at: x.createdAt,
      deployment_url: `${this.url}/repos/${x.repo}/deployments/${x.deploymentId}`,
    };
  }

  // ---------- control API (act as people; no authentication: bind it to 127.0.0.1) ----------

  private defineControl(): void {
    const C = router(this.control, '/_standin');
    this.controlSetup(C);
    this.controlPeople(C);
    this.controlFaults(C);
  }

  /** What a test arranges: the webhook, users, Apps, repositories; what it reads back. */
  private controlSetup(C: Route): void {
    const s = this.standin;
    C('GET', '/state', () => ({
      ...s.state,
      tokens: undefined,
      manifestCodes: undefined,
      apps: s.state.apps.map((a) => ({ id: a.id, slug: a.slug, installationId: a.installationId })),
      webhook: s.state.webhook ? { url: s.state.webhook.url } : undefined,
    }));
    C('POST', '/webhook', (ctx) => {
      s.setWebhook(str(ctx.body, 'url'), str(ctx.body, 'secret'));
      return { url: s.state.webhook?.url };
    });
    C('POST', '/users', (ctx) => {
      const { user, token } = s.addUser({
        login: str(ctx.body, 'login'),
        name: str(ctx.body, 'name', false) || undefined,
        email: str(ctx.body, 'email', false) || undefined,
      });
      return { ...user, token };
    });
    C('POST', '/apps', (ctx) =>
      s.addApp({ slug: str(ctx.body, 'slug'), repositories: ctx.body.repositories as string[] | undefined }),
    );
    C('GET', '/apps/:id', (ctx) => {
      const app = s.requireApp(Number(ctx.params[0]));
      return {
        id: app.id,
        slug: app.slug,
        installationId: app.installationId ?? null,
        repositories: app.repositories ?? null,
        owner: app.owner ?? null,
        manifest: app.manifest ?? null,
      };
    });
    // A person installs the App (on some repositories, or all of them when none are named).
    C('POST', '/apps/:id/installation', (ctx) => ({
      installationId: s.installApp(Number(ctx.params[0]), ctx.body.repositories as string[] | undefined),
    }));
    C('GET', '/requests', () => this.requests);
    C('DELETE', '/requests', () => {
      this.requests.length = 0;
      return {};
    });
    // Every token the stand-in handed out (users' and installations'), for a test's secret scan.
    C('GET', '/tokens', () => s.state.tokens.map((t) => t.token));
    C('POST', '/repos', (ctx) => {
      const repo = s.createRepo({
        fullName: str(ctx.body, 'fullName'),
        defaultBranch: str(ctx.body, 'defaultBranch', false) || undefined,
        files: ctx.body.files as Record<string, string> | undefined,
        private: ctx.body.private === true,
      });
      return { ...s.repoJson(repo), remote: repo.gitDir };
    });
  }

  /** People act: a collaborator's role; a pull request opened, pushed to, reviewed, closed (webhook unless `deliver: false`). */
  private controlPeople(C: Route): void {
    const s = this.standin;
    const fullName = (ctx: Ctx) => `${ctx.params[0]}/${ctx.params[1]}`;
    const deliveryOpts = (body: Json) => ({ deliver: body.deliver === false ? false : undefined });
    const delivered = (r: { delivery: { id: string }; status?: number }) => ({
      deliveryId: r.delivery.id,
      status: r.status ?? null,
    });

    // A collaborator with a role (read, triage, write, maintain, admin), or removed with {"permission": null}.
    C('PUT', '/repos/:owner/:repo/collaborators/:login', (ctx) => {
      const role = ctx.body.permission;
      if (role !== null && !['read', 'triage', 'write', 'maintain', 'admin'].includes(role as string))
        fail(422, 'permission: expected read, triage, write, maintain, admin or null');
      s.setCollaborator(fullName(ctx), ctx.params[2] ?? '', (role ?? undefined) as CollaboratorRole | undefined);
      return { collaborators: s.requireRepo(fullName(ctx)).collaborators ?? {} };
    });
    C('POST', '/repos/:owner/:repo/pulls', async (ctx) => {
      const r = await s.openPullRequest({
        repo: fullName(ctx),
        author: str(ctx.body, 'author'),
        title: str(ctx.body, 'title'),
        body: str(ctx.body, 'body', false),
        head: str(ctx.body, 'head', false) || undefined,
        base: str(ctx.body, 'base', false) || undefined,
        commits: (ctx.body.commits as never) ?? [],
        ...deliveryOpts(ctx.body),
      });
      return { number: r.pull.number, headSha: r.pull.headSha, ...delivered(r) };
    });
    C('POST', '/repos/:owner/:repo/pulls/:number/commits', async (ctx) => {
      const r = await s.pushCommits({
        repo: fullName(ctx),
        number: Number(ctx.params[2]),
        pusher: str(ctx.body, 'pusher'),
        commits: (ctx.body.commits as never) ?? [],
        force: ctx.body.force === true,
        ...deliveryOpts(ctx.body),
      });
      return { before: r.before, headSha: r.pull.headSha, ...delivered(r) };
    });
    C('POST', '/repos/:owner/:repo/pulls/:number/reviews', async (ctx) => {
      const r = await s.submitReview({
        repo: fullName(ctx),
        number: Number(ctx.params[2]),
        reviewer: str(ctx.body, 'reviewer'),
        event: (str(ctx.body, 'event', false) || 'APPROVE') as 'APPROVE',
        body: str(ctx.body, 'body', false),
        commitId: str(ctx.body, 'commitId', false) || undefined,
        ...deliveryOpts(ctx.body),
      });
      return { reviewId: r.review.id, commitId: r.review.commitId, ...delivered(r) };
    });
    C('POST', '/repos/:owner/:repo/pulls/:number/reviews/:id/dismissals', async (ctx) => {
      const r = await s.dismissReview({
        repo: fullName(ctx),
        number: Number(ctx.params[2]),
        reviewId: Number(ctx.params[3]),
        by: str(ctx.body, 'by'),
        message: str(ctx.body, 'message', false),
        ...deliveryOpts(ctx.body),
      });
      return { reviewId: r.review.id, ...delivered(r) };
    });
    C('POST', '/repos/:owner/:repo/pulls/:number/close', async (ctx) =>
      delivered(
        await s.closePullRequest({
          repo: fullName(ctx),
          number: Number(ctx.params[2]),
          by: str(ctx.body, 'by'),
          ...deliveryOpts(ctx.body),
        }),
      ),
    );
    C('POST', '/repos/:owner/:repo/pulls/:number/reopen', async (ctx) =>
      delivered(
        await s.reopenPullRequest({
          repo: fullName(ctx),
          number: Number(ctx.params[2]),
          by: str(ctx.body, 'by'),
          ...deliveryOpts(ctx.body),
        }),
      ),
    );
  }

  /** Webhook deliveries sent again, and faults injected into the REST API. */
  private controlFaults(C: Route): void {
    const s = this.standin;
    C('POST', '/deliveries/:id/send', async (ctx) => ({
      deliveryId: ctx.params[0],
      status: (await s.sendDelivery(ctx.params[0] ?? '')) ?? null,
    }));
    C('POST', '/faults', (ctx) => {
      const fault = {
        id: s.nextId(),
        method: str(ctx.body, 'method', false) || undefined,
        path: str(ctx.body, 'path'),
        status: Number(ctx.body.status ?? 0),
        retryAfter: ctx.body.retryAfter === undefined ? undefined : Number(ctx.body.retryAfter),
        delayMs: ctx.body.delayMs === undefined ? undefined : Number(ctx.body.delayMs),
        remaining: ctx.body.count === undefined ? 1 : Number(ctx.body.count),
      };
      s.state.faults.push(fault);
      return fault;
    });
    C('DELETE', '/faults', () => {
      s.state.faults = [];
      return {};
    });
  }
}

function applyCheckRun(run: StandinCheckRun, body: Json): void {
  if (typeof body.status === 'string') run.status = body.status as StandinCheckRun['status'];
  if (typeof body.conclusion === 'string') {
    run.conclusion = body.conclusion;
    run.status = 'completed';
  }
  if (run.status === 'completed')
    run.completedAt =
      typeof body.completed_at === 'string' ? body.completed_at : (run.completedAt ?? new Date().toISOString());
  if (typeof body.details_url === 'string') run.detailsUrl = body.details_url;
  if (typeof body.external_id === 'string') run.externalId = body.external_id;
  if (typeof body.name === 'string') run.name = body.name;
  const output = body.output as Json | undefined;
  if (output) {
    if (typeof output.title === 'string') run.title = output.title;
    if (typeof output.summary === 'string') run.summary = output.summary;
    if (typeof output.text === 'string') run.text = output.text;
  }
}

function paginateItems<T>(ctx: Ctx, items: T[]): T[] {
  const perPage = Math.min(100, Math.max(1, Number(ctx.url.searchParams.get('per_page') ?? 30)));
  const page = Math.max(1, Number(ctx.url.searchParams.get('page') ?? 1));
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const links: string[] = [];
  const link = (p: number, rel: string) => {
    const u = new URL(ctx.url.toString());
    u.searchParams.set('page', String(p));
    u.searchParams.set('per_page', String(perPage));
    return `<${ctx.req.headers.host ? `http://${ctx.req.headers.host}` : ''}${u.pathname}${u.search}>; rel="${rel}"`;
  };
  if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
  if (page > 1) links.push(link(1, 'first'), link(page - 1, 'prev'));
  if (links.length > 0) ctx.res.setHeader('link', links.join(', '));
  return items.slice((page - 1) * perPage, page * perPage);
}

function paginate<T>(ctx: Ctx, items: T[]): T[] {
  return paginateItems(ctx, items);
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'x-github-media-type': 'github.v3',
    ...headers,
  });
  res.end(text);
}

export interface RunningStandin {
  standin: GitHubStandin;
  server: StandinServer;
  /** REST base URL (GITHUB_API_URL). */
  url: string;
  stop(): Promise<void>;
}

/** Starts a stand-in on a free port (or `port`). */
export async function startGitHubStandin(
  options: StandinOptions & { port?: number; host?: string },
): Promise<RunningStandin> {
  const standin = new GitHubStandin(options);
  const server = new StandinServer(standin);
  const url = await server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  return { standin, server, url, stop: () => server.close() };
}
