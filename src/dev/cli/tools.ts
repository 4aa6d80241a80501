import { assertSandboxWorks, SandboxUnavailableError } from '../../activities/sandbox.ts';
import { AWS_PLUGIN, ensureAwsPlugin, ensureMoto, ensurePostgres, ensureTool, MOTO, toolVersion } from '../tools.ts';

export async function run(): Promise<number> {
  for (const name of ['temporal', 'bao'] as const) {
    const path = ensureTool(name);
    console.error(`foureyes: ${name} ${toolVersion(path)} (${path})`);
  }
  // The AWS emulator the AWS lease tests run against.
  console.error(`foureyes: moto ${MOTO.version} (${ensureMoto()})`);
  // PostgreSQL for the deploy tests and drills (the database secrets engine's target).
  console.error(`foureyes: postgresql (${ensurePostgres()})`);
  // OpenBao's AWS secrets engine, which OpenBao 2.x does not build in (built with Go).
  console.error(`foureyes: AWS secrets engine plugin from ${AWS_PLUGIN.vault} (${ensureAwsPlugin()})`);
  // bubblewrap is a system package (not pinned here): checks and deploy commands run in its sandbox.
  try {
    assertSandboxWorks({});
    console.error('foureyes: bubblewrap sandbox works (checks and deploy commands run in it)');
  } catch (error) {
    if (!(error instanceof SandboxUnavailableError)) throw error;
    console.error(`foureyes: ${error.message}`);
    return 1;
  }
  return 0;
}
