// 3. Approval latency: from the approval request's arrival at the gateway (POST /api/changes/…/approvals,
// Bearer token checked against the GitHub stand-in, signed claim, Temporal update) to the start of the first
// deploy activity in the deploy worker process. One change at a time, each waiting for approval.
// Baseline: the bare workflow's signal sent straight to Temporal, to the start of its first activity after it.
import { startBenchEnv, sha, within } from '../env.ts';
import { startBenchGateway } from '../gateway.ts';
import { fmt, nowMs, ratio, summarize, table } from '../stats.ts';
import type { WorkerMessage } from '../worker.ts';
import { say, type Scenario } from './types.ts';

export const approval: Scenario = {
  name: 'approval',
  title: '3. Approval latency: approval request at the gateway -> first deploy activity starts',
  async run(options) {
    const n = options.n ?? (options.quick ? 5 : 40);
    const env = await startBenchEnv('approval', { ...(options.maxCached !== undefined ? { maxCachedWorkflows: options.maxCached } : {}) });
    const gateway = await startBenchGateway(env);
    const deployStarts = new Map<string, number>();
    const marks = new Map<string, number>();
    env.onMessage.push((m: WorkerMessage) => {
      if (m.type === 'deploy' && !deployStarts.has(m.change)) deployStarts.set(m.change, m.t);
      if (m.type === 'bareMarked') marks.set(m.id, m.t);
    });
    const until = async (what: string, ok: () => boolean) => {
      const deadline = Date.now() + 30_000;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`${what}: not after 30 s`);
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    try {
      const measure = async (number: number, withSha: boolean) => {
        const change = `acme/shop#${number}`;
        const head = sha();
        const waiting = env.awaiting(change);
        await env.openChange(change, head);
        await within(`${change} waiting`, 30_000, waiting);
        const path = `/api/changes/acme/shop/${number}/approvals`;
        const sent = nowMs();
        const res = await fetch(`${gateway.url}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${gateway.tokens['alex-reviewer']}`, 'content-type': 'application/json', 'x-foureyes-client': 'cli' },
          body: JSON.stringify(withSha ? { sha: head } : {}),
        });
        const answer = (await res.json()) as { counted?: boolean; reason?: string };
        const answered = nowMs();
        if (!answer.counted) throw new Error(`approval of ${change} not counted (${res.status}): ${answer.reason ?? JSON.stringify(answer)}`);
        await until(`${change} deploy`, () => deployStarts.has(change));
        await within(`${change} done`, 30_000, env.client.workflow.getHandle(`change:${change}`).result());
        const arrived = gateway.arrivals.get(`POST ${path}`) ?? sent;
        return { toDeploy: (deployStarts.get(change) as number) - arrived, response: answered - sent };
      };
      const bareInput = { before: ['orchestrator', 'checks'], after: ['deploy', 'deploy', 'orchestrator'] };
      const measureBare = async (id: string) => {
        const waiting = env.bareAwaiting(id);
        await env.startBare(id, bareInput);
        await within(`${id} waiting`, 30_000, waiting);
        const sent = nowMs();
        await env.signalBare(id);
        await until(`${id} mark`, () => marks.has(id));
        await within(`${id} done`, 30_000, env.client.workflow.getHandle(id).result());
        return (marks.get(id) as number) - sent;
      };
      await measure(1, false);
      await measure(2, true);
      await measureBare('bare-warm');
      const noSha = [] as Array<{ toDeploy: number; response: number }>;
      const withSha = [] as Array<{ toDeploy: number; response: number }>;
      const bare: number[] = [];
      // Interleaved, so that a busy moment on the shared machine hits all three alike.
      for (let i = 0; i < n; i++) {
        noSha.push(await measure(100 + 2 * i, false));
        withSha.push(await measure(101 + 2 * i, true));
        bare.push(await measureBare(`bare-${i}`));
      }
      const a = summarize(noSha.map((r) => r.toDeploy));
      const s = summarize(withSha.map((r) => r.toDeploy));
      const b = summarize(bare);
      const ra = summarize(noSha.map((r) => r.response));
      const rs = summarize(withSha.map((r) => r.response));
      say(`${n} approvals of each kind, one change at a time (after warm-up); deploy start = the deploy activity's first line in the deploy worker process`);
      say(
        table(
          ['figure (ms)', 'gateway, no sha (CLI default)', 'gateway, with sha', 'bare: signal -> next activity', 'ratio (no sha / bare)', 'ratio (sha / bare)'],
          [
            ['arrival -> first deploy p50', fmt(a.p50), fmt(s.p50), fmt(b.p50), ratio(a.p50, b.p50), ratio(s.p50, b.p50)],
            ['arrival -> first deploy p99', fmt(a.p99), fmt(s.p99), fmt(b.p99), ratio(a.p99, b.p99), ratio(s.p99, b.p99)],
            ['arrival -> first deploy mean', fmt(a.mean), fmt(s.mean), fmt(b.mean), ratio(a.mean, b.mean), ratio(s.mean, b.mean)],
            ['HTTP answer (counted) p50', fmt(ra.p50), fmt(rs.p50), '', '', ''],
            ['HTTP answer (counted) p99', fmt(ra.p99), fmt(rs.p99), '', '', ''],
          ],
        ),
      );
      say(`goal: approval-to-deploy p50 under 100 ms: ${a.p50 < 100 ? 'met' : 'NOT met'} (no sha), ${s.p50 < 100 ? 'met' : 'NOT met'} (with sha)`);
    } finally {
      await gateway.stop();
      await env.stop();
    }
  },
};
