// Rollback against an insider, on the real Temporal dev server: a rollback decided before its turn in the lane
// does not deploy over a release that landed meanwhile; a finished rollback reset at Temporal (its recorded
// decision replayed) deploys nothing again; a person GitHub spells with capitals may still ask.
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideRollbackRequest, resolvePerson } from '../../src/policy/sod.ts';
import { generateSigningKey } from '../../src/shared/approval-signature.ts';
import { laneIdFor, type LaneState } from '../../src/shared/lane.ts';
import { rollbackWorkflowId, signRollback, type RollbackClaim } from '../../src/shared/rollback.ts';
import { laneStateQuery } from '../../src/workflows/lane.ts';
import type { RollbackResult } from '../../src/workflows/rollback.ts';
import {
  approve,
  claim,
  newChange,
  openChange,
  opened,
  sha,
  startStack,
  waitForStatus,
  type Stack,
} from '../workflows/harness.ts';

const REPO = 'acme/rbinsider';
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    repositories: [`{ name: ${REPO}, remote: /nonexistent, environments: [staging, production] }`],
  });
});
afterAll(async () => {
  await stack?.stop();
});

function request(person: string, extra: Partial<RollbackClaim> = {}): RollbackClaim {
  return {
    v: 1,
    kind: 'rollback',
    repo: REPO,
    environment: 'production',
    person,
    channel: 'cli',
    evidence: { tokenLogin: person },
    reason: 'checkout errors since the last release',
    at: new Date().toISOString(),
    nonce: randomUUID(),
    ...extra,
  };
}

async function startRollback(c: RollbackClaim) {
  return stack.client.workflow.start('rollbackWorkflow', {
    workflowId: rollbackWorkflowId(c.repo, c.environment, c.nonce),
    taskQueue: stack.taskQueue,
    args: [{ request: signRollback(c, stack.key) }],
  });
}

function chain(error: unknown): string {
  const messages: string[] = [];
  for (let e = error instanceof WorkflowFailedError ? error.cause : error; e instanceof Error; e = e.cause)
    messages.push(e.message);
  return messages.join(': ') || String(error);
}

async function outcome(handle: WorkflowHandle) {
  return handle.result().then(
    (r) => ({ result: r as RollbackResult, refused: undefined }),
    (error: unknown) => ({
      result: undefined,
      // The reason, wherever in the failure's chain it is (a deploy zone refusal is the activity failure's cause).
      refused: chain(error),
    }),
  );
}

async function openApproved(head: string, approver = 'alex-reviewer') {
  const change = newChange(REPO);
  const handle = await openChange(stack, change, opened(head, 'sam-dev'));
  await waitForStatus(handle, (s) => s.stage === 'awaiting-approval', 30_000);
  await approve(stack, handle, claim(change, head, approver));
  return { change, handle };
}

async function deliver(head: string, approver = 'alex-reviewer'): Promise<string> {
  const { change, handle } = await openApproved(head, approver);
  await waitForStatus(handle, (s) => s.stage === 'delivered', 30_000);
  return change;
}

const lane = () => laneIdFor(REPO, 'production', stack.taskQueue);
const laneState = (): Promise<LaneState> => stack.client.workflow.getHandle(lane()).query(laneStateQuery);
const deploysOf = (s: string) => stack.calls.deploy.filter((d) => d.sha === s && d.environment === 'production');
const T = temporal.api.enums.v1.EventType;

