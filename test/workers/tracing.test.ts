// Optional OpenTelemetry tracing (src/workers/tracing.ts, src/workflows/tracing.ts): one change delivered on
// the shared dev server with the shared workflow bundle, the client and the three zones' workers set up by
// startTracing, and a plain HTTP server standing in for the OTLP collector (/v1/traces, JSON). With the
// endpoint set, the gateway's signalWithStart, the workflow run and the activities of every zone form one
// trace, and the approval update another that reaches the workflow's handler; no argument, result or secret
// appears in any span. Without it, nothing is exported and the workflow does not even propagate a header.
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { InjectedSinks } from '@temporalio/worker';
import type { OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GitHubModel, orchestratorDoubles } from '../workflows/orchestrator-doubles.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseConfig } from '../../src/config/load.ts';
import { generateSigningKey, signClaim } from '../../src/shared/approval-signature.ts';
import { connectClient } from '../../src/shared/temporal-connection.ts';
import { zoneQueue } from '../../src/shared/task-queues.ts';
import type {
  ChangeStatus,
  DeployInput,
  DeployReport,
  PullRequestEvent,
  VerifyReport,
} from '../../src/shared/types.ts';
import { approvalUpdate, pullRequestSignal, statusQuery } from '../../src/workflows/definitions.ts';
import type { changeWorkflow } from '../../src/workflows/change.ts';
import { serviceName, startTracing, tracesUrl, type Tracing } from '../../src/workers/tracing.ts';
import { freePort } from '../../src/dev/process.ts';
import { writeFileSync } from 'node:fs';
import { CONFIG, claim, encodeHistory, factsOf, newChange, opened, sha, signedEvent } from '../workflows/harness.ts';
import { startFoureyes, untilHealthy } from '../helpers/foureyes-process.ts';
import { deployZoneQueues, testWorker, uniqueQueue } from '../helpers/temporal.ts';

interface ReceivedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, unknown>;
}

// In the deploy's and verify's results (so in the history, as any activity result); it must never reach a span,
// as a leased credential in a real deploy's environment must not.
const RESULT_MARKER = 'deploy-output-4c1e9a';
// The gateway's status endpoint needs an identity; an operator token reads without asking GitHub.
const OPERATOR = 'tracing-operator-token-0123456789abcdef';

let receiver: Server;
let endpoint: string;
const received: ReceivedSpan[] = [];
const requests: string[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean };
      type KeyValue = { key: string; value: AnyValue };
      const value = (v: AnyValue) => v.stringValue ?? v.intValue ?? v.boolValue;
      const parsed = JSON.parse(body) as {
        resourceSpans: Array<{
          resource: { attributes: KeyValue[] };
          scopeSpans: Array<{
            spans: Array<{
              name: string;
              traceId: string;
              spanId: string;
              parentSpanId?: string;
              attributes?: KeyValue[];
            }>;
          }>;
        }>;
      };
      for (const rs of parsed.resourceSpans) {
        const service = String(value(rs.resource.attributes.find((a) => a.key === 'service.name')?.value ?? {}));
        for (const ss of rs.scopeSpans)
          for (const s of ss.spans)
            received.push({
              service,
              name: s.name,
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, value(a.value)])),
            });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address();
  endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(async () => {
  await new Promise((resolve) => receiver?.close(resolve));
});

const config = parseConfig(CONFIG, 'test.yaml');
const key = generateSigningKey();
const github = new GitHubModel(mkdtempSync(join(tmpdir(), 'foureyes-github-model-')));

/** The gateway's signed opened event, with GitHub showing the pull request. */
function openedEvent(change: string, head: string): PullRequestEvent {
  const event = opened(head);
  github.set(change, factsOf(event));
  return signedEvent({ key }, change, event);
}

