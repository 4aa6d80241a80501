import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

/** The folder holding package.json (src/config/paths.ts is two levels below it). */
export function projectRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Git-ignored state of the local stack: Temporal's SQLite file, keys, AppRole credentials, logs. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.FOUREYES_DATA ?? join(projectRoot(), '.foureyes'));
}

/** The local stack's operator token for the gateway's read endpoints (`foureyes up` creates it, mode 0600). */
export function operatorTokenPath(dir: string = dataDir()): string {
  return join(dir, 'keys', 'operator-token');
}
