// foureyes: the command line. Each command is a module; this file only dispatches.
import { ConfigError } from '../config/load.ts';
import { CliError, commands, usage } from './commands.ts';

const [name, ...args] = process.argv.slice(2);
const command = name ? commands[name] : undefined;
if (!command) {
  console.error(
    name && name !== '--help' && name !== '-h' ? `foureyes: unknown command "${name}"\n\n${usage()}` : usage(),
  );
  process.exit(name && name !== '--help' && name !== '-h' ? 2 : 0);
}
try {
  const code = await command.run(args);
  process.exitCode = code ?? 0;
} catch (error) {
  if (
    error instanceof ConfigError ||
    error instanceof CliError ||
    // By name: PrerequisiteError comes from src/dev, which the production image leaves out.
    ['PrerequisiteError', 'GitHubConfigError'].includes((error as Error)?.name)
  ) {
    console.error(`foureyes ${name}: ${(error as Error).message}`);
    process.exitCode = error instanceof CliError ? error.exitCode : 1;
  } else {
    console.error(`foureyes ${name}: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  }
}
