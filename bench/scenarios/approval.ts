// 3. Approval latency: from the approval request's arrival at the gateway (POST /api/changes/…/approvals,
// Bearer token checked against the GitHub stand-in, signed claim, Temporal update) to the start of the first
// deploy activity in the deploy worker process. One change at a time, each waiting for approval.
// Baseline: the bare workflow's signal sent straight to Temporal, to the start of its first activity after it.
import type { Client } from '@temporalio/client';
import proto, { type temporal } from '@temporalio/proto';
import { startBenchEnv, sha, within } from '../env.ts';
import { startBenchGateway } from '../gateway.ts';
import { fmt, median, nowMs, ratio, ratioSpread, summarize, table, type Summary } from '../stats.ts';
import type { WorkerMessage } from '../worker.ts';
import { recordGoal, say, type Scenario } from './types.ts';

/**
 * What the lane adds to a change's first deploy, from its own history: from the moment the workflow asked for the
 * lane (acquireLane scheduled) to the moment it scheduled the deploy, which without a lane it would have done at
 * once. Server times, ms.
 */
function laneShare(history: temporal.api.history.v1.IHistory): number {
  const time = (e: temporal.api.history.v1.IHistoryEvent) =>
    Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
  const scheduled = (type: string) =>
    history.events?.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type);
  const acquire = scheduled('acquireLane');
  const deploy = scheduled('deploy');
  if (!acquire || !deploy) throw new Error('no acquireLane or deploy in the change history');
  return time(deploy) - time(acquire);
}

const eventTime = (e: temporal.api.history.v1.IHistoryEvent) =>
  Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;

/**
 * FOUREYES_BENCH_LANE_TRACE=1: where the lane's part of one change goes — the change's and its lane's events
 * from acquireLane scheduled to the deploy scheduled, in server time (ms after acquireLane scheduled).
 */
async function traceLane(client: Client, change: string): Promise<void> {
  const events = async (workflowId: string, runId?: string) =>
    (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
  const mine = await events(`change:${change}`);
  const label = (e: temporal.api.history.v1.IHistoryEvent) =>
    `${(proto.temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? '').replace('EVENT_TYPE_', '')} ${
      e.activityTaskScheduledEventAttributes?.activityType?.name ??
      e.workflowExecutionSignaledEventAttributes?.signalName ??
      ''
    }`;
  const acquire = mine.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'acquireLane');
  const deploy = mine.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'deploy');
  if (!acquire || !deploy) return;
  const from = eventTime(acquire);
  const to = eventTime(deploy);
  const rows: Array<[number, string]> = [];
  for (const e of mine)
    if (eventTime(e) >= from && eventTime(e) <= to) rows.push([eventTime(e) - from, `change ${label(e)}`]);
  for await (const w of client.workflow.list({ query: 'WorkflowType = "laneWorkflow"' })) {
    const lane = await events(w.workflowId, w.runId);
    for (const e of lane)
      if (eventTime(e) >= from && eventTime(e) <= to)
        rows.push([eventTime(e) - from, `lane#${lane.length} ${Number(e.eventId)} ${label(e)}`]);
  }
  rows.sort((a, b) => a[0] - b[0]);
  say(`lane trace of ${change}:\n${rows.map(([t, what]) => `${t.toFixed(1).padStart(8)} ms  ${what}`).join('\n')}`);
}