/** The three zones on their own queues, with each zone's tracing; `sinks` replaces the orchestrator's sink. */
async function startWorkers(
  tracing: Record<'orchestrator' | 'checks' | 'deployer', Tracing>,
  sinks?: InjectedSinks<OpenTelemetrySinks>,
) {
  const taskQueue = uniqueQueue('tracing');
  const workers = [
    await testWorker({
      taskQueue,
      workflows: true,
      interceptors: tracing.orchestrator.workerInterceptors,
      sinks: sinks ?? tracing.orchestrator.workflowSinks,
      activities: orchestratorDoubles(config, key.publicKey, github),
    }),
    await testWorker({
      taskQueue: zoneQueue(taskQueue, 'checks'),
      interceptors: tracing.checks.workerInterceptors,
      activities: {
        async runChecks(input: { sha: string }) {
          return {
            sha: input.sha,
            passed: true,
            durationMs: 1,
            results: [{ name: 'unit', passed: true, exitCode: 0, durationMs: 1, timedOut: false, outputTail: 'ok' }],
          };
        },
      },
    }),
    ...(await Promise.all(
      deployZoneQueues(taskQueue, config.environments).map(({ taskQueue: deployQueue }) =>
        testWorker({
          taskQueue: deployQueue,
          interceptors: tracing.deployer.workerInterceptors,
          activities: {
            async deploy(input: DeployInput): Promise<DeployReport> {
              return {
                environment: input.environment,
                sha: input.sha,
                status: 'deployed',
                exitCode: 0,
                durationMs: 1,
                outputTail: `deployed ${RESULT_MARKER}`,
                leases: [],
              };
            },
            async verify(input: DeployInput): Promise<VerifyReport> {
              return {
                environment: input.environment,
                sha: input.sha,
                passed: true,
                exitCode: 0,
                durationMs: 1,
                outputTail: RESULT_MARKER,
                leases: [],
              };
            },
            async revokeOutstanding() {
              return [];
            },
          },
        }),
      ),
    )),
  ];
  const running = workers.map((w) => w.run());
  return {
    taskQueue,
    async stop() {
      for (const w of workers) w.shutdown();
      await Promise.all(running);
    },
  };
}

/** One change through the gateway's client: opened by sam-dev, approved by alex-reviewer, delivered to staging and production. */
async function deliverChange(client: Client, taskQueue: string): Promise<WorkflowHandle<typeof changeWorkflow>> {
  const change = newChange();
  const head = sha();
  const handle = await client.workflow.signalWithStart<typeof changeWorkflow, [PullRequestEvent]>('changeWorkflow', {
    workflowId: `change:${change}`,
    taskQueue,
    args: [{ change }],
    signal: pullRequestSignal,
    signalArgs: [openedEvent(change, head)],
  });
  const deadline = Date.now() + 20_000;
  let status: ChangeStatus | undefined;
  while (status?.stage !== 'awaiting-approval') {
    if (Date.now() > deadline) throw new Error(`never awaiting approval: ${status?.stage}`);
    await new Promise((r) => setTimeout(r, 100));
    status = await handle.query(statusQuery).catch(() => undefined);
  }
  const outcome = await handle.executeUpdate(approvalUpdate, {
    args: [signClaim(claim(change, head, 'alex-reviewer'), key)],
  });
  expect(outcome.counted).toBe(true);
  expect(await handle.result()).toMatchObject({ outcome: 'delivered', change });
  return handle;
}

function temporalEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace'), ...extra };
}

describe('tracing configuration', () => {
  it('is on only with an OTLP endpoint, and names each component', () => {
    expect(tracesUrl({})).toBeUndefined();
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toBe(
      'http://collector:4318/v1/traces',
    );
    expect(
      tracesUrl({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom',
      }),
    ).toBe('http://b:4318/custom');
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(serviceName('deployer', {})).toBe('foureyes-deployer');
    expect(serviceName('gateway', { OTEL_SERVICE_NAME: 'edge' })).toBe('edge');
    expect(startTracing('gateway', {}).enabled).toBe(false);
  });
});

