// What the people around a change see of it, kept current and never in its way: the search attributes and the
// one line of current details in the Temporal UI, the GitHub report (check runs, deployments, the summary
// comment) and the approval request in chat. Each is written only when what it shows has changed; GitHub and
// chat are best effort (an outage never holds up or fails the change).
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import {
  condition,
  isCancellation,
  log,
  setCurrentDetails,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { shortSha } from '../policy/sod.ts';
import {
  ApproversAttr,
  AuthorAttr,
  EmergencyAttr,
  HeadShaAttr,
  InitiatorsAttr,
  PullNumberAttr,
  RepoAttr,
  StageAttr,
} from '../shared/search-attributes.ts';
import { EMERGENCY_MEMO_KEY, emergencyState } from '../shared/emergency.ts';
import type { ChangePolicy, ChangeStatus, EnvironmentPolicy } from '../shared/types.ts';
import { reporting } from './activities.ts';
import { currentApprovers, type ChangeRecord } from './change-record.ts';

/** Work the reporter's loop does besides reporting (./emergency.ts). */
export interface ReporterDuty {
  due(): boolean;
  /** When `due` turns true by itself (ms), if it will. */
  deadline(): number | undefined;
  act(): Promise<void>;
}

export class Visibility {
  private lastAttributes = '';
  private lastDetails = '';
  private lastEmergencies = '';
  private wanted = '';
  private reported = '';
  private busy = false;

  constructor(private readonly snapshot: () => ChangeStatus) {}

  /**
   * Starts the GitHub reporter: one `syncGitHub` whenever what GitHub shows changed, the latest status each time.
   * `duty` (the emergency watch) runs in the same loop, before the report, when it is due or its deadline came.
   */
  start(duty?: ReporterDuty): void {
    const loop = async () => {
      for (;;) {
        const wanted = () => this.wanted !== this.reported || duty?.due() === true;
        const deadline = duty?.deadline();
        if (deadline === undefined) await condition(wanted);
        else await condition(wanted, Math.max(1, deadline - Date.now()));
        if (duty?.due()) {
          await duty.act();
          continue;
        }
        if (this.wanted === this.reported) continue;
        await this.report();
      }
    };
    loop().catch((error: unknown) => {
      if (!isCancellation(error)) log.error('GitHub reporter stopped', { error: String(error) });
    });
  }

  private async report(): Promise<void> {
    const target = this.wanted;
    this.busy = true;
    try {
      await reporting.syncGitHub({ status: this.snapshot() });
    } catch (error) {
      if (isCancellation(error)) throw error;
      log.warn('GitHub report failed; the change goes on', {
        error: error instanceof Error ? error.message : String(error),
      });
    } finally {
      this.busy = false;
    }
    this.reported = target;
  }

  /** The record changed: update the UI's view now and have GitHub's caught up. */
  update(record: ChangeRecord, policy: ChangePolicy | undefined, now: number): void {
    this.publish(record, policy, now);
    if (record.headSha) this.wanted = githubView(this.snapshot());
  }

  /** Waits (at most a minute) until GitHub shows the latest status or the report was given up on. */
  async flush(): Promise<void> {
    await condition(() => this.reported === this.wanted && !this.busy, '1 minute');
  }

  /** Once per head: the approval request in chat (Slack buttons pinned to the head), in the background. */
  askApprovers(record: ChangeRecord, policy: ChangePolicy, head: string): void {
    if (record.notified === head) return;
    record.notified = head;
    const pending = record.environments
      .filter((e) => e.state === 'pending')
      .map((e) => policy.environments.find((pe) => pe.name === e.name))
      .filter((e): e is EnvironmentPolicy => e !== undefined && e.required > 0);
    const info = workflowInfo();
    const url = `${policy.temporalUiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(info.namespace)}/workflows/${encodeURIComponent(info.workflowId)}/${info.runId}`;
    reporting
      .notifySlack({
        change: record.change,
        title: record.title,
        sha: head,
        author: record.author,
        environments: pending.map((e) => ({ name: e.name, required: e.required, confirm: e.confirm })),
        url,
      })
      .then(
        (r) => log.info('approval request posted to chat', { posted: r.posted, reason: r.reason }),
        (error: unknown) => {
          if (!isCancellation(error)) log.warn('could not post the approval request to chat', { error: String(error) });
        },
      );
  }

  /** Search attributes (filterable in the Temporal UI) and the current details line, each only when it changed. */
  private publish(record: ChangeRecord, policy: ChangePolicy | undefined, now: number): void {
    const details = `**${record.stage}** ${record.change} @ ${shortSha(record.headSha) || '—'}: waiting for ${record.waitingFor}`;
    if (details !== this.lastDetails) {
      this.lastDetails = details;
      setCurrentDetails(details);
    }
    const [repo, number] = record.change.split('#');
    const attributes: SearchAttributeUpdatePair[] = [
      { key: RepoAttr, value: repo ?? '' },
      { key: PullNumberAttr, value: Number(number) },
      { key: StageAttr, value: record.stage },
    ];
    if (record.author) attributes.push({ key: AuthorAttr, value: record.author });
    if (record.headSha) attributes.push({ key: HeadShaAttr, value: record.headSha });
    const initiators = Object.keys(record.initiators).sort();
    if (initiators.length > 0) attributes.push({ key: InitiatorsAttr, value: initiators });
    attributes.push({
      key: ApproversAttr,
      value: policy && record.headSha ? currentApprovers(record, policy, now) : [],
    });
    const latest = record.emergencies?.at(-1);
    if (latest) attributes.push({ key: EmergencyAttr, value: emergencyState(latest, now) });
    this.publishEmergencies(record);
    const key = JSON.stringify(attributes.map((a) => a.value));
    if (key === this.lastAttributes) return;
    this.lastAttributes = key;
    upsertSearchAttributes(attributes);
  }

  /** The emergencies as the workflow decided them, into the memo whenever one changed: the audit reads them there. */
  private publishEmergencies(record: ChangeRecord): void {
    if (!record.emergencies?.length) return;
    const value = JSON.stringify(record.emergencies);
    if (value === this.lastEmergencies) return;
    this.lastEmergencies = value;
    upsertMemo({ [EMERGENCY_MEMO_KEY]: record.emergencies });
  }
}

/** What GitHub shows of a status (check runs, deployments, the summary comment): the timeline and runs are not on it. */
function githubView(status: ChangeStatus): string {
  const { timeline: _timeline, runs: _runs, runIds: _runIds, retrying: _retrying, ...shown } = status;
  return JSON.stringify(shown);
}
