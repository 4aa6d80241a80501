// 2. Orchestration overhead: one change at a time through checks -> approval -> staging -> production with
// instant activities; overhead per stage = (wall time - activity time) / 4. Baseline: the bare workflow with
// the same number of activities (sequential) and one signal, sent the same way as the approval.
// CommonJS package: its named exports are not visible to Node's ESM loader.
import proto from '@temporalio/proto';
import { bareInputLike, startBenchEnv, sha, within } from '../env.ts';
import { fmt, ratio, summarize, table } from '../stats.ts';
import { say, type Scenario } from './types.ts';

const STAGES = 4;

export const overhead: Scenario = {
  name: 'overhead',
  title: '2. Orchestration overhead per stage (checks, approval, staging, production)',
  async run(options) {
    const n = options.n ?? (options.quick ? 5 : 40);
    const env = await startBenchEnv('overhead', { ...(options.maxCached !== undefined ? { maxCachedWorkflows: options.maxCached } : {}) });
    try {
      const driveChange = async (number: number) => {
        const change = `acme/shop#${number}`;
        const head = sha();
        await env.activityStats(true);
        const t0 = performance.now();
        const waiting = env.awaiting(change);
        await env.openChange(change, head);
        await within(`${change} waiting for approval`, 30_000, waiting);
        await env.approve(change, head);
        await within(`${change} done`, 30_000, env.client.workflow.getHandle(`change:${change}`).result());
        const wall = performance.now() - t0;
        const stats = await env.activityStats(true);
        return { wall, ...stats };
      };
      // Warm-up (bundle load, connections), and the activity count the baseline mirrors.
      const warm = await driveChange(1);
      await driveChange(2);
      const change = [] as Array<{ wall: number; activityMs: number; activities: number }>;
      for (let i = 0; i < n; i++) change.push(await driveChange(100 + i));
      const counts = warm.perZone;
      const input = bareInputLike(warm.perZone);
      const driveBare = async (id: string) => {
        await env.activityStats(true);
        const t0 = performance.now();
        const waiting = env.bareAwaiting(id);
        await env.startBare(id, input);
        await within(`${id} waiting`, 30_000, waiting);
        await env.signalBare(id);
        await within(`${id} done`, 30_000, env.client.workflow.getHandle(id).result());
        const wall = performance.now() - t0;
        const stats = await env.activityStats(true);
        return { wall, ...stats };
      };
      await driveBare('bare-warm-1');
      await driveBare('bare-warm-2');
      const bare = [] as Array<{ wall: number; activityMs: number; activities: number }>;
      for (let i = 0; i < n; i++) bare.push(await driveBare(`bare-${i}`));
      // changeWorkflow reports to GitHub beside the change (syncGitHub, off the critical path); a second
      // baseline runs only the activities on the critical path, in order: policy, checks, notify | deploy,
      // verify, revoke (staging), deploy, revoke (production), merge.
      const critical = { before: ['orchestrator', 'checks'], after: ['deploy', 'deploy', 'deploy', 'deploy', 'deploy', 'orchestrator'] };
      const driveCritical = async (id: string) => {
        await env.activityStats(true);
        const t0 = performance.now();
        const waiting = env.bareAwaiting(id);
        await env.startBare(id, critical);
        await within(`${id} waiting`, 30_000, waiting);
        await env.signalBare(id);
        await within(`${id} done`, 30_000, env.client.workflow.getHandle(id).result());
        const wall = performance.now() - t0;
        return { wall, ...(await env.activityStats(true)) };
      };
      await driveCritical('crit-warm');
      const crit = [] as Array<{ wall: number; activityMs: number; activities: number }>;
      for (let i = 0; i < n; i++) crit.push(await driveCritical(`crit-${i}`));

      const perStage = (runs: typeof change) => runs.map((r) => (r.wall - r.activityMs) / STAGES);
      const c = summarize(perStage(change));
      const b = summarize(perStage(bare));
      const k = summarize(perStage(crit));
      const cw = summarize(change.map((r) => r.wall));
      const bw = summarize(bare.map((r) => r.wall));
      const kw = summarize(crit.map((r) => r.wall));
      say(`changes: ${n} sequential (after 2 warm-up); activities per change: ${warm.activities} (orchestrator ${counts.orchestrator}, checks ${counts.checks}, deploy ${counts.deploy}); activity time per change ${fmt(summarize(change.map((r) => r.activityMs)).mean, 2)} ms`);
      say(
        table(
          ['figure (ms)', 'changeWorkflow', `bare: ${warm.activities} activities + 1 signal`, 'ratio', 'bare: 9 critical-path activities + 1 signal', 'ratio'],
          [
            ['overhead per stage p50', fmt(c.p50), fmt(b.p50), ratio(c.p50, b.p50), fmt(k.p50), ratio(c.p50, k.p50)],
            ['overhead per stage p95', fmt(c.p95), fmt(b.p95), ratio(c.p95, b.p95), fmt(k.p95), ratio(c.p95, k.p95)],
            ['overhead per stage mean', fmt(c.mean), fmt(b.mean), ratio(c.mean, b.mean), fmt(k.mean), ratio(c.mean, k.mean)],
            ['wall per change p50', fmt(cw.p50), fmt(bw.p50), ratio(cw.p50, bw.p50), fmt(kw.p50), ratio(cw.p50, kw.p50)],
            ['wall per change p95', fmt(cw.p95), fmt(bw.p95), ratio(cw.p95, bw.p95), fmt(kw.p95), ratio(cw.p95, kw.p95)],
          ],
        ),
      );
      // Where the time goes: events and workflow tasks in one run's history, per workflow.
      const shape = async (workflowId: string) => {
        const events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
        const count = (type: string) => events.filter((e) => proto.temporal.api.enums.v1.EventType[e.eventType ?? 0] === `EVENT_TYPE_${type}`).length;
        return `${events.length} events, ${count('WORKFLOW_TASK_COMPLETED')} workflow tasks, ${count('ACTIVITY_TASK_SCHEDULED')} activities, ${count('UPSERT_WORKFLOW_SEARCH_ATTRIBUTES')} search-attribute upserts, ${count('WORKFLOW_PROPERTIES_MODIFIED')} memo upserts`;
      };
      say(`history of one change: ${await shape(`change:acme/shop#${100 + n - 1}`)}`);
      say(`history of one bare run (${warm.activities} activities): ${await shape(`bare-${n - 1}`)}`);
      say(`history of one bare run (critical path): ${await shape(`crit-${n - 1}`)}`);
      say(`goal: per-stage overhead within 1.25× of the bare baseline (p50): ${c.p50 <= 1.25 * b.p50 ? 'met' : 'NOT met'} against the same activity count; ${c.p50 <= 1.25 * k.p50 ? 'met' : 'NOT met'} against the critical path alone`);
    } finally {
      await env.stop();
    }
  },
};
