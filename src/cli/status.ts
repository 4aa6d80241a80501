// `foureyes status <ref>`: what the change is waiting for, in terms a person can act on.
import { WorkflowNotFoundError } from '@temporalio/client';
import { formatChangeRef, workflowIdFor } from '../shared/change-ref.ts';
import { connectClient } from '../shared/temporal-connection.ts';
import { changeStatus } from '../client/read-change.ts';
import { formatStatus } from '../presentation/texts.ts';
import { changeRefArg, CliError, parseArgs } from './commands.ts';

export async function run(args: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(args, { flags: ['json'] });
  if (positionals.length !== 1) throw new CliError('usage: foureyes status <owner/repo#number> [--json]', 2);
  const ref = changeRefArg(positionals[0] as string);
  const client = await connectClient();
  try {
    const status = await changeStatus(client.workflow.getHandle(workflowIdFor(ref)));
    console.log(flags.has('json') ? JSON.stringify(status, null, 2) : formatStatus(status));
    return 0;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
      throw new CliError(
        `no change ${formatChangeRef(ref)} in namespace ${client.options.namespace}; has its pull request been opened since foureyes started?`,
      );
    throw error;
  } finally {
    await client.connection.close();
  }
}
