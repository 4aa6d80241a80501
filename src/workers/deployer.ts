// Entry point of the deploy worker (task queue of its trust zone; see DESIGN.md).
import { runZone } from './run.ts';

await runZone('deploy');
