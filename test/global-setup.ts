// Starts one Temporal dev server and one OpenBao dev server on free ports for the whole run, builds the
// workflow bundle once, and stops both afterwards. Tests connect with the values provided here.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startOpenBao } from '../src/dev/openbao.ts';
import { startTemporalServer } from '../src/dev/temporal-server.ts';
import { ensureWorkflowBundle } from '../src/workers/bundle.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
    baoAddress: string;
    baoRootToken: string;
    workflowBundle: string;
    dataDir: string;
  }
}

export default async function setup(project: TestProject) {
  const dataDir = mkdtempSync(join(tmpdir(), 'foureyes-test-'));
  const [temporal, openbao] = await Promise.all([
    startTemporalServer({ dataDir, headless: true, logFile: join(dataDir, 'temporal.log') }),
    startOpenBao({ logFile: join(dataDir, 'openbao.log') }),
  ]);
  const workflowBundle = await ensureWorkflowBundle({
    ...process.env,
    FOUREYES_WORKFLOW_BUNDLE: join(dataDir, 'workflow-bundle.js'),
  });
  project.provide('temporalAddress', temporal.address);
  project.provide('temporalNamespace', temporal.namespace);
  project.provide('baoAddress', openbao.address);
  project.provide('baoRootToken', openbao.rootToken);
  project.provide('workflowBundle', workflowBundle);
  project.provide('dataDir', dataDir);
  return async () => {
    await Promise.all([temporal.process.stop(), openbao.process.stop()]);
    if (!process.env.FOUREYES_KEEP_TEST_DATA) rmSync(dataDir, { recursive: true, force: true });
  };
}
