// FROZEN (core v1): the code that runs started before core v2 (the patch `core-v2` in ../change.ts) keep
// running and replaying with, unchanged. New behaviour goes into the v2 modules beside ../change.ts, never here.
// The activity contracts of each trust zone. Workflow code imports these types only (never the
// implementations), and proxies each set on its own task queue.
import type { ApprovalRequestMessage } from '../../shared/slack-format.ts';
import type {
  ChangePolicy,
  ChangeStatus,
  ChecksReport,
  CommitInfo,
  DeployInput,
  DeployReport,
  LeaseRecord,
  VerifyReport,
} from '../../shared/types.ts';

/** Orchestrator (task queue `foureyes`): trusted configuration and GitHub/Slack reporting. */
export interface OrchestratorActivities {
  /** The policy snapshot for a repository, from trusted configuration (never from the change). */
  loadPolicy(input: { repo: string }): Promise<ChangePolicy>;
  /** Reconcile GitHub with the change's status: check runs, deployments, the summary comment. Idempotent. */
  syncGitHub(input: { status: ChangeStatus }): Promise<void>;
  /** Before production: re-read GitHub reviews and confirm that the approvals through `github` still stand for `sha`. */
  confirmReviews(input: { change: string; sha: string; reviewIds: string[] }): Promise<{ ok: boolean; reason: string }>;
  /**
   * The commits and changed files of the pull request as GitHub lists them now, for a pull request event the
   * gateway recorded without them (`headSha`/`beforeSha` only name the event in the history and the logs).
   */
  lookUpPullRequestChanges(input: {
    change: string;
    kind: string;
    headSha: string;
    beforeSha?: string;
  }): Promise<{ commits: CommitInfo[]; changedFiles: string[] }>;
  /** Optional merge after production, guarded by the head SHA. */
  mergePullRequest(input: { change: string; sha: string }): Promise<{ merged: boolean; reason: string }>;
  /**
   * Post "waiting for approval" to Slack (Block Kit, Approve per environment + Reject buttons carrying the
   * change and head SHA). Not configured (no SLACK_BOT_TOKEN/SLACK_CHANNEL) = `{ posted: false }`, no error.
   */
  notifySlack(
    input: ApprovalRequestMessage,
  ): Promise<{ posted: boolean; reason?: string; channel?: string; ts?: string }>;
}

/** Checks (task queue `foureyes-checks`): runs the change's own tests; holds no secrets. */
export interface ChecksActivities {
  runChecks(input: { change: string; sha: string }): Promise<ChecksReport>;
}

/** Deployer (task queue `foureyes-deploy`): the only zone with a Vault credential. */
export interface DeployActivities {
  /** lease -> run the deploy command with leased values -> revoke, all inside the deployer process. */
  deploy(input: DeployInput): Promise<DeployReport>;
  /** The environment's smoke command, with leased credentials if configured. */
  verify(input: DeployInput): Promise<VerifyReport>;
  /** Backstop: revoke every lease still outstanding for this change and environment. */
  revokeOutstanding(input: { change: string; environment: string }): Promise<LeaseRecord[]>;
}
