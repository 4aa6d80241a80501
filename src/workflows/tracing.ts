// Workflow-side OpenTelemetry interceptors, always bundled (src/workers/bundle.ts), active only in a run that was
// started with a trace context (the `_tracer-data` header a tracing client adds: the gateway with
// OTEL_EXPORTER_OTLP_ENDPOINT set). Why gated: the SDK's interceptors add microtask hops around every activity,
// which reorders the commands of concurrent branches, so runs recorded without them would fail to replay
// (non-determinism). The start headers are in the history, so a run decides the same way on every replay, on
// any worker. Active, they continue the client's trace and hand their spans to the worker's `exporter` sink
// (src/workers/tracing.ts), which drops them unless that worker traces.
import { TRACE_HEADER } from '@temporalio/interceptors-opentelemetry/lib/instrumentation.js';
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow/index.js';
import type {
  WorkflowInboundCallsInterceptor,
  WorkflowInterceptors,
  WorkflowInternalsInterceptor,
  WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';

type Method = (input: unknown, next: (input: unknown) => unknown) => unknown;

/** Each method of `prototype`: the traced implementation once `traced()` returns one, otherwise straight to `next`. */
function gated<T extends object>(prototype: object, traced: () => T | undefined): T {
  const methods: Record<string, Method> = {};
  for (const name of Object.getOwnPropertyNames(prototype)) {
    if (name === 'constructor') continue;
    methods[name] = (input, next) => {
      const impl = traced() as Record<string, Method> | undefined;
      return impl ? impl[name]!.call(impl, input, next) : next(input);
    };
  }
  return methods as T;
}

export const interceptors = (): WorkflowInterceptors => {
  // Per run: created when execute() sees the trace header, never otherwise.
  let otel:
    | {
        inbound: OpenTelemetryInboundInterceptor;
        outbound: OpenTelemetryOutboundInterceptor;
        internals: OpenTelemetryInternalsInterceptor;
      }
    | undefined;
  const inbound = gated<WorkflowInboundCallsInterceptor>(
    OpenTelemetryInboundInterceptor.prototype,
    () => otel?.inbound,
  );
  return {
    inbound: [
      {
        ...inbound,
        execute(input, next) {
          if (input.headers[TRACE_HEADER] !== undefined) {
            otel = {
              inbound: new OpenTelemetryInboundInterceptor(),
              outbound: new OpenTelemetryOutboundInterceptor(),
              internals: new OpenTelemetryInternalsInterceptor(),
            };
            return otel.inbound.execute(input, next);
          }
          return next(input);
        },
      },
    ],
    outbound: [
      gated<WorkflowOutboundCallsInterceptor>(OpenTelemetryOutboundInterceptor.prototype, () => otel?.outbound),
    ],
    internals: [
      gated<WorkflowInternalsInterceptor>(OpenTelemetryInternalsInterceptor.prototype, () => otel?.internals),
    ],
  };
};
