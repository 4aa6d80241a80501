// The change's approval card in Teams, kept current beside the change and never holding it up: once the
// change waits for approval of a head, `syncTeamsCard` posts the card; from then on, whenever what the card
// shows changed (approvals, stage, deploys, a push that voids it), one call updates that same message with
// the latest status. Retried through a Teams outage (status shows the retry), then given up until the next
// change. The posted message is remembered in `state.teamsCard`, so it survives continue-as-new.
import { CancellationScope, condition, isCancellation, log, proxyActivities } from '@temporalio/workflow';
import type { OrchestratorActivities } from '../activities/interfaces.ts';
import type { TeamsCardRecord } from '../shared/teams-card.ts';
import type { ApprovalRecord, ChangeStage, ChangeStatus, EnvironmentStatus } from '../shared/types.ts';

/** What the tracker reads and keeps of a change's record (core v1's state and core v2's record both have it). */
export interface CardState {
  headSha: string;
  stage: ChangeStage;
  waitingFor: string;
  approvals: ApprovalRecord[];
  environments: EnvironmentStatus[];
  teamsCard?: TeamsCardRecord;
}

const { syncTeamsCard } = proxyActivities<OrchestratorActivities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 15,
    nonRetryableErrorTypes: ['TeamsConfigError', 'TeamsConversationError'],
  },
});

export interface TeamsCardTracker {
  /** The change waits for approval of `head`: post its card if there is none. */
  ask(head: string): void;
  /** Waits (at most a minute) until the card shows the latest status or was given up on. */
  flush(): Promise<void>;
}

/** Everything the card shows, as one string: a different view is a reason to update the message. */
function view(state: CardState): string {
  return [
    state.headSha,
    state.stage,
    state.waitingFor,
    state.approvals.length,
    state.approvals.filter((a) => a.voidedAt).length,
    ...state.environments.map((e) => e.state),
  ].join('|');
}

export function startTeamsCard(state: CardState, snapshot: () => ChangeStatus): TeamsCardTracker {
  let asked = '';
  let notConfigured = false;
  let attempted = '';
  let busy = false;
  const wantsPost = () =>
    !notConfigured &&
    asked === state.headSha &&
    state.stage === 'awaiting-approval' &&
    state.teamsCard?.sha !== state.headSha;
  const due = () => (wantsPost() || state.teamsCard !== undefined) && view(state) !== attempted;

  const loop = async () => {
    for (;;) {
      await condition(due);
      const target = view(state);
      busy = true;
      try {
        const result = await syncTeamsCard({
          status: snapshot(),
          ...(state.teamsCard ? { card: state.teamsCard } : {}),
          post: wantsPost(),
        });
        if (!result.configured) notConfigured = true;
        if (result.card) state.teamsCard = result.card;
        else delete state.teamsCard;
      } catch (error) {
        if (isCancellation(error)) throw error;
        log.warn('Teams approval card not updated; the change goes on', {
          error: error instanceof Error ? error.message : String(error),
        });
      } finally {
        busy = false;
      }
      attempted = target;
    }
  };
  // Started from inside a head's delivery attempt, which a push cancels: the card must outlive it.
  CancellationScope.nonCancellable(loop).catch((error: unknown) => {
    if (!isCancellation(error)) log.error('Teams card tracker stopped', { error: String(error) });
  });
  return {
    ask: (head) => void (asked = head),
    flush: async () => void (await condition(() => !busy && !due(), '1 minute')),
  };
}
