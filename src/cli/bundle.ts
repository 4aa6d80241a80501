// foureyes bundle: build the workflow bundle (webpack, via the SDK) into FOUREYES_WORKFLOW_BUNDLE (default
// .foureyes/workflow-bundle.js). The Dockerfile runs it at image build time so orchestrators start at once.
import { bundlePath, ensureWorkflowBundle } from '../workers/bundle.ts';
import { CliError } from './commands.ts';

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(
      'usage: foureyes bundle\n\nWrites the workflow bundle to FOUREYES_WORKFLOW_BUNDLE (default .foureyes/workflow-bundle.js).',
    );
    return 0;
  }
  if (args.length > 0) throw new CliError(`unexpected argument "${args[0]}"`, 2);
  const path = await ensureWorkflowBundle(process.env, (line) => console.log(line));
  if (path !== bundlePath(process.env))
    throw new CliError(`bundle written to ${path}, expected ${bundlePath(process.env)}`);
  console.log(`foureyes: workflow bundle at ${path}`);
  return 0;
}
