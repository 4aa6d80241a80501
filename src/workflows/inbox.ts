// The change's pull request inbox: events and closes arrive as signals, are taken only when the gateway signed
// them for this change, and are applied one at a time in arrival order, each with what the orchestrator read
// from GitHub for it — so what a head is, who wrote it and what it changes never comes from an event.
import { condition, isCancellation, log, patched } from '@temporalio/workflow';
import { shortSha } from '../policy/sod.ts';
import { CLOSE_ORDER_PATCH, HEAD_EVIDENCE_PATCH } from '../shared/patches.ts';
import type { ChangePolicy, PullRequestClosed, PullRequestEvent } from '../shared/types.ts';
import { github } from './activities.ts';
import { applyLookedUp, applyLookupFailure, receiveClosed, receiveEvent, type ChangeRecord } from './change-record.ts';
import { failureMessage } from './failures.ts';

/** What the inbox needs of the run it belongs to. */
export interface InboxHost {
  readonly record: ChangeRecord;
  ready(): Promise<ChangePolicy>;
  changed(): void;
  now(): number;
}

const INTERNAL = 'internal:';

export class Inbox {
  private refreshes = 0;

  constructor(private readonly host: InboxHost) {}

  async receive(event: PullRequestEvent): Promise<void> {
    const policy = await this.host.ready();
    if (receiveEvent(this.host.record, policy, event, this.host.now()) !== 'duplicate') this.host.changed();
  }

  async close(closed: PullRequestClosed): Promise<void> {
    const policy = await this.host.ready();
    const ordered = () => patched(CLOSE_ORDER_PATCH);
    if (receiveClosed(this.host.record, policy, closed, this.host.now(), ordered) !== 'duplicate') this.host.changed();
  }

  /** Read the pull request from GitHub again (its base changed under an approval): the workflow's own request. */
  refresh(head: string): void {
    this.host.record.pending.push({
      kind: 'edited',
      deliveryId: `${INTERNAL}${head}:${++this.refreshes}`,
      headSha: head,
      updatedAt: '',
      author: '',
      title: '',
      baseRef: '',
      headRef: '',
    });
  }

  /** Applies queued events for as long as the run lives. */
  start(): void {
    this.drain().catch((error: unknown) => {
      if (!isCancellation(error)) throw error;
    });
  }

  private async drain(): Promise<void> {
    // The record is the run's once it has begun (a carried or earlier record replaces the empty one).
    await this.host.ready();
    for (;;) {
      await condition(() => this.host.record.pending.length > 0);
      const record = this.host.record;
      const event = record.pending[0] as PullRequestEvent;
      // A closed pull request takes no more events, except the one that reopens it.
      if (!record.closed || event.kind === 'reopened') await this.apply(await this.host.ready(), event);
      record.pending.shift();
      this.host.changed();
    }
  }

  private async apply(policy: ChangePolicy, event: PullRequestEvent): Promise<void> {
    const record = this.host.record;
    if (record.headSha === '') record.waitingFor = `the pull request from GitHub (${shortSha(event.headSha)})`;
    try {
      const found = await github.lookUpPullRequest({ change: record.change });
      applyLookedUp(record, policy, event, found, this.host.now(), patched(HEAD_EVIDENCE_PATCH));
    } catch (error) {
      if (isCancellation(error)) throw error;
      // Fail safe: the head moves (the push did happen), but nobody can approve it until a later event reads it.
      applyLookupFailure(record, event, failureMessage(error), this.host.now());
      log.warn('pull request look-up failed', {
        change: record.change,
        headSha: event.headSha,
        error: failureMessage(error),
      });
    }
  }
}