export const approval: Scenario = {
  name: 'approval',
  title: '3. Approval latency: approval request at the gateway -> first deploy activity starts',
  async run(options) {
    const n = options.n ?? (options.quick ? 5 : 15);
    const env = await startBenchEnv('approval', {
      ...(options.maxCached !== undefined ? { maxCachedWorkflows: options.maxCached } : {}),
    });
    const gateway = await startBenchGateway(env);
    const deployStarts = new Map<string, number>();
    const marks = new Map<string, number>();
    env.onMessage.push((m: WorkerMessage) => {
      if (m.type === 'deploy' && !deployStarts.has(m.change)) deployStarts.set(m.change, m.t);
      if (m.type === 'bareMarked') marks.set(m.id, m.t);
    });
    const until = async (what: string, ok: () => boolean) => {
      const deadline = Date.now() + 120_000;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`${what}: not after 120 s`);
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    try {
      // Two interleaved series of the same request: approvals without a sha are refused since core v2.
      const measure = async (number: number, _series: boolean) => {
        const change = `acme/shop#${number}`;
        const head = sha();
        const waiting = env.awaiting(change);
        await env.openChange(change, head);
        await within(`${change} waiting`, 120_000, waiting);
        const path = `/api/changes/acme/shop/${number}/approvals`;
        const sent = nowMs();
        const res = await fetch(`${gateway.url}${path}`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${gateway.tokens['alex-reviewer']}`,
            'content-type': 'application/json',
            'x-foureyes-client': 'cli',
          },
          // The gateway requires the commit the person reviewed (the CLI sends the head it shows).
          body: JSON.stringify({ sha: head }),
        });
        const answer = (await res.json()) as { counted?: boolean; reason?: string };
        const answered = nowMs();
        if (!answer.counted)
          throw new Error(
            `approval of ${change} not counted (${res.status}): ${answer.reason ?? JSON.stringify(answer)}`,
          );
        await until(`${change} deploy`, () => deployStarts.has(change));
        const handle = env.client.workflow.getHandle(`change:${change}`);
        await within(`${change} done`, 120_000, handle.result());
        const arrived = gateway.arrivals.get(`POST ${path}`) ?? sent;
        if (process.env.FOUREYES_BENCH_LANE_TRACE === '1' && number % 5 === 0) await traceLane(env.client, change);
        return {
          toDeploy: (deployStarts.get(change) as number) - arrived,
          response: answered - sent,
          lane: laneShare(await handle.fetchHistory()),
        };
      };
      const bareInput = { before: ['orchestrator', 'checks'], after: ['deploy', 'deploy', 'orchestrator'] };
      const measureBare = async (id: string) => {
        const waiting = env.bareAwaiting(id);
        await env.startBare(id, bareInput);
        await within(`${id} waiting`, 120_000, waiting);
        const sent = nowMs();
        await env.signalBare(id);
        await until(`${id} mark`, () => marks.has(id));
        await within(`${id} done`, 120_000, env.client.workflow.getHandle(id).result());
        return (marks.get(id) as number) - sent;
      };
      await measure(1, false);
      await measure(2, true);
      await measureBare('bare-warm');
      type Round = { a: Summary; s: Summary; b: Summary; ra: Summary; rs: Summary; lane: Summary };
      const rounds: Round[] = [];
      let number = 100;
      for (let round = 0; round < options.rounds; round++) {
        const noSha = [] as Array<{ toDeploy: number; response: number; lane: number }>;
        const withSha = [] as Array<{ toDeploy: number; response: number; lane: number }>;
        const bare: number[] = [];
        // Interleaved, so that a busy moment on the shared machine hits all three alike.
        for (let i = 0; i < n; i++) {
          noSha.push(await measure(number++, false));
          withSha.push(await measure(number++, true));
          bare.push(await measureBare(`bare-${round}-${i}`));
        }
        const r: Round = {
          a: summarize(noSha.map((x) => x.toDeploy)),
          s: summarize(withSha.map((x) => x.toDeploy)),
          b: summarize(bare),
          ra: summarize(noSha.map((x) => x.response)),
          rs: summarize(withSha.map((x) => x.response)),
          lane: summarize([...noSha, ...withSha].map((x) => x.lane)),
        };
        rounds.push(r);
        say(
          `round ${round + 1}: arrival -> first deploy p50 ${fmt(r.a.p50)} (A) / ${fmt(r.s.p50)} (B) vs ${fmt(r.b.p50)} ms bare (${ratio(r.a.p50, r.b.p50)}); the lane's part p50 ${fmt(r.lane.p50)} ms`,
        );
      }
      const med = (f: (r: Round) => number) => median(rounds.map(f));
      const ratios = (f: (r: Round) => number, g: (r: Round) => number) => rounds.map((r) => f(r) / g(r));
      say(
        `${n} approvals of each kind a round, ${options.rounds} rounds, one change at a time (after warm-up); deploy start = the deploy activity's first line in the deploy worker process; figures are medians of the rounds, ratios the median (lowest–highest) of the per-round ratios`,
      );
      say(
        table(
          [
            'figure (ms)',
            'gateway, series A',
            'gateway, series B',
            'bare: signal -> next activity',
            'ratio (A / bare)',
            'ratio (B / bare)',
          ],
          [
            [
              'arrival -> first deploy p50',
              fmt(med((r) => r.a.p50)),
              fmt(med((r) => r.s.p50)),
              fmt(med((r) => r.b.p50)),
              ratioSpread(
                ratios(
                  (r) => r.a.p50,
                  (r) => r.b.p50,
                ),
              ),
              ratioSpread(
                ratios(
                  (r) => r.s.p50,
                  (r) => r.b.p50,
                ),
              ),
            ],
            [
              'arrival -> first deploy p99',
              fmt(med((r) => r.a.p99)),
              fmt(med((r) => r.s.p99)),
              fmt(med((r) => r.b.p99)),
              ratioSpread(
                ratios(
                  (r) => r.a.p99,
                  (r) => r.b.p99,
                ),
              ),
              ratioSpread(
                ratios(
                  (r) => r.s.p99,
                  (r) => r.b.p99,
                ),
              ),
            ],
            ['HTTP answer (counted) p50', fmt(med((r) => r.ra.p50)), fmt(med((r) => r.rs.p50)), '', '', ''],
            [
              "the lane's part: acquireLane scheduled -> deploy scheduled p50",
              fmt(med((r) => r.lane.p50)),
              '(A and B)',
              '',
              ratioSpread(
                ratios(
                  (r) => r.lane.p50,
                  (r) => r.a.p50,
                ),
              ) + ' of A',
              '',
            ],
          ],
        ),
      );
      const p50 = med((r) => r.a.p50);
      const toDeploy = ratios(
        (r) => r.a.p50,
        (r) => r.b.p50,
      );
      const laneP50 = med((r) => r.lane.p50);
      recordGoal(
        'the lane adds < 50 ms p50 to approval → first deploy',
        `p50 ${fmt(laneP50)} ms of ${fmt(p50)} ms (acquireLane scheduled -> deploy scheduled, same changes)`,
        ratios(
          (r) => r.lane.p50,
          (r) => r.a.p50,
        ),
        () => true,
        laneP50 < 50,
      );
      recordGoal(
        'approval → first deploy p50 ≤ 1.2× bare and < 100 ms',
        `p50 ${fmt(p50)} / ${fmt(med((r) => r.b.p50))} ms bare, ${n} a round`,
        toDeploy,
        (x) => x <= 1.2,
        p50 < 100,
      );
    } finally {
      await gateway.stop();
      await env.stop();
    }
  },
};
