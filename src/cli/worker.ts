// foureyes worker <zone>: one trust zone's worker as a production entry point (one image, the zone picked
// by the command). Runs until SIGTERM/SIGINT, then shuts down gracefully: in-flight tasks finish within the
// grace time or are handed back to the server.
import { ZONES, type Zone } from '../workers/zones.ts';
import { CliError } from './commands.ts';

const USAGE = `usage: foureyes worker <${Object.keys(ZONES).join('|')}>`;

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const [zone, ...rest] = args;
  if (!zone || !(zone in ZONES)) throw new CliError(`${zone ? `unknown zone "${zone}"` : 'which zone?'}\n${USAGE}`, 2);
  if (rest.length > 0) throw new CliError(`unexpected argument "${rest[0]}"\n${USAGE}`, 2);
  const { runZone } = await import('../workers/run.ts');
  const { TeamsConfigError } = await import('../activities/teams-connector.ts');
  try {
    await runZone(zone as Zone);
  } catch (error) {
    // A half-configured channel stops start-up with the names of what is missing.
    if (error instanceof TeamsConfigError) throw new CliError(error.message, 1);
    throw error;
  }
  return 0;
}
