// kill -9 the gateway during a burst of webhooks and start it again: every delivery it acknowledged has its
// effect; one it did not acknowledge, redelivered with the same X-GitHub-Delivery (as from GitHub's "Recent
// deliveries"), has exactly one effect; redelivering an acknowledged one changes nothing.
import { setTimeout as sleep } from 'node:timers/promises';
import { closedOutcome, ensureDelivered, judge, statusOf, waitFor, workflowIdOf, type Drill } from './common.ts';
import type { DrillStack } from './stack.ts';

interface Sent {
  n: number;
  sha: string;
  delivery: string;
  status?: number;
}

/** Sends `send(i)` for every i at once and kill -9s the gateway after `killAfterMs`, then restarts it. */
async function burstWithRestart(
  stack: DrillStack,
  count: number,
  killAfterMs: number,
  send: (i: number) => Promise<Sent>,
): Promise<Sent[]> {
  const sends: Array<Promise<Sent>> = [];
  for (let i = 0; i < count; i++) {
    sends.push(send(i));
    // A steady stream rather than one instant: some before, some during, some after the restart.
    await sleep(40);
    if (i === Math.floor(count / 3)) {
      await sleep(killAfterMs);
      await stack.kill9('gateway', false);
      void stack.start('gateway');
    }
  }
  const sent = await Promise.all(sends);
  await waitFor('gateway back', async () => (await fetch(`${stack.gatewayUrl}/healthz`)).ok, 60_000);
  return sent;
}

const acked = (s: Sent) => s.status !== undefined && s.status < 300;

export const gatewayRestart: Drill = async ({ long, log, stack }) => {
  const started = Date.now();
  const count = long ? 60 : 12;
  {
    const failures: string[] = [];
    // Burst 1: pull requests opened.
    const opens = await burstWithRestart(stack, count, 50, async () => {
      const r = await stack.openChange();
      return { n: r.number, sha: r.sha, delivery: r.delivery, status: r.status };
    });
    const openAcked = opens.filter(acked);
    log(`opened ${opens.length}: ${openAcked.length} acknowledged, ${opens.length - openAcked.length} not`);
    for (const o of openAcked) {
      const exists = await stack.client.workflow
        .getHandle(workflowIdOf(o.n))
        .describe()
        .then(
          () => true,
          () => false,
        );
      if (!exists) failures.push(`acknowledged opening of #${o.n} has no workflow`);
    }
    for (const o of opens) await ensureDelivered(stack, o.delivery, o.status);
    // Redeliver every acknowledged one once more: duplicates must change nothing.
    for (const o of openAcked) await stack.github.standin.sendDelivery(o.delivery);

    for (const o of opens)
      await waitFor(
        `#${o.n} awaiting approval`,
        async () => (await statusOf(stack, o.n))?.stage === 'awaiting-approval',
        180_000,
      );
    // Burst 2: the approving reviews.
    const reviews = await burstWithRestart(stack, count, 30, async (i) => {
      const o = opens[i] as Sent;
      const r = await stack.approve(o.n, o.sha);
      return { n: o.n, sha: o.sha, delivery: r.delivery, status: r.status };
    });
    const reviewAcked = reviews.filter(acked);
    log(`reviews ${reviews.length}: ${reviewAcked.length} acknowledged, ${reviews.length - reviewAcked.length} not`);
    for (const r of reviewAcked) {
      const s = await waitFor(`#${r.n} status`, () => statusOf(stack, r.n), 60_000);
      if (!s.approvals.some((a) => a.counted && a.claim.sha === r.sha))
        failures.push(`acknowledged review of #${r.n} is not counted`);
    }
    let redelivered = 0;
    for (const r of reviews) redelivered += await ensureDelivered(stack, r.delivery, r.status);
    for (const r of reviewAcked) await stack.github.standin.sendDelivery(r.delivery);

    const results = await Promise.all(
      opens.map(async (o) => {
        const final = await waitFor(
          `#${o.n} delivered`,
          async () => {
            const s = await statusOf(stack, o.n);
            return s && ['delivered', 'failed'].includes(s.stage) ? s : undefined;
          },
          300_000,
        ).catch((e: Error) => ({ stage: `lost: ${e.message}` }));
        // Exactly one effect per pull request: one run, checks ran once, one counted approval.
        const s = await statusOf(stack, o.n);
        if (s) {
          const checking = s.timeline.filter((t) => t.kind === 'checks-passed' || t.kind === 'checks-failed').length;
          const counted = s.approvals.filter((a) => a.counted).length;
          if (s.runIds.length !== 1 || checking !== 1 || counted !== 1)
            failures.push(
              `#${o.n}: ${s.runIds.length} run(s), checks ran ${checking}×, ${counted} counted approval(s); expected 1 each`,
            );
        }
        await ensureDelivered(stack, (await stack.close(o.n)).delivery, undefined).catch(() => 0);
        const outcome =
          final.stage === 'delivered'
            ? await waitFor(`#${o.n} closed`, () => closedOutcome(stack, o.n), 60_000)
            : final.stage;
        return { number: o.n, sha: o.sha, outcome };
      }),
    );
    const unacked = opens.length - openAcked.length + reviews.length - reviewAcked.length;
    const result = await judge(
      stack,
      'gateway-restart',
      results,
      `2 kill -9 + restart of the gateway during bursts of ${count} openings and ${count} reviews; ${unacked} unacknowledged deliveries redelivered, ${openAcked.length + reviewAcked.length} acknowledged ones redelivered as duplicates`,
      started,
    );
    result.notes.push(
      `acknowledged deliveries: ${openAcked.length + reviewAcked.length}/${opens.length + reviews.length}, all with their effect; redeliveries until acknowledged: ${redelivered} (reviews)`,
    );
    result.failures.push(...failures);
    return result;
  }
};
