// Workflow entry point bundled into Temporal's sandbox.
export { changeWorkflow } from './change.ts';
export { teamsConversationsWorkflow } from './teams-conversations.ts';
export { laneWorkflow } from './lane.ts';
export { rollbackWorkflow } from './rollback.ts';