/** Resets a finished run to the workflow task after its `n`th completed activity, as an insider at Temporal can. */
async function resetAfterActivity(handle: WorkflowHandle, n: number): Promise<void> {
  const events = (await handle.fetchHistory()).events ?? [];
  const completed = events.flatMap((ev, i) => (ev.eventType === T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED ? [i] : []));
  const after = completed[n - 1] as number;
  const point = events.slice(after).find((ev) => ev.eventType === T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
  await stack.client.workflowService.resetWorkflowExecution({
    namespace: stack.client.options.namespace,
    workflowExecution: { workflowId: handle.workflowId, runId: (await handle.describe()).runId },
    workflowTaskFinishEventId: point?.eventId,
    reason: 'insider',
    requestId: sha(),
    resetReapplyType: temporal.api.enums.v1.ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
  });
}

const tail = (state: LaneState, n: number) =>
  state.releases.slice(-n).map((r) => `${r.kind}:${r.sha.slice(0, 7)}:${r.outcome}`);

describe('rollback against an insider', () => {
  it('a rollback decided before its lane turn is refused at its turn when a newer release landed meanwhile', async () => {
    const b = sha();
    const c = sha();
    await deliver(b);
    await deliver(c, 'kim-qa');
    // D, an approved fix, is deploying (slowly) and holds the production lane.
    const d = sha();
    const fix = newChange(REPO);
    stack.slowDeploys.set(fix, 6_000);
    const dHandle = await openChange(stack, fix, opened(d, 'sam-dev'));
    await waitForStatus(dHandle, (s) => s.stage === 'awaiting-approval', 30_000);
    await approve(stack, dHandle, claim(fix, d, 'alex-reviewer'));
    for (let i = 0; i < 200 && deploysOf(d).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(deploysOf(d).length).toBe(1);

    // jo asks for "the previous release" while C runs: B is decided now, and the rollback waits for the lane.
    const deploysOfB = deploysOf(b).length;
    const handle = await startRollback(request('jo-platform'));
    const done = await outcome(handle);
    await waitForStatus(dHandle, (s) => s.stage === 'delivered', 30_000);
    expect(done.refused).toMatch(
      new RegExp(
        `production changed while the rollback waited for its lane: it runs ${d.slice(0, 7)} of ${fix} now, not ${c.slice(0, 7)}: ask again`,
      ),
    );
    expect(deploysOf(b).length).toBe(deploysOfB);
    const state = await laneState();
    expect(state.running?.sha).toBe(d);
    // The rollback held the lane after D and gave it back without deploying.
    expect(tail(state, 2)).toEqual([`change:${d.slice(0, 7)}:deployed`, `rollback:${b.slice(0, 7)}:cancelled`]);
  });

  it('a finished rollback reset at Temporal deploys nothing again, wherever the reset puts it', async () => {
    const before = await laneState();
    const target = before.releases.filter((r) => r.outcome === 'deployed').at(-2)?.sha as string;
    const asked = [request('jo-platform', { to: target }), request('jo-platform', { to: target })];
    const first = await outcome(await startRollback(asked[0] as RollbackClaim));
    expect(first.result).toMatchObject({ outcome: 'done', sha: target });
    // Rolled forward again: a newer approved release E runs.
    const e = sha();
    await deliver(e, 'kim-qa');
    const second = await outcome(await startRollback(asked[1] as RollbackClaim));
    expect(second.result).toMatchObject({ outcome: 'done', sha: target });
    const f = sha();
    await deliver(f, 'kim-qa');
    const deploys = deploysOf(target).length;

    // After the first look-up (the decision replays; the look-up at the lane turn is new and sees the other run)...
    await resetAfterActivity(
      stack.client.workflow.getHandle(rollbackWorkflowId(REPO, 'production', asked[0]?.nonce as string)),
      1,
    );
    const atTurn = await outcome(
      stack.client.workflow.getHandle(rollbackWorkflowId(REPO, 'production', asked[0]?.nonce as string)),
    );
    expect(atTurn.refused).toMatch(
      /at its turn in the lane: .* already ran 1 time\(s\): a signed rollback request runs once/,
    );
    // ...and after the look-ups at the lane turn too (everything up to the deploy replays): the deploy zone refuses.
    // Activities before the deploy: beginRollback, lookUpRollbackEvidence, acquireLane, and the first two again.
    await resetAfterActivity(
      stack.client.workflow.getHandle(rollbackWorkflowId(REPO, 'production', asked[1]?.nonce as string)),
      5,
    );
    const atDeploy = await outcome(
      stack.client.workflow.getHandle(rollbackWorkflowId(REPO, 'production', asked[1]?.nonce as string)),
    );
    expect(atDeploy.refused ?? JSON.stringify(atDeploy.result)).toMatch(
      /has had another run .*a signed request acts once/,
    );

    expect(deploysOf(target).length).toBe(deploys);
    expect((await laneState()).running?.sha).toBe(f);
  });
});

describe('the person as the gateway names them', () => {
  it('a configured person whose GitHub login has capitals may ask', () => {
    const key = generateSigningKey();
    const people = [{ github: 'jo-platform', emails: [] as string[] }];
    const login = 'Jo-Platform'; // GET /user answers the login with GitHub's capitalisation
    // as src/gateway/routes/rollbacks.ts builds the claim:
    const person = resolvePerson(people, { login }) ?? login;
    const c = request(person, { evidence: { tokenLogin: login } });
    const decided = decideRollbackRequest({
      workflowId: rollbackWorkflowId(c.repo, c.environment, c.nonce),
      signed: signRollback(c, key),
      trustedKeys: [key.publicKey],
      now: Date.now(),
      maxAgeMs: 15 * 60_000,
      earlierRuns: 0,
    });
    expect(decided).toMatchObject({ verdict: 'accepted', claim: { person: 'jo-platform' } });
  });
});
