import { ensureMoto, ensureTool, MOTO, toolVersion } from '../dev/tools.ts';

export async function run(): Promise<number> {
  for (const name of ['temporal', 'bao'] as const) {
    const path = ensureTool(name);
    console.error(`foureyes: ${name} ${toolVersion(path)} (${path})`);
  }
  // The AWS emulator the AWS lease tests run against.
  console.error(`foureyes: moto ${MOTO.version} (${ensureMoto()})`);
  return 0;
}
