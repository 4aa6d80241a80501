// Optional OpenTelemetry tracing of a foureyes process (gateway and the three workers), through Temporal's
// interceptors: off unless OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set, then spans
// go over OTLP/HTTP (JSON) to that collector. The client interceptor puts the trace context in the headers of
// signalWithStart / signal / update, the workflow interceptors (always bundled, src/workflows/tracing.ts)
// continue it and hand their spans to the `exporter` sink, and the activity interceptor continues it in every
// zone. Spans carry names and IDs only (workflow, run, activity), never arguments or results: the deployer's
// activities handle leased credentials.
import type { Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type OpenTelemetrySinks,
} from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { WorkflowInfo } from '@temporalio/workflow';

export type TracedComponent = 'gateway' | 'orchestrator' | 'checks' | 'deployer';

export interface Tracing {
  enabled: boolean;
  serviceName: string;
  /** For `new Client({ interceptors: { workflow } })`. */
  clientInterceptors: WorkflowClientInterceptor[];
  /** For `Worker.create({ interceptors })`: activity spans. */
  workerInterceptors: WorkerInterceptors;
  /** For `Worker.create({ sinks })` of a worker that runs workflows: the bundled interceptors call it, so it is there even when tracing is off (then it drops the spans). */
  workflowSinks: InjectedSinks<OpenTelemetrySinks>;
  /** Flush the spans still batched and stop exporting; call once at shutdown. */
  shutdown(): Promise<void>;
}

/** The OTLP/HTTP traces URL from the standard variables, or undefined when tracing is off. */
export function tracesUrl(env: NodeJS.ProcessEnv): string | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  // The specification: the signal path is appended to the general endpoint, never to the per-signal one.
  return base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined;
}

export function serviceName(component: TracedComponent, env: NodeJS.ProcessEnv): string {
  return env.OTEL_SERVICE_NAME?.trim() || `foureyes-${component}`;
}

/**
 * Of the workflow info the sink receives, only what identifies the run becomes span attributes: the SDK would
 * otherwise copy all of it (memo, search attributes, last result) onto every workflow span.
 */
function spanInfo(info: WorkflowInfo): WorkflowInfo {
  const { workflowId, runId, workflowType, taskQueue, namespace, attempt } = info;
  return { workflowId, runId, workflowType, taskQueue, namespace, attempt } as WorkflowInfo;
}

/** The sink of a worker without tracing: drops the bundled interceptors' spans (an absent sink would log an error per activation). */
export const untracedWorkflowSinks: InjectedSinks<OpenTelemetrySinks> = { exporter: { export: { fn: () => {} } } };

/** Tracing for this process from its environment; without an endpoint everything here is inert. */
export function startTracing(
  component: TracedComponent,
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = (line) => console.log(line),
): Tracing {
  const name = serviceName(component, env);
  const url = tracesUrl(env);
  if (!url)
    return {
      enabled: false,
      serviceName: name,
      clientInterceptors: [],
      workerInterceptors: {},
      workflowSinks: untracedWorkflowSinks,
      shutdown: async () => {},
    };

  const resource = Resource.default().merge(new Resource({ [ATTR_SERVICE_NAME]: name }));
  // OTEL_EXPORTER_OTLP_HEADERS / _TIMEOUT are read by the exporter itself.
  const processor = new BatchSpanProcessor(new OTLPTraceExporter({ url }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  // Global context manager (AsyncLocalStorage) and W3C propagator: the interceptors inject and extract the
  // trace context through the global API.
  provider.register();
  // This provider's own tracer (not the global one): spans keep this component's service name even where one
  // process hosts several components (tests).
  const tracer: Tracer = provider.getTracer('foureyes');
  const workflowExporter = makeWorkflowExporter(processor, resource);
  // The URL's origin only: a collector URL may carry credentials in its user info or query.
  log(`${name}: tracing on, spans to ${new URL(url).origin} (OTLP/HTTP)`);
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    serviceName: name,
    clientInterceptors: [new OpenTelemetryWorkflowClientInterceptor({ tracer })],
    workerInterceptors: {
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer }),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    workflowSinks: {
      exporter: { export: { fn: (info, spans) => workflowExporter.export.fn(spanInfo(info), spans) } },
    },
    // At most 5 s: an unreachable collector must not hold up a worker's exit past its orchestrator's grace period.
    shutdown: () =>
      (stopped ??= Promise.race([
        provider.shutdown(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('the collector did not answer within 5 s')), 5000).unref(),
        ),
      ]).catch((error: unknown) => log(`${name}: spans not flushed: ${(error as Error).message}`))),
  };
}
