// `foureyes setup github`: creates foureyes' GitHub App in one step with GitHub's App-manifest flow (as
// Probot does). A page on 127.0.0.1 posts the manifest (exactly the permissions and events foureyes uses)
// to github.com or a GitHub Enterprise Server; the person confirms there; GitHub redirects back with a
// one-time code, exchanged at POST /app-manifests/{code}/conversions for the App's ID, private key and
// webhook secret. They are stored in the data folder (mode 0600) for `foureyes up`, or printed for a
// secret manager with --print. The key and the secret are never shown otherwise.
import { spawn } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../config/load.ts';
import type { FoureyesConfig } from '../../config/schema.ts';
import { readStoredApp, writeStoredApp, type StoredApp } from '../github-app-store.ts';
import { parseApiUrl } from '../github-env.ts';
import { dataDir } from '../paths.ts';
import { CliError, parseArgs } from '../../cli/commands.ts';

const USAGE = `usage: foureyes setup github [--github-url URL] [--org NAME] [--name NAME] [--webhook-url URL] [--port N] [--print] [--no-open] [--force]

  --github-url   where to create the App: https://github.com (default) or your GitHub Enterprise Server
  --org          create it in this organization (default: your personal account)
  --name         the App's name (default foureyes-<org or owner>; you can change it on GitHub's page)
  --webhook-url  the gateway's public address, https://HOST/webhooks/github (default: the App's webhook
                 stays inactive; forward a repository's webhooks to this machine, see docs/github.md)
  --port         port of the local page GitHub redirects back to (default: any free port)
  --print        print the App's variables for a secret manager instead of storing them
  --no-open      do not open a browser; open the printed address yourself
  --force        replace the App already stored in the data folder
  --timeout S    how long to wait for GitHub's answer (default 900 seconds)`;

/** What the App may do, and why foureyes needs each (README "Connect a real repository"). */
export const APP_PERMISSIONS: Array<{ name: string; level: 'read' | 'write'; why: string }> = [
  { name: 'metadata', level: 'read', why: 'required of every App: read the repository' },
  {
    name: 'contents',
    level: 'read',
    why: 'list the commits and changed files of a pull request (write when a repository has `merge: true`: the merge after production)',
  },
  {
    name: 'pull_requests',
    level: 'read',
    why: 'read the pull request, its commits, files and reviews: who initiated it, who approved which commit',
  },
  { name: 'checks', level: 'write', why: 'report each stage as a check run on the head commit' },
  { name: 'deployments', level: 'write', why: 'one GitHub deployment per environment, with its statuses' },
  {
    name: 'issues',
    level: 'write',
    why: 'the summary comment on the pull request (pull request comments are issue comments)',
  },
];

/** The events the gateway acts on (src/gateway/routes/github-webhook.ts); `ping` and `installation` come without asking. */
export const APP_EVENTS: Array<{ name: string; why: string }> = [
  { name: 'pull_request', why: 'opened, reopened, synchronize (a push) and closed start, move and end the change' },
  {
    name: 'pull_request_review',
    why: 'submitted and dismissed reviews are approvals, rejections and withdrawals through GitHub',
  },
];

export interface ManifestOptions {
  name: string;
  redirectUrl: string;
  webhookUrl?: string;
  homepage: string;
  /** A configured repository merges after production: contents write. */
  merge: boolean;
}

export function appManifest(options: ManifestOptions) {
  return {
    name: options.name,
    url: options.homepage,
    description:
      'foureyes: Segregation of Duties for change delivery. Reports checks, approvals and deployments of each pull request.',
    // Without a public gateway the webhook stays inactive (the address is the local gateway's, for later).
    hook_attributes: {
      url: options.webhookUrl ?? 'http://127.0.0.1:3000/webhooks/github',
      active: options.webhookUrl !== undefined,
    },
    redirect_url: options.redirectUrl,
    public: false,
    default_permissions: Object.fromEntries(
      APP_PERMISSIONS.map((p) => [p.name, p.name === 'contents' && options.merge ? 'write' : p.level]),
    ),
    default_events: APP_EVENTS.map((e) => e.name),
  };
}

