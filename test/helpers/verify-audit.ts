// `foureyes verify-audit <file> --rederive --public-key <key>` as a separate process against the test's Temporal,
// as an auditor runs it: the exit code and what it printed.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { inject } from 'vitest';
import { projectRoot } from '../../src/dev/paths.ts';

export async function verifyRederived(
  file: string,
  publicKey: string,
  home: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: inject('temporalNamespace'),
  };
  return promisify(execFile)(
    process.execPath,
    [join(projectRoot(), 'bin/foureyes.js'), 'verify-audit', file, '--rederive', '--public-key', publicKey],
    { env },
  ).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({
      code: error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );
}
