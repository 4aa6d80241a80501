// 1. Webhook acknowledgement: signed pull_request deliveries (opened, then synchronize) sent by a separate
// process at a fixed rate to the real gateway (signature check, signalWithStart; since issue 8 the commits
// and files are looked up by the orchestrator after the answer, and the bench's orchestrator answers that
// look-up at once); p50/p95/p99 of the gateway's response time. Baseline: the same rate of
// plain signalWithStart calls from the same kind of process, with equivalent events. The three workers run
// throughout, so the changes started do their work on the same machine in both runs.
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { GitHubStandin } from '../../src/dev/github-standin/index.ts';
import type { PullRequestEvent } from '../../src/shared/types.ts';
import { openedEvent, sha, startBenchEnv, within } from '../env.ts';
import { startBenchGateway } from '../gateway.ts';
import type { LoadJob, LoadResult } from '../load-generator.ts';
import { fmt, ratio, summarize, table } from '../stats.ts';
import { say, type Scenario } from './types.ts';

async function generate(job: LoadJob): Promise<LoadResult> {
  const child = fork(join(import.meta.dirname, '..', 'load-generator.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const result = new Promise<LoadResult>((resolve, reject) => {
    child.once('message', (m: LoadResult) => resolve(m));
    child.once('exit', (code) => reject(new Error(`load generator exited (${code}) without a result`)));
  });
  child.send(job);
  return within('load generator', 10 * 60_000, result);
}

export const webhook: Scenario = {
  name: 'webhook',
  title: '1. Webhook acknowledgement under a fixed delivery rate',
  async run(options) {
    const rate = options.n ?? (options.quick ? 10 : 50);
    const seconds = options.seconds ?? (options.quick ? 3 : 20);
    const total = rate * seconds;
    const pulls = Math.ceil(total / 2);
    const env = await startBenchEnv('webhook');
    const gateway = await startBenchGateway(env, { separateProcess: true });
    try {
      // Deliveries prepared up front (real pull requests and commits in the stand-in's git repository): first
      // every `opened`, then one `synchronize` per pull request, signed with the webhook secret.
      const setup = performance.now();
      const opened: Array<{ body: string; headers: Record<string, string> }> = [];
      const pushed: typeof opened = [];
      const item = (d: { id: string; body: string }, event = 'pull_request') => ({
        body: d.body,
        headers: {
          'x-github-event': event,
          'x-github-delivery': d.id,
          'x-hub-signature-256': GitHubStandin.sign(d.body, gateway.secret),
        },
      });
      for (let i = 0; i < pulls; i++) {
        const { pull, delivery } = await gateway.github.standin.openPullRequest({
          repo: 'acme/shop',
          author: 'sam-dev',
          title: `change ${i}`,
          commits: [{ message: `change ${i}`, files: { [`src/f${i}.ts`]: `export const x = ${i};\n` } }],
          deliver: false,
        });
        opened.push(item(delivery));
        const push = await gateway.github.standin.pushCommits({
          repo: 'acme/shop',
          number: pull.number,
          pusher: 'sam-dev',
          commits: [{ message: `more ${i}`, files: { [`src/f${i}.ts`]: `export const x = ${i + 1};\n` } }],
          deliver: false,
        });
        pushed.push(item(push.delivery));
      }
      const deliveries = [...opened, ...pushed].slice(0, total);
      // The baseline's events: the same shape the gateway builds, for other workflow IDs.
      const events: Array<{ workflowId: string; change: string; event: PullRequestEvent }> = [];
      const heads = Array.from({ length: pulls }, () => sha());
      for (let i = 0; i < pulls; i++)
        events.push({
          workflowId: `change:acme/base#${i + 1}`,
          change: `acme/base#${i + 1}`,
          event: openedEvent(heads[i] as string),
        });
      for (let i = 0; i < pulls; i++) {
        const before = heads[i] as string;
        const head = sha();
        const base = openedEvent(head);
        events.push({
          workflowId: `change:acme/base#${i + 1}`,
          change: `acme/base#${i + 1}`,
          event: {
            ...base,
            kind: 'synchronize',
            beforeSha: before,
            pusher: 'sam-dev',
            commits: [...(openedEvent(before).commits ?? []), ...(base.commits ?? [])],
            deliveryId: randomUUID(),
          },
        });
      }
      say(
        `prepared ${deliveries.length} signed deliveries on ${pulls} pull requests in ${fmt((performance.now() - setup) / 1000)} s`,
      );

      const baseline = await generate({
        mode: 'temporal',
        rate,
        address: env.temporal.address,
        namespace: env.temporal.namespace,
        taskQueue: env.taskQueue,
        items: events.slice(0, total),
      });
      const hooks = await generate({ mode: 'http', rate, url: `${gateway.url}/webhooks/github`, items: deliveries });
      // The stand-in alone: the two look-ups the gateway makes per delivery (commits and files of the pull
      // request), at the same rate from the same kind of process, to tell the stand-in's limit from ours.
      const token = gateway.tokens['sam-dev'] as string;
      const lookups = Array.from({ length: total }, (_, i) => {
        const number = (i % pulls) + 1;
        const headers = { authorization: `Bearer ${token}`, accept: 'application/vnd.github+json' };
        return [
          { url: `${gateway.github.url}/repos/acme/shop/pulls/${number}/commits?per_page=100`, headers },
          { url: `${gateway.github.url}/repos/acme/shop/pulls/${number}/files?per_page=100`, headers },
        ];
      });
      const standin = await generate({ mode: 'get', rate, items: lookups });
      const h = summarize(hooks.latenciesMs);
      const b = summarize(baseline.latenciesMs);
      const g = summarize(standin.latenciesMs);
      say(
        `${total} requests at ${rate}/s for ${seconds} s from a separate process (open loop); worst sender lag: gateway run ${fmt(hooks.maxLagMs)} ms, baseline ${fmt(baseline.maxLagMs)} ms`,
      );
      say(
        `answers: gateway ${JSON.stringify(hooks.statuses)}; baseline ${JSON.stringify(baseline.statuses)}; stand-in look-ups ${JSON.stringify(standin.statuses)}`,
      );
      say(
        table(
          [
            'response time (ms)',
            'gateway (POST /webhooks/github)',
            'baseline (signalWithStart)',
            'ratio',
            'GitHub stand-in: commits + files look-ups alone',
          ],
          [
            ['p50', fmt(h.p50), fmt(b.p50), ratio(h.p50, b.p50), fmt(g.p50)],
            ['p95', fmt(h.p95), fmt(b.p95), ratio(h.p95, b.p95), fmt(g.p95)],
            ['p99', fmt(h.p99), fmt(b.p99), ratio(h.p99, b.p99), fmt(g.p99)],
            ['max', fmt(h.max), fmt(b.max), ratio(h.max, b.max), fmt(g.max)],
            ['mean', fmt(h.mean), fmt(b.mean), ratio(h.mean, b.mean), fmt(g.mean)],
          ],
        ),
      );
      say(`goal: acknowledgement p99 under 50 ms at ${rate}/s: ${h.p99 < 50 ? 'met' : 'NOT met'}`);
    } finally {
      await gateway.stop();
      await env.stop();
    }
  },
};
