// Entry point of the orchestrator worker (task queue of its trust zone; see docs/architecture.md).
import { TeamsConfigError } from '../activities/teams-connector.ts';
import { runZone } from './run.ts';

try {
  await runZone('orchestrator');
} catch (error) {
  if (!(error instanceof TeamsConfigError)) throw error;
  console.error(`orchestrator: ${error.message}`);
  process.exit(1);
}