/** github.com → api.github.com; <name>.ghe.com → api.<name>.ghe.com; a GitHub Enterprise Server → HOST/api/v3. */
export function githubUrls(webUrl: string): { webUrl: string; apiUrl: string } {
  let url: URL;
  try {
    url = new URL(webUrl);
  } catch {
    throw new CliError(
      `--github-url ${JSON.stringify(webUrl)}: expected a URL such as https://github.com or https://ghes.example.com`,
      2,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new CliError(`--github-url ${webUrl}: expected an http(s) URL`, 2);
  const web = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  if (url.hostname === 'api.github.com' || web.endsWith('/api/v3'))
    throw new CliError(
      `--github-url ${webUrl}: give the web address (https://github.com or https://HOST), not the API's`,
      2,
    );
  const apiUrl =
    url.hostname === 'github.com'
      ? 'https://api.github.com'
      : /\.ghe\.com$/.test(url.hostname)
        ? `${url.protocol}//api.${url.hostname}`
        : `${web}/api/v3`;
  return { webUrl: web, apiUrl };
}

const html = (text: string) =>
  text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${html(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;line-height:1.5}code{background:#f3f3f3;padding:0 .2rem}</style></head><body>${body}</body></html>`;
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action *",
  });
  res.end(body);
}

interface Conversion {
  id: number;
  slug: string;
  name: string;
  html_url: string;
  owner?: { login?: string };
  pem: string;
  webhook_secret: string | null;
}

async function convert(apiUrl: string, code: string): Promise<Conversion> {
  let res: Response;
  try {
    res = await fetch(`${apiUrl}/app-manifests/${encodeURIComponent(code)}/conversions`, {
      method: 'POST',
      headers: {
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        'user-agent': 'foureyes-setup',
      },
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new CliError(
      `cannot reach ${apiUrl} to finish creating the App (${(error as Error).message}); the App may exist already: check ${apiUrl} and run again`,
    );
  }
  if (res.status === 404)
    throw new CliError(
      'GitHub did not accept the code (it is valid once, for an hour): run `foureyes setup github` again',
    );
  if (!res.ok)
    throw new CliError(
      `GitHub answered ${res.status} to POST /app-manifests/{code}/conversions: ${(await res.text()).slice(0, 200)}`,
    );
  const data = (await res.json()) as Partial<Conversion>;
  if (typeof data.id !== 'number' || typeof data.pem !== 'string' || typeof data.slug !== 'string')
    throw new CliError('GitHub answered the conversion without an App ID or key; run `foureyes setup github` again');
  return data as Conversion;
}

function sameState(a: string | null, b: string): boolean {
  return a !== null && a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function openBrowser(url: string): void {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // the address is printed anyway
  }
}

/** The user's own configuration, when there is one (never the example's acme/shop): names the repositories to install on. */
function optionalConfig(): FoureyesConfig | undefined {
  const file = process.env.FOUREYES_CONFIG ?? join(process.cwd(), 'foureyes.yaml');
  if (!existsSync(file)) return undefined;
  try {
    return loadConfig(file);
  } catch {
    return undefined;
  }
}

/** The App's variables, one per line, for a secret manager or an env file (the key with `\n` escapes). */
function envLines(app: Conversion, apiUrl: string): string {
  return [
    `GITHUB_APP_ID=${app.id}`,
    `GITHUB_API_URL=${apiUrl}`,
    `GITHUB_WEBHOOK_SECRET=${app.webhook_secret ?? ''}`,
    `GITHUB_PRIVATE_KEY="${app.pem.trim().replace(/\r?\n/g, '\\n')}"`,
  ].join('\n');
}

interface SetupOptions {
  print: boolean;
  noOpen: boolean;
  force: boolean;
  webUrl: string;
  apiUrl: string;
  org: string | undefined;
  name: string | undefined;
  webhookUrl: string | undefined;
  port: number;
  timeoutMs: number;
}

/** The command line's options, checked; `undefined` for --help (after printing the usage). */
function setupOptions(args: string[]): SetupOptions | undefined {
  const { positionals, flags, options } = parseArgs(args, {
    flags: ['print', 'no-open', 'force', 'help'],
    options: ['github-url', 'org', 'name', 'webhook-url', 'port', 'timeout'],
  });
  if (flags.has('help')) {
    console.log(USAGE);
    return undefined;
  }
  if (positionals.length !== 1 || positionals[0] !== 'github') throw new CliError(USAGE, 2);
  const { webUrl, apiUrl } = githubUrls(
    options.get('github-url') ??
      (process.env.GITHUB_API_URL ? parseApiUrl(process.env.GITHUB_API_URL).webUrl : 'https://github.com'),
  );
  const org = options.get('org');
  if (org !== undefined && !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(org))
    throw new CliError(`--org ${JSON.stringify(org)}: expected an organization login`, 2);
  const webhookUrl = options.get('webhook-url');
  if (webhookUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(webhookUrl))
    throw new CliError(
      `--webhook-url ${JSON.stringify(webhookUrl)}: expected the gateway's address, e.g. https://foureyes.example.com/webhooks/github`,
      2,
    );
  const port = Number(options.get('port') ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CliError(`--port ${options.get('port')}: expected a port number`, 2);
  const timeoutMs = Number(options.get('timeout') ?? 900) * 1000;
  return {
    print: flags.has('print'),
    noOpen: flags.has('no-open'),
    force: flags.has('force'),
    webUrl,
    apiUrl,
    org,
    name: options.get('name'),
    webhookUrl,
    port,
    timeoutMs,
  };
}

/** The local page that posts the manifest to GitHub, and the callback GitHub sends the person back to. */
class CallbackServer {
  readonly server: Server;
  readonly created: Promise<Conversion>;
  manifestJson = '';
  private finish: (app: Conversion) => void = () => undefined;
  private fail: (error: Error) => void = () => undefined;
  private busy = false;

  constructor(
    private readonly opts: SetupOptions,
    private readonly state: string,
  ) {
    this.created = new Promise<Conversion>((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (req.method === 'GET' && url.pathname === '/') return this.start(res);
      if (req.method === 'GET' && url.pathname === '/callback') return this.callback(url, res);
      send(res, 404, page('foureyes: not found', '<h1>Not found</h1>'));
    });
  }

  private start(res: ServerResponse): void {
    const { webUrl, org } = this.opts;
    const target = `${webUrl}${org ? `/organizations/${encodeURIComponent(org)}` : ''}/settings/apps/new?state=${this.state}`;
    send(
      res,
      200,
      page(
        'foureyes: create the GitHub App',
        `<h1>Create foureyes' GitHub App</h1><p>This sends the App's manifest to <code>${html(webUrl)}</code>${org ? ` for the organization <code>${html(org)}</code>` : ''}. GitHub shows its name and permissions; confirm with <b>Create GitHub App</b> and GitHub sends you back here.</p><form action="${html(target)}" method="post"><input type="hidden" name="manifest" value="${html(this.manifestJson)}"><button type="submit">Create the App on ${html(new URL(webUrl).host)}</button></form>`,
      ),
    );
  }

  private callback(url: URL, res: ServerResponse): void {
    const code = url.searchParams.get('code');
    if (!sameState(url.searchParams.get('state'), this.state))
      return send(
        res,
        400,
        page(
          'foureyes: wrong state',
          '<h1>This answer is not for this run</h1><p>The <code>state</code> does not match: start again from the address <code>foureyes setup github</code> printed.</p>',
        ),
      );
    if (!code || this.busy)
      return send(
        res,
        400,
        page(
          'foureyes: no code',
          '<h1>No code from GitHub</h1><p>Start again from the address <code>foureyes setup github</code> printed.</p>',
        ),
      );
    this.busy = true;
    void convert(this.opts.apiUrl, code).then(
      (app) => {
        send(
          res,
          200,
          page(
            'foureyes: App created',
            `<h1>Created ${html(app.slug)}</h1><p>Next, install it on your repositories: <a href="${html(app.html_url)}/installations/new">${html(app.html_url)}/installations/new</a>. The terminal shows the remaining steps; you can close this tab.</p>`,
          ),
        );
        this.finish(app);
      },
      (error: Error) => {
        send(res, 502, page('foureyes: not created', `<h1>The App was not stored</h1><p>${html(error.message)}</p>`));
        this.fail(error);
      },
    );
  }

  /** Listens on 127.0.0.1; the local address. */
  async listen(port: number): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new CliError(`--port ${port}: cannot listen on 127.0.0.1 (${error.code ?? error.message})`)),
      );
      this.server.listen(port, '127.0.0.1', resolve);
    });
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The App GitHub created, or a CliError after `timeoutMs`; the server is closed either way. */
  async app(timeoutMs: number): Promise<Conversion> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new CliError(
              `no answer from GitHub within ${Math.round(timeoutMs / 60_000)} minutes; nothing was created here: run \`foureyes setup github\` again`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.created, timeout]);
    } finally {
      clearTimeout(timer);
      this.server.closeAllConnections();
      this.server.close();
    }
  }
}

