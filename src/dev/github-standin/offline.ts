// Offline mode: `npm start` without GitHub credentials starts the stand-in beside the stack, with one user
// per person of foureyes.yaml, a bot user whose token the orchestrator and the gateway use, and every
// configured repository served from a local git repository seeded with a passing `npm test` and the
// example deploy and smoke scripts. `foureyes sandbox` acts in it (see docs/github.md).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FoureyesConfig } from '../../config/schema.ts';
import { startGitHubStandin, type RunningStandin } from './server.ts';

export const OFFLINE_BOT = 'foureyes-bot';

export interface OfflineGitHub {
  running: RunningStandin;
  url: string;
  /** GITHUB_API_URL, GITHUB_TOKEN (the bot's) and GITHUB_WEBHOOK_SECRET for the gateway and the orchestrator. */
  env: Record<string, string>;
  /** Repository -> local git remote, for FOUREYES_REMOTE_OVERRIDES. */
  remotes: Record<string, string>;
  stop(): Promise<void>;
}

/** Where the running stand-in's URL is written, for `foureyes sandbox`. */
export function standinInfoFile(githubDataDir: string): string {
  return join(githubDataDir, 'standin.json');
}

function seedFiles(projectRoot: string, repo: string): Record<string, string> {
  const files: Record<string, string> = {
    'README.md': `# ${repo}\n\nA sandbox repository served by the foureyes GitHub stand-in.\n`,
    'package.json': `${JSON.stringify({ name: repo.split('/')[1], private: true, scripts: { test: 'node -e "console.log(\'tests pass\')"' } }, null, 2)}\n`,
  };
  for (const script of ['deploy.sh', 'smoke.sh']) {
    const path = join(projectRoot, 'examples', script);
    if (existsSync(path)) files[`examples/${script}`] = readFileSync(path, 'utf8');
  }
  return files;
}

export async function startOfflineGitHub(options: {
  dataDir: string;
  config: FoureyesConfig;
  projectRoot: string;
  port?: number;
}): Promise<OfflineGitHub> {
  const running = await startGitHubStandin({ dataDir: options.dataDir, persist: true, port: options.port });
  const s = running.standin;
  for (const person of options.config.people)
    s.addUser({ login: person.github, name: person.name, email: person.emails[0] });
  const bot = s.addUser({ login: OFFLINE_BOT, name: 'foureyes' });
  const remotes: Record<string, string> = {};
  for (const repo of options.config.repositories) {
    const created = s.createRepo({
      fullName: repo.name,
      defaultBranch: repo.defaultBranch,
      files: seedFiles(options.projectRoot, repo.name),
    });
    remotes[repo.name] = created.gitDir;
  }
  // A fresh webhook secret per start: both ends learn it here; it is never written to disk or logs.
  const secret = randomBytes(32).toString('hex');
  writeFileSync(standinInfoFile(options.dataDir), JSON.stringify({ url: running.url }), { mode: 0o600 });
  return {
    running,
    url: running.url,
    env: { GITHUB_API_URL: running.url, GITHUB_TOKEN: bot.token, GITHUB_WEBHOOK_SECRET: secret },
    remotes,
    stop: () => running.stop(),
  };
}

/** Points the stand-in's webhook at the gateway. */
export function connectWebhook(github: OfflineGitHub, gatewayUrl: string): void {
  github.running.standin.setWebhook(`${gatewayUrl}/webhooks/github`, github.env.GITHUB_WEBHOOK_SECRET as string);
}
