// OpenBao unreachable (the deployer's connection refused) when the lease of a deploy is due: the deploy step
// retries with backoff, `status` says it waits for OpenBao, nothing deploys without credentials, and the
// changes go on once OpenBao is back.
import { setTimeout as sleep } from 'node:timers/promises';
import { closedOutcome, ensureDelivered, judge, statusOf, waitFor, workflowIdOf, type Drill } from './common.ts';

export const openbaoDown: Drill = async ({ long, log, stack }) => {
  const started = Date.now();
  const count = long ? 6 : 3;
  const downMs = long ? 120_000 : 20_000;
  {
    const failures: string[] = [];
    const opened: Array<{ number: number; sha: string }> = [];
    for (let i = 0; i < count; i++) {
      const o = await stack.openChange();
      await ensureDelivered(stack, o.delivery, o.status);
      opened.push(o);
    }
    for (const o of opened)
      await waitFor(
        `#${o.number} awaiting approval`,
        async () => (await statusOf(stack, o.number))?.stage === 'awaiting-approval',
        120_000,
      );
    log(`OpenBao cut off from the deployer for ${downMs / 1000} s`);
    await stack.relay.cut();
    const cutAt = Date.now();
    for (const o of opened) {
      const r = await stack.approve(o.number, o.sha);
      await ensureDelivered(stack, r.delivery, r.status);
    }
    let explained = 0;
    let lastWhy = '';
    let maxAttempt = 0;
    const attemptTimes: number[] = [];
    while (Date.now() - cutAt < downMs) {
      await sleep(1000);
      for (const o of opened) {
        const s = await statusOf(stack, o.number);
        const why = s
          ? `${s.stage}: ${s.waitingFor}${(s.retrying ?? []).map((r) => `; retrying ${r.activity} (attempt ${r.attempt}): ${r.lastFailure}`).join('')}`
          : '';
        // The changes queue for one staging lane: whichever holds it is the one whose deploy waits for OpenBao.
        const waitsForBao = (s?.retrying ?? []).some((r) => /openbao/i.test(r.lastFailure));
        if (s && (waitsForBao || (o === opened[0] && explained === 0))) lastWhy = why;
        if (waitsForBao) explained++;
        if (s && ['failed', 'delivered'].includes(s.stage))
          failures.push(`#${o.number} reached "${s.stage}" while OpenBao was unreachable`);
      }
      const described = await Promise.all(
        opened.map((o) => stack.client.workflow.getHandle(workflowIdOf(o.number)).describe()),
      );
      const attempt = Math.max(
        0,
        ...described.flatMap((d) => (d.raw.pendingActivities ?? []).map((a) => a.attempt ?? 0)),
      );
      if (attempt > maxAttempt) {
        maxAttempt = attempt;
        attemptTimes.push(Date.now() - cutAt);
      }
      if (failures.length) break;
    }
    const ledgerWhileDown = stack
      .ledger()
      .attempts.filter((e) => opened.some((o) => e.change === `acme/shop#${o.number}`)).length;
    if (ledgerWhileDown > 0) failures.push(`${ledgerWhileDown} deploy command(s) ran while OpenBao was unreachable`);
    if (explained === 0) failures.push(`status never said it waits for OpenBao (last: "${lastWhy}")`);
    log(
      `OpenBao back; status while down: "${lastWhy}"; deploy attempts (the lane's holder) at ${attemptTimes.map((t) => `${(t / 1000).toFixed(0)}s`).join(', ')}`,
    );
    await stack.relay.open();
    const results = await Promise.all(
      opened.map(async (o) => {
        const final = await waitFor(
          `#${o.number} delivered`,
          async () => {
            const s = await statusOf(stack, o.number);
            return s && ['delivered', 'failed'].includes(s.stage) ? s : undefined;
          },
          180_000,
        ).catch((e: Error) => ({ stage: `lost: ${e.message}` }));
        await ensureDelivered(stack, (await stack.close(o.number)).delivery, undefined).catch(() => 0);
        const outcome =
          final.stage === 'delivered'
            ? await waitFor(`#${o.number} closed`, () => closedOutcome(stack, o.number), 60_000)
            : final.stage;
        return { number: o.number, sha: o.sha, outcome };
      }),
    );
    const result = await judge(
      stack,
      'openbao-down',
      results,
      `OpenBao unreachable for ${downMs / 1000} s when ${count} deploys were due (connection refused)`,
      started,
    );
    result.notes.push(
      `status while down: "${lastWhy}"; retries of the deploy step at ${attemptTimes.map((t) => `+${(t / 1000).toFixed(0)}s`).join(', ')} (attempt ${maxAttempt}); deploys while down: ${ledgerWhileDown}`,
    );
    result.failures.push(...failures);
    return result;
  }
};