// In this order: the first leaves no global OpenTelemetry state behind for the second to inherit.
describe('a change delivered', () => {
  it('without OTEL_EXPORTER_OTLP_ENDPOINT exports nothing and leaves the workflow untraced', async () => {
    const env = temporalEnv({});
    const tracing = {
      gateway: startTracing('gateway', env),
      orchestrator: startTracing('orchestrator', env),
      checks: startTracing('checks', env),
      deployer: startTracing('deployer', env),
    };
    expect(Object.values(tracing).map((t) => t.enabled)).toEqual([false, false, false, false]);
    let sinkCalls = 0;
    const workers = await startWorkers(tracing, { exporter: { export: { fn: () => void sinkCalls++ } } });
    const client = await connectClient(env, tracing.gateway.clientInterceptors);
    try {
      const handle = await deliverChange(client, workers.taskQueue);
      // The bundled interceptors stayed out of the way: no spans to the sink, no trace header on any activity.
      expect(sinkCalls).toBe(0);
      const history = await handle.fetchHistory();
      const scheduled = history.events?.filter((e) => e.activityTaskScheduledEventAttributes) ?? [];
      expect(scheduled.length).toBeGreaterThan(3);
      for (const e of scheduled)
        expect(Object.keys(e.activityTaskScheduledEventAttributes?.header?.fields ?? {})).not.toContain('_tracer-data');
    } finally {
      await workers.stop();
      await client.connection.close();
      await Promise.all(Object.values(tracing).map((t) => t.shutdown()));
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(requests).toEqual([]);
    expect(received).toEqual([]);
  });

  it('with OTEL_EXPORTER_OTLP_ENDPOINT exports one trace from the webhook through the workflow to every zone, and one for the approval', async () => {
    const logged: string[] = [];
    const env = temporalEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
    const start = (c: 'gateway' | 'orchestrator' | 'checks' | 'deployer') =>
      startTracing(c, env, (line) => logged.push(line));
    const tracing = {
      gateway: start('gateway'),
      orchestrator: start('orchestrator'),
      checks: start('checks'),
      deployer: start('deployer'),
    };
    expect(logged).toContain(`foureyes-gateway: tracing on, spans to ${endpoint} (OTLP/HTTP)`);
    const workers = await startWorkers(tracing);
    const client = await connectClient(env, tracing.gateway.clientInterceptors);
    let workflowId: string;
    try {
      const handle = await deliverChange(client, workers.taskQueue);
      workflowId = handle.workflowId;
      // A traced run for the replay test (test/workflows/replay.test.ts): its interceptors must decide the same way on replay.
      if (process.env.FOUREYES_WRITE_HISTORIES === '1') {
        const path = join(import.meta.dirname, '../workflows/histories/traced-happy-path.json');
        writeFileSync(path, encodeHistory(workflowId, (await handle.describe()).runId, await handle.fetchHistory()));
      }
    } finally {
      await workers.stop();
      await client.connection.close();
      // What SIGTERM does in the entry points: flush what is still batched.
      await Promise.all(Object.values(tracing).map((t) => t.shutdown()));
    }
    expect(requests.every((r) => r === 'POST /v1/traces application/json')).toBe(true);
    const spans = received.filter(
      (s) => s.attributes.temporalWorkflowId === workflowId || s.attributes.workflowId === workflowId,
    );
    const one = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      expect(
        found.map((s) => s.name),
        `${name} among ${[...new Set(spans.map((s) => s.name))].join(', ')}`,
      ).toHaveLength(1);
      return found[0]!;
    };
    const start_ = one('SignalWithStartWorkflow:changeWorkflow');
    const run = one('RunWorkflow:changeWorkflow');
    const begun = one('RunActivity:beginChange');
    const checks = one('RunActivity:runChecks');
    const deploys = spans.filter((s) => s.name === 'RunActivity:deploy');
    expect(deploys).toHaveLength(2);
    // One trace: the webhook's signalWithStart is the root, the run its child, each activity under its StartActivity span.
    const trace = start_.traceId;
    expect(trace).toMatch(/^[0-9a-f]{32}$/);
    for (const s of [run, begun, checks, ...deploys]) expect(s.traceId).toBe(trace);
    expect(run.parentSpanId).toBe(start_.spanId);
    const startActivity = spans.find((s) => s.name === 'StartActivity:runChecks');
    expect(startActivity?.traceId).toBe(trace);
    expect(checks.parentSpanId).toBe(startActivity?.spanId);
    // Each span under its own process's name.
    expect([start_, run, begun, checks, deploys[0]!].map((s) => s.service)).toEqual([
      'foureyes-gateway',
      'foureyes-orchestrator',
      'foureyes-orchestrator',
      'foureyes-checks',
      'foureyes-deployer',
    ]);
    // The approval: its own trace from the client's update to the workflow's handler.
    const update = one('StartWorkflowUpdate:approve');
    const handled = one('HandleUpdate:approve');
    expect(handled.traceId).toBe(update.traceId);
    expect(update.traceId).not.toBe(trace);
    // Names and IDs only: the workflow spans carry these of the run's info, nothing of its memo or results.
    expect(Object.keys(run.attributes).sort()).toEqual([
      'attempt',
      'namespace',
      'runId',
      'taskQueue',
      'workflowId',
      'workflowType',
    ]);
    const everything = JSON.stringify(received);
    expect(everything).not.toContain(RESULT_MARKER);
    expect(everything).not.toContain('alex-reviewer');
    expect(everything).not.toContain('signature');
    console.log(
      `tracing: ${received.length} spans in ${requests.length} OTLP requests; ${spans.length} of this change, trace ${trace}`,
    );
  });
});

