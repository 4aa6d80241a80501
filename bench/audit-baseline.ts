// The audit scenario's baseline (bench/scenarios/audit.ts), a child process: the bare minimum an export of a
// period has to do against Temporal — the same visibility query and pagination as exportPeriod
// (src/audit/export.ts changesInPeriod), then each listed workflow's history fetched once, one after the other,
// with no record built and nothing written. Prints one JSON line: changes and events fetched.
import { Client, Connection } from '@temporalio/client';
import { parseDate, periodQuery } from '../src/audit/export.ts';

const [repo, since, until] = process.argv.slice(2) as [string, string, string | undefined];
const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS as string });
const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE as string });
const ids = new Set<string>();
for await (const execution of client.workflow.list({
  query: periodQuery(repo, parseDate(since, '--since'), until ? parseDate(until, '--until') : undefined),
})) {
  if (execution.workflowId.startsWith('change:')) ids.add(execution.workflowId);
}
let events = 0;
for (const id of [...ids].sort()) {
  const history = await client.workflow.getHandle(id).fetchHistory();
  events += history.events?.length ?? 0;
}
await connection.close();
process.stdout.write(`${JSON.stringify({ changes: ids.size, events })}\n`);