/** Stores the App in the data folder and tells the person what comes next. */
function storeApp(
  app: Conversion,
  opts: SetupOptions,
  data: string,
  owner: string,
  repositories: string[],
  say: (line: string) => void,
): void {
  const { webUrl, apiUrl, webhookUrl } = opts;
  const info: StoredApp = {
    appId: app.id,
    slug: app.slug,
    name: app.name,
    htmlUrl: app.html_url,
    webUrl,
    apiUrl,
    owner: app.owner?.login ?? owner,
    createdAt: new Date().toISOString(),
  };
  const files = writeStoredApp(data, info, {
    privateKey: app.pem,
    webhookSecret: app.webhook_secret ?? randomBytes(20).toString('hex'),
  });
  const repos = repositories.length ? repositories.join(', ') : 'the repositories of foureyes.yaml';
  say(
    [
      `foureyes: created the GitHub App ${app.slug} (App ID ${app.id}) on ${webUrl}`,
      `  stored in ${files.dir}: app.json, private-key.pem and webhook-secret (mode 0600; the key and the secret are not shown)`,
      '',
      'Next:',
      `  1. install it on ${repos}: ${app.html_url}/installations/new`,
      '  2. npm start   (foureyes up finds the App in the data folder)',
      webhookUrl
        ? `  3. GitHub delivers the App's webhooks to ${webhookUrl}`
        : `  3. webhooks: the App's webhook is inactive (no public address given). To try it from this machine, forward a repository's webhooks:\n     gh webhook forward --repo=${repositories[0] ?? 'OWNER/REPO'} --events=pull_request,pull_request_review --url=http://127.0.0.1:3000/webhooks/github --secret="$(cat ${files.webhookSecret})"`,
    ].join('\n'),
  );
}

