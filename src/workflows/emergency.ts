// Break-glass after the declaration: announce it at once (Slack, Teams, the pull request), close it when its
// window ends unused, and when the retroactive review is overdue record the finding and announce it again.
// A timer runs only while an emergency is open: a change without one adds no event.
import { condition, isCancellation, workflowInfo } from '@temporalio/workflow';
import { emergencyLapse } from '../policy/sod.ts';
import { emergencyView, type EmergencyRecord } from '../shared/emergency.ts';
import type { ChangePolicy } from '../shared/types.ts';
import { reporting } from './activities.ts';
import { closeLapsedEmergencies, markEmergencyOverdue, note, type ChangeRecord } from './change-record.ts';

/** What the watch needs of the run it belongs to. */
export interface EmergencyHost {
  readonly record: ChangeRecord;
  readonly policy: ChangePolicy | undefined;
  now(): number;
  changed(): void;
}

export class EmergencyWatch {
  constructor(private readonly host: EmergencyHost) {}

  /** Waits until no deploy under an emergency still owes its review. */
  async reviewed(): Promise<void> {
    await condition(() => !this.owing());
  }

  private owing(): EmergencyRecord | undefined {
    return this.host.record.emergencies?.find((e) => !e.closedHow && e.usedFor.length > 0);
  }

  /**
   * Whether something is to be done now. Run by the GitHub reporter's one loop (./visibility.ts) rather than a
   * loop of its own: two loops woken by the same change would schedule their activities in an order that a
   * replay need not repeat.
   */
  due(): boolean {
    const { record } = this.host;
    if (!record.emergencies?.length) return false;
    const now = this.host.now();
    return record.emergencies.some(
      (e) =>
        !e.announcedAt ||
        (!e.closedHow && e.usedFor.length > 0 && !e.overdueAt && now >= Date.parse(e.reviewDueAt)) ||
        (!e.closedHow && emergencyLapse(e, record.headSha, now) !== undefined),
    );
  }

  /** The next moment an open emergency changes by itself: its window ends unused, or its review falls due. */
  deadline(): number | undefined {
    let next: number | undefined;
    for (const e of this.host.record.emergencies ?? []) {
      if (e.closedHow) continue;
      const at =
        e.usedFor.length === 0 ? Date.parse(e.windowEndsAt) : e.overdueAt ? undefined : Date.parse(e.reviewDueAt);
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  /** Announces a new declaration, records and announces an overdue review, closes what lapsed: one at a time. */
  async act(): Promise<void> {
    const { record } = this.host;
    const now = this.host.now();
    const unannounced = record.emergencies?.find((e) => !e.announcedAt);
    const overdue = record.emergencies?.find(
      (e) => !e.closedHow && e.usedFor.length > 0 && !e.overdueAt && now >= Date.parse(e.reviewDueAt),
    );
    if (unannounced) {
      await this.announce(unannounced, 'declared');
      unannounced.announcedAt = new Date(this.host.now()).toISOString();
    } else if (overdue) {
      markEmergencyOverdue(record, overdue, now);
      this.host.changed();
      await this.announce(overdue, 'overdue');
      overdue.overdueAnnouncedAt = new Date(this.host.now()).toISOString();
    } else closeLapsedEmergencies(record, now);
    this.host.changed();
  }

  /** Best effort: an outage of Slack, Teams or GitHub never holds up the change; what happened is in its timeline. */
  private async announce(e: EmergencyRecord, kind: 'declared' | 'overdue'): Promise<void> {
    const { record, policy } = this.host;
    const info = workflowInfo();
    const url = `${(policy?.temporalUiUrl ?? '').replace(/\/$/, '')}/namespaces/${encodeURIComponent(info.namespace)}/workflows/${encodeURIComponent(info.workflowId)}/${info.runId}`;
    try {
      const result = await reporting.announceEmergency({
        kind,
        change: record.change,
        title: record.title,
        emergency: emergencyView(e, this.host.now()),
        url,
      });
      note(record, this.host.now(), `emergency-${kind}-announced`, result.summary, { sha: e.sha });
    } catch (error) {
      if (isCancellation(error)) throw error;
      note(
        record,
        this.host.now(),
        `emergency-${kind}-announce-failed`,
        `could not announce the emergency: ${error instanceof Error ? error.message : String(error)}`,
        { sha: e.sha },
      );
    }
  }
}