describe('foureyes worker <zone> with OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  it('exports the spans still batched when SIGTERM stops it', async () => {
    const queue = uniqueQueue('tracing-entry');
    const worker = startFoureyes(['worker', 'orchestrator'], {
      FOUREYES_TASK_QUEUE: queue,
      FOUREYES_WORKFLOW_BUNDLE: inject('workflowBundle'),
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    });
    const { child, exited } = worker;
    const env = temporalEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
    const gateway = startTracing('gateway', env, () => {});
    const client = await connectClient(env, gateway.clientInterceptors);
    try {
      const change = newChange();
      const handle = await client.workflow.signalWithStart<typeof changeWorkflow, [PullRequestEvent]>(
        'changeWorkflow',
        {
          workflowId: `change:${change}`,
          taskQueue: queue,
          args: [{ change }],
          signal: pullRequestSignal,
          signalArgs: [opened(sha())],
        },
      );
      // The orchestrator has run beginChange (no checks worker here: the run then waits).
      const deadline = Date.now() + 60_000;
      for (;;) {
        const events = (await handle.fetchHistory()).events ?? [];
        if (events.some((e) => e.activityTaskCompletedEventAttributes)) break;
        if (Date.now() > deadline) throw new Error(`beginChange never completed; worker output:\n${worker.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // Well within the batch delay (5 s): without the flush at shutdown these spans would be lost.
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(worker.output()).toContain('foureyes-orchestrator: tracing on');
      const mine = received.filter(
        (s) => s.attributes.temporalWorkflowId === handle.workflowId || s.attributes.workflowId === handle.workflowId,
      );
      const run = mine.find((s) => s.name === 'RunActivity:beginChange' && s.service === 'foureyes-orchestrator');
      expect(run, `spans: ${mine.map((s) => `${s.service} ${s.name}`).join(', ')}`).toBeDefined();
      await gateway.shutdown();
      const root = received.find(
        (s) =>
          s.name === 'SignalWithStartWorkflow:changeWorkflow' && s.attributes.temporalWorkflowId === handle.workflowId,
      );
      expect(run!.traceId).toBe(root?.traceId);
      await handle.terminate('test over');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await client.connection.close();
    }
  });
});

describe('foureyes gateway with OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  it('traces its Temporal calls and exports them when SIGTERM stops it', async () => {
    const port = await freePort();
    const gateway = startFoureyes(['gateway'], {
      FOUREYES_APPROVAL_SIGNING_KEY: generateSigningKey().privateKey,
      GITHUB_WEBHOOK_SECRET: 'tracing-test-secret',
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      FOUREYES_OPERATOR_TOKENS: OPERATOR,
      PORT: String(port),
    });
    const { child, exited } = gateway;
    try {
      const base = `http://127.0.0.1:${port}`;
      await untilHealthy(base, gateway);
      // The status query of a change nobody opened: a traced call that fails (404 to the caller).
      const number = 900_000 + Math.floor(Math.random() * 99_999);
      const headers = { authorization: `Bearer ${OPERATOR}` };
      expect((await fetch(`${base}/api/changes/acme/shop/${number}`, { headers })).status).toBe(404);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(gateway.output()).toContain('foureyes-gateway: tracing on');
      const query = received.find(
        (s) => s.name === 'QueryWorkflow:status' && s.attributes.temporalWorkflowId === `change:acme/shop#${number}`,
      );
      expect(query, gateway.output()).toBeDefined();
      expect(query!.service).toBe('foureyes-gateway');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

describe('an unreachable collector', () => {
  it('holds up shutdown 5 s at most, and says the spans were not flushed', async () => {
    // Accepts connections and never answers (the exporter's own timeout is 10 s).
    const sockets: Socket[] = [];
    const silent = createServer(() => {});
    silent.on('connection', (socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const logged: string[] = [];
    const env = temporalEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    });
    const tracing = startTracing('gateway', env, (line) => logged.push(line));
    const client = await connectClient(env, tracing.clientInterceptors);
    try {
      await expect(client.workflow.getHandle(`change:acme/shop#${Date.now()}`).query(statusQuery)).rejects.toThrow();
      const started = Date.now();
      await tracing.shutdown();
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(4900);
      expect(elapsed).toBeLessThan(7000);
      expect(logged).toContain('foureyes-gateway: spans not flushed: the collector did not answer within 5 s');
    } finally {
      await client.connection.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