export async function run(args: string[]): Promise<number> {
  const opts = setupOptions(args);
  if (!opts) return 0;
  const { print, webUrl, apiUrl, org, webhookUrl } = opts;
  // With --print, stdout carries the variables only; everything for the person goes to stderr.
  const say = print ? (line: string) => console.error(line) : (line: string) => console.log(line);

  const data = dataDir();
  const stored = readStoredApp(data);
  if (stored && !print && !opts.force) {
    throw new CliError(
      `an App is already stored in ${stored.files.dir} (${stored.app.slug}, App ID ${stored.app.appId}) and \`foureyes up\` uses it; to create another, move that folder away or pass --force`,
    );
  }
  const config = optionalConfig();
  const repositories = config?.repositories.map((r) => r.name) ?? [];
  const owner = org ?? repositories[0]?.split('/')[0] ?? userInfo().username;
  const name = (opts.name ?? `foureyes-${owner}`).slice(0, 34);
  const callback = new CallbackServer(opts, randomBytes(16).toString('hex'));
  const local = await callback.listen(opts.port);
  const manifest = appManifest({
    name,
    redirectUrl: `${local}/callback`,
    ...(webhookUrl ? { webhookUrl } : {}),
    homepage: webhookUrl ? new URL(webhookUrl).origin : webUrl,
    merge: config?.repositories.some((r) => r.merge) ?? false,
  });
  callback.manifestJson = JSON.stringify(manifest);

  say(
    `foureyes: creating the GitHub App "${name}" on ${webUrl}${org ? ` for ${org}` : ''} with ${APP_PERMISSIONS.map((p) => `${p.name}: ${manifest.default_permissions[p.name]}`).join(', ')}; events ${APP_EVENTS.map((e) => e.name).join(', ')}`,
  );
  say(
    `Open ${local}/ in your browser and confirm on GitHub (waiting up to ${Math.round(opts.timeoutMs / 60_000)} minutes; Ctrl-C to give up).`,
  );
  if (!opts.noOpen) openBrowser(`${local}/`);

  const app = await callback.app(opts.timeoutMs);
  if (print) {
    console.log(envLines(app, apiUrl));
    say(
      `foureyes: created ${app.slug} (App ID ${app.id}); its variables are above, on stdout only: put them in your secret manager. Install it: ${app.html_url}/installations/new`,
    );
    return 0;
  }
  storeApp(app, opts, data, owner, repositories, say);
  return 0;
}
