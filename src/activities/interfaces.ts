// The activity contracts of each trust zone, derived from the code that implements them. Workflow code imports
// these types only (never the implementations) and proxies each set on its zone's task queue.
import type { createChangeHistoryActivities } from './change-history.ts';
import type { createChecksActivities } from './checks.ts';
import type { createGitHubActivities } from './github.ts';
import type { createLaneActivities } from './lanes.ts';
import type { createPolicyActivities } from './policy.ts';
import type { createRollbackActivities } from './rollbacks.ts';
import type { createSlackActivities } from './slack.ts';
import type { createEmergencyAnnounceActivities } from './emergency-announce.ts';
import type { createTeamsActivities } from './teams.ts';
import type { DeployInput, DeployReport, LeaseRecord, VerifyReport } from '../shared/types.ts';

/** Orchestrator (task queue `foureyes`): trusted configuration, the change's own history, GitHub, Slack and Teams. */
export type OrchestratorActivities = ReturnType<typeof createPolicyActivities> &
  ReturnType<typeof createChangeHistoryActivities> &
  ReturnType<typeof createGitHubActivities> &
  ReturnType<typeof createSlackActivities> &
  ReturnType<typeof createTeamsActivities> &
  ReturnType<typeof createLaneActivities> &
  ReturnType<typeof createRollbackActivities> &
  ReturnType<typeof createEmergencyAnnounceActivities>;

/** Checks (task queue `foureyes-checks`): runs the change's own tests; holds no secrets. */
export type ChecksActivities = ReturnType<typeof createChecksActivities>;

/** Deployer (task queue `foureyes-deploy-<env>`, one per environment): the only zone with a Vault credential. */
export interface DeployActivities {
  /** lease -> run the deploy command with leased values -> revoke, all inside the deployer process. */
  deploy(input: DeployInput): Promise<DeployReport>;
  /** The environment's smoke command, with leased credentials if configured. */
  verify(input: DeployInput): Promise<VerifyReport>;
  /** Backstop: revoke every lease still outstanding for this change and environment. */
  revokeOutstanding(input: { change: string; environment: string; rollback?: string }): Promise<LeaseRecord[]>;
}
