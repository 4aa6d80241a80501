// The workflow code is bundled once (webpack, via the SDK) and shared by every orchestrator replica and
// by the tests: a cached bundle is reused while no workflow source is newer than it.
import { bundleWorkflowCode } from '@temporalio/worker';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataDir } from '../config/paths.ts';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
// OpenTelemetry workflow interceptors: always in the bundle, inert unless the worker turns tracing on.
export const workflowInterceptorModules = [fileURLToPath(new URL('../workflows/tracing.ts', import.meta.url))];
// Everything the workflow bundle imports: a change in any of them must rebuild it.
const sourceDirs = ['../workflows', '../shared', '../policy'].map((dir) =>
  fileURLToPath(new URL(dir, import.meta.url)),
);
// Also this file (the bundle options) and the installed interceptors package (an upgrade must rebuild; npm
// stamps package files with a fixed mtime, so its install time is the ctime).
const sourceFiles = [
  fileURLToPath(import.meta.url),
  createRequire(import.meta.url).resolve('@temporalio/interceptors-opentelemetry/package.json'),
];

function newestSource(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  sourceDirs.forEach(walk);
  for (const file of sourceFiles) newest = Math.max(newest, statSync(file).mtimeMs, statSync(file).ctimeMs);
  return newest;
}

export function bundlePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.FOUREYES_WORKFLOW_BUNDLE ?? join(dataDir(env), 'workflow-bundle.js');
}

/** Path of an up-to-date bundle, building it if needed. */
export async function ensureWorkflowBundle(
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = () => {},
): Promise<string> {
  const path = bundlePath(env);
  if (existsSync(path) && statSync(path).mtimeMs >= newestSource()) return path;
  log('foureyes: bundling workflow code …');
  const { code } = await bundleWorkflowCode({ workflowsPath, workflowInterceptorModules, logger: quietLogger });
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, code);
  return path;
}

export function readBundle(path: string): { code: string } {
  return { code: readFileSync(path, 'utf8') };
}

const noop = () => {};
const quietLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
  log: noop,
};
