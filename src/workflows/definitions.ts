// Signals, updates and queries of changeWorkflow: shared by the workflow, the gateway, the CLI and tests,
// so that a name exists once.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  ApprovalOutcome,
  ChangeStatus,
  PullRequestClosed,
  PullRequestEvent,
  SignedApproval,
} from '../shared/types.ts';
import type { RollbackStatus } from '../shared/rollback.ts';
import type { EmergencyOutcome, SignedEmergency } from '../shared/emergency.ts';

/** A pull request opened, reopened or received commits (sent with signalWithStart). */
export const pullRequestSignal = defineSignal<[PullRequestEvent]>('pullRequest');
/** The pull request was closed (merged or not). */
export const pullRequestClosedSignal = defineSignal<[PullRequestClosed]>('pullRequestClosed');
/** A signed approval, rejection or dismissal, fire-and-forget (e.g. from a GitHub review webhook). */
export const approvalSignal = defineSignal<[SignedApproval]>('approval');
/** The same, answered at once with whether it counted and why (Slack, CLI, API). */
export const approvalUpdate = defineUpdate<ApprovalOutcome, [SignedApproval]>('approve');
/** A signed break-glass declaration, answered at once with whether it was taken and why (CLI, API). */
export const emergencyUpdate = defineUpdate<EmergencyOutcome, [SignedEmergency]>('emergency');
/** Everything an operator needs to know about the change. */
export const statusQuery = defineQuery<ChangeStatus>('status');

export interface ChangeWorkflowInput {
  /** owner/repo#number */
  change: string;
  /** State carried across continue-as-new; absent on the first run. */
  carried?: unknown;
  /** Continue-as-new (at a quiet point) once the history has more events than this; default 10 000. Tests set it low. */
  historyEventLimit?: number;
}

/** Where a rollback stands: who asked, what goes back to what, and each step. */
export const rollbackStatusQuery = defineQuery<RollbackStatus>('status');
