// An environment's lane: the workflow that lets one change at a time deploy to one environment of one
// repository, and keeps that environment's release history. Pure: imported by workflow code, activities,
// the gateway and the CLI.
import { TASK_QUEUES } from './task-queues.ts';

/**
 * `lane:owner/repo@env` on foureyes' own task queue. A foureyes on another queue (a second installation in
 * the namespace, a test) keeps lanes of its own: `lane:owner/repo@env~queue`.
 */
export function laneIdFor(repo: string, environment: string, taskQueue: string = TASK_QUEUES.orchestrator): string {
  const base = `lane:${repo}@${environment}`;
  return taskQueue === TASK_QUEUES.orchestrator ? base : `${base}~${taskQueue}`;
}

export interface LaneRef {
  repo: string;
  environment: string;
  taskQueue: string;
}

const LANE_ID =
  /^lane:([A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9._-]{1,100})@([A-Za-z0-9._-]{1,64})(?:~([A-Za-z0-9._-]{1,200}))?$/;

export function parseLaneId(id: string): LaneRef | undefined {
  const match = typeof id === 'string' ? LANE_ID.exec(id) : null;
  if (!match) return undefined;
  return { repo: match[1] as string, environment: match[2] as string, taskQueue: match[3] ?? TASK_QUEUES.orchestrator };
}

/**
 * The activity IDs a change workflow gives its lane activities: the lane recognises its own caller by one of
 * these pending in the caller's workflow (an insider's signal cannot make a workflow schedule an activity).
 */
export function laneActivityPrefix(repo: string, environment: string, kind: 'acquire' | 'release'): string {
  return `lane|${repo}@${environment}|${kind}|`;
}

/** One change's place in the lane. */
export interface LaneTicket {
  workflowId: string;
  runId: string;
  change: string;
  sha: string;
  approvers: string[];
  /** 'rollback' for a back-out to an earlier release. */
  kind: 'change' | 'rollback';
  /** Deployed under the emergency this person declared, without approval. */
  emergency?: string;
  requestedAt: string;
  grantedAt?: string;
}

export type ReleaseOutcome = 'deployed' | 'failed' | 'cancelled' | 'reclaimed';

/** One deploy the lane let through, and how it ended. */
export interface LaneRelease {
  sha: string;
  change: string;
  approvers: string[];
  kind: 'change' | 'rollback';
  /** Deployed under the emergency this person declared, without approval: no rollback target. */
  emergency?: string;
  workflowId: string;
  runId: string;
  grantedAt: string;
  endedAt: string;
  outcome: ReleaseOutcome;
  /** Why it ended so (a reclaim names the holder's end). */
  reason: string;
}

/** A request or release the lane refused, and why (kept for the audit; the latest few). */
export interface LaneRefusal {
  at: string;
  what: 'request' | 'release';
  workflowId: string;
  runId: string;
  reason: string;
}

/** Answer of the lane's `state` query. */
export interface LaneState {
  v: 1;
  lane: string;
  repo: string;
  environment: string;
  holder?: LaneTicket;
  queue: LaneTicket[];
  /** The release running in the environment now: the latest that deployed. */
  running?: LaneRelease;
  /** Every release, oldest first. */
  releases: LaneRelease[];
  /** Tickets the lane turned down at their turn (a head older than the running release), by run ID. */
  declined: Record<string, string>;
  refusals: LaneRefusal[];
  /** Set after a holder was reclaimed: no grant before `until`, while that holder's deploy may still run. */
  grace?: { until: string; reason: string };
}

/** What a lane publishes in its memo (key `lane`) each time it changes: enough for a change to learn its answer. */
export interface LaneMemo {
  v: 1;
  /**
   * The lane run that wrote it. Whoever starts a workflow may give it any memo; only the run itself knows its run
   * ID before it starts, so a memo naming another run (forged at start, or carried over by continue-as-new) is
   * not the lane's answer.
   */
  run: string;
  holder?: { workflowId: string; runId: string; change: string; sha: string };
  queue: Array<{ workflowId: string; runId: string; change: string }>;
  running?: { sha: string; change: string };
  /** Turned down at their turn, by run ID (the latest 50). */
  declined: Record<string, string>;
  /** Requests the lane refused, by run ID (the latest 50). */
  refused: Record<string, string>;
}

export function laneMemoOf(state: LaneState, run: string): LaneMemo {
  const refused: Record<string, string> = {};
  for (const r of state.refusals) if (r.what === 'request') refused[r.runId] = r.reason;
  return {
    v: 1,
    run,
    ...(state.holder
      ? {
          holder: {
            workflowId: state.holder.workflowId,
            runId: state.holder.runId,
            change: state.holder.change,
            sha: state.holder.sha,
          },
        }
      : {}),
    queue: state.queue.map((t) => ({ workflowId: t.workflowId, runId: t.runId, change: t.change })),
    ...(state.running ? { running: { sha: state.running.sha, change: state.running.change } } : {}),
    declined: state.declined,
    refused,
  };
}

/** What an acquire came to, as the acquiring activity read it from the lane. */
export type LaneGrant =
  { granted: true; lane: string; running?: string } | { granted: false; lane: string; reason: string };

/** Who asked the lane, as the Temporal server knows them (an activity's look-up). */
export interface LaneCallerFacts {
  workflowId: string;
  runId: string;
  found: boolean;
  workflowType?: string;
  taskQueue?: string;
  /** RUNNING, COMPLETED, TERMINATED, … */
  status?: string;
  /** The caller's pending activities: type and ID. */
  pending: Array<{ type: string; id: string }>;
  /** The change as its own workflow answers (a change workflow's status query). */
  change?: {
    change: string;
    headSha: string;
    /** `emergency`: who declared the emergency it deploys under, without approval. */
    environment?: { state: string; approvedBy: string[]; deployedSha?: string; emergency?: string };
  };
  /** GitHub's compare of that head (`base`) with the release the lane said runs (`head`), when it asked. */
  comparison?: { base: string; head: string; result: CommitComparison };
}

/** GitHub's compare of two commits: `base...head`. */
export interface CommitComparison {
  status: 'ahead' | 'behind' | 'identical' | 'diverged';
  aheadBy: number;
  behindBy: number;
}

/** One environment of a repository as `foureyes environments` and GET /api/environments show it. */
export interface EnvironmentView {
  repo: string;
  environment: string;
  lane: string;
  /** The release running there now: the latest that deployed through the lane. */
  running?: LaneRelease;
  /** The change deploying now. */
  holder?: LaneTicket;
  /** Why the lane grants nothing before `until` (a reclaimed holder's deploy may still run). */
  grace?: { until: string; reason: string };
  queue: LaneTicket[];
  /** The last releases, newest first. */
  releases: LaneRelease[];
}
