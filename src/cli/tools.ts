import { ensureTool, toolVersion } from '../dev/tools.ts';

export async function run(): Promise<number> {
  for (const name of ['temporal', 'bao'] as const) {
    const path = ensureTool(name);
    console.error(`foureyes: ${name} ${toolVersion(path)} (${path})`);
  }
  return 0;
}
