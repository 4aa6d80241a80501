// Entry point of the checks worker (task queue of its trust zone; see docs/architecture.md).
import { runZone } from './run.ts';

await runZone('checks');
