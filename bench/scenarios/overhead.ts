// 2. Orchestration overhead: one change at a time through checks -> approval -> staging -> production with
// instant activities; overhead per stage = (wall time - activity time) / 4. Baseline: the bare workflow with
// the same number of activities (sequential) and one signal, sent the same way as the approval. Repeated in
// rounds interleaved with the baseline; also counts each change's history events against the bare run's.
// CommonJS package: its named exports are not visible to Node's ESM loader.
import proto from '@temporalio/proto';
import { bareInputLike, startBenchEnv, sha, within } from '../env.ts';
import { fmt, median, ratio, ratioSpread, summarize, table, type Summary } from '../stats.ts';
import { recordGoal, say, type Scenario } from './types.ts';

const STAGES = 4;

export const overhead: Scenario = {
  name: 'overhead',
  title: '2. Orchestration overhead per stage (checks, approval, staging, production)',
  async run(options) {
    const n = options.n ?? (options.quick ? 5 : 20);
    const env = await startBenchEnv('overhead', {
      ...(options.maxCached !== undefined ? { maxCachedWorkflows: options.maxCached } : {}),
    });
    try {
      const driveChange = async (number: number) => {
        const change = `acme/shop#${number}`;
        const head = sha();
        await env.activityStats(true);
        const t0 = performance.now();
        const waiting = env.awaiting(change);
        await env.openChange(change, head);
        await within(`${change} waiting for approval`, 120_000, waiting);
        await env.approve(change, head);
        await within(`${change} done`, 120_000, env.client.workflow.getHandle(`change:${change}`).result());
        const wall = performance.now() - t0;
        const stats = await env.activityStats(true);
        return { wall, ...stats };
      };
      // Warm-up (bundle load, connections), and the activity count the baseline mirrors.
      const warm = await driveChange(1);
      await driveChange(2);
      const counts = warm.perZone;
      const input = bareInputLike(warm.perZone);
      const driveBare = async (id: string) => {
        await env.activityStats(true);
        const t0 = performance.now();
        const waiting = env.bareAwaiting(id);
        await env.startBare(id, input);
        await within(`${id} waiting`, 120_000, waiting);
        await env.signalBare(id);
        await within(`${id} done`, 120_000, env.client.workflow.getHandle(id).result());
        const wall = performance.now() - t0;
        const stats = await env.activityStats(true);
        return { wall, ...stats };
      };
      await driveBare('bare-warm-1');
      await driveBare('bare-warm-2');
      type Run = { wall: number; activityMs: number; activities: number };
      type Round = { c: Summary; b: Summary; cw: Summary; bw: Summary; events: number; bareEvents: number };
      const perStage = (runs: Run[]) => runs.map((r) => (r.wall - r.activityMs) / STAGES);
      const eventsOf = async (workflowId: string) =>
        ((await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).length;
      // Rounds: n changes, then n bare runs, again and again, so that a busy moment on the shared machine
      // falls on both; each round's ratio is against the baseline of the same round.
      const rounds: Round[] = [];
      for (let round = 0; round < options.rounds; round++) {
        const change: Run[] = [];
        const bare: Run[] = [];
        const ids: string[] = [];
        const bareIds: string[] = [];
        for (let i = 0; i < n; i++) {
          const number = 100 + round * n + i;
          change.push(await driveChange(number));
          ids.push(`change:acme/shop#${number}`);
        }
        for (let i = 0; i < n; i++) {
          bare.push(await driveBare(`bare-${round}-${i}`));
          bareIds.push(`bare-${round}-${i}`);
        }
        const events = median(await Promise.all(ids.map(eventsOf)));
        const bareEvents = median(await Promise.all(bareIds.map(eventsOf)));
        const r: Round = {
          c: summarize(perStage(change)),
          b: summarize(perStage(bare)),
          cw: summarize(change.map((x) => x.wall)),
          bw: summarize(bare.map((x) => x.wall)),
          events,
          bareEvents,
        };
        rounds.push(r);
        say(
          `round ${round + 1}: overhead per stage p50 ${fmt(r.c.p50)} vs ${fmt(r.b.p50)} ms bare (${ratio(r.c.p50, r.b.p50)}); history events per change ${r.events} vs ${r.bareEvents} bare (${ratio(r.events, r.bareEvents)})`,
        );
      }
      const med = (f: (r: Round) => number) => median(rounds.map(f));
      const ratios = (f: (r: Round) => number, g: (r: Round) => number) => rounds.map((r) => f(r) / g(r));
      say(
        `changes: ${n} per round, ${options.rounds} rounds (after 2 warm-up); activities per change: ${warm.activities} (orchestrator ${counts.orchestrator}, checks ${counts.checks}, deploy ${counts.deploy}); figures are medians of the rounds, ratios the median (lowest–highest) of the per-round ratios`,
      );
      say(
        table(
          ['figure', 'changeWorkflow', `bare: ${warm.activities} activities + 1 signal`, 'ratio'],
          [
            [
              'overhead per stage p50 (ms)',
              fmt(med((r) => r.c.p50)),
              fmt(med((r) => r.b.p50)),
              ratioSpread(
                ratios(
                  (r) => r.c.p50,
                  (r) => r.b.p50,
                ),
              ),
            ],
            [
              'overhead per stage p95 (ms)',
              fmt(med((r) => r.c.p95)),
              fmt(med((r) => r.b.p95)),
              ratioSpread(
                ratios(
                  (r) => r.c.p95,
                  (r) => r.b.p95,
                ),
              ),
            ],
            [
              'wall per change p50 (ms)',
              fmt(med((r) => r.cw.p50)),
              fmt(med((r) => r.bw.p50)),
              ratioSpread(
                ratios(
                  (r) => r.cw.p50,
                  (r) => r.bw.p50,
                ),
              ),
            ],
            [
              'history events per change',
              fmt(med((r) => r.events)),
              fmt(med((r) => r.bareEvents)),
              ratioSpread(
                ratios(
                  (r) => r.events,
                  (r) => r.bareEvents,
                ),
              ),
            ],
          ],
        ),
      );
      // Where the time goes: events and workflow tasks in one run's history, per workflow.
      const shape = async (workflowId: string) => {
        const events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
        const count = (type: string) =>
          events.filter((e) => proto.temporal.api.enums.v1.EventType[e.eventType ?? 0] === `EVENT_TYPE_${type}`).length;
        return `${events.length} events, ${count('WORKFLOW_TASK_COMPLETED')} workflow tasks, ${count('ACTIVITY_TASK_SCHEDULED')} activities, ${count('UPSERT_WORKFLOW_SEARCH_ATTRIBUTES')} search-attribute upserts, ${count('WORKFLOW_PROPERTIES_MODIFIED')} memo upserts`;
      };
      say(`history of one change: ${await shape(`change:acme/shop#${100 + options.rounds * n - 1}`)}`);
      say(
        `history of one bare run (${warm.activities} activities): ${await shape(`bare-${options.rounds - 1}-${n - 1}`)}`,
      );
      const overheadRatios = ratios(
        (r) => r.c.p50,
        (r) => r.b.p50,
      );
      recordGoal(
        'per-stage overhead p50 ≤ 1.10× bare (19 activities)',
        `p50 ${fmt(med((r) => r.c.p50))} / ${fmt(med((r) => r.b.p50))} ms bare, ${n} changes a round`,
        overheadRatios,
        (x) => x <= 1.1,
      );
      const eventRatios = ratios(
        (r) => r.events,
        (r) => r.bareEvents,
      );
      recordGoal(
        'history events per change ≤ 1.05× bare',
        `${fmt(med((r) => r.events))} / ${fmt(med((r) => r.bareEvents))} events bare`,
        eventRatios,
        (x) => x <= 1.05,
      );
    } finally {
      await env.stop();
    }
  },
};
