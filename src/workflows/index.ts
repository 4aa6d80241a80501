// Workflow entry point bundled into Temporal's sandbox.
export { changeWorkflow } from './change.ts';
