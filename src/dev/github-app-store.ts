// The GitHub App `foureyes setup github` created, kept in the data folder for `foureyes up`: the App's
// public facts in app.json, its private key and webhook secret each in a file of their own (mode 0600, in a
// folder of mode 0700), so neither ever needs to be printed or put in a shell's history.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StoredApp {
  appId: number;
  slug: string;
  name: string;
  /** The App's page on GitHub (install it from there). */
  htmlUrl: string;
  /** Web and REST addresses of the GitHub it lives on. */
  webUrl: string;
  apiUrl: string;
  owner: string;
  createdAt: string;
}

export interface StoredAppFiles {
  dir: string;
  info: string;
  privateKey: string;
  webhookSecret: string;
}

export function storedAppFiles(dataDir: string): StoredAppFiles {
  const dir = join(dataDir, 'github-app');
  return {
    dir,
    info: join(dir, 'app.json'),
    privateKey: join(dir, 'private-key.pem'),
    webhookSecret: join(dir, 'webhook-secret'),
  };
}

function writeSecretFile(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  // An existing file keeps its mode on overwrite: make sure.
  chmodSync(path, 0o600);
}

/** Writes the App; app.json last, so a half-written folder is never taken for a complete one. */
export function writeStoredApp(
  dataDir: string,
  app: StoredApp,
  secrets: { privateKey: string; webhookSecret: string },
): StoredAppFiles {
  const files = storedAppFiles(dataDir);
  mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  chmodSync(files.dir, 0o700);
  writeSecretFile(files.privateKey, secrets.privateKey);
  writeSecretFile(files.webhookSecret, secrets.webhookSecret);
  writeSecretFile(files.info, `${JSON.stringify(app, null, 2)}\n`);
  return files;
}

/** The stored App, or undefined when `foureyes setup github` has not stored one in this data folder. */
export function readStoredApp(
  dataDir: string,
): { app: StoredApp; files: StoredAppFiles; webhookSecret: string } | undefined {
  const files = storedAppFiles(dataDir);
  if (!existsSync(files.info)) return undefined;
  const app = JSON.parse(readFileSync(files.info, 'utf8')) as StoredApp;
  const webhookSecret = existsSync(files.webhookSecret) ? readFileSync(files.webhookSecret, 'utf8').trim() : '';
  return { app, files, webhookSecret };
}
