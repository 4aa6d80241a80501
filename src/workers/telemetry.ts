// Process-wide telemetry of a worker: the SDK Runtime's Prometheus endpoint (FOUREYES_METRICS_ADDRESS, e.g.
// 0.0.0.0:9464, serving `temporal_*` metrics at /metrics) and structured logs (FOUREYES_LOG_FORMAT=json: the
// SDK's DefaultLogger writing JSON lines, with core logs forwarded, each carrying the change reference and
// run ID when the SDK knows them). Must run before the first connection is made (Runtime.install).
import {
  DefaultLogger,
  makeTelemetryFilterString,
  Runtime,
  type LogEntry,
  type RuntimeOptions,
} from '@temporalio/worker';
import { formatLine, logFormatFromEnv, logLevelFromEnv, type LogFields, type LogLevel } from '../shared/log.ts';

const SDK_LEVEL = { debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR' } as const;

function levelOf(entry: LogEntry): LogLevel {
  switch (entry.level) {
    case 'TRACE':
    case 'DEBUG':
      return 'debug';
    case 'WARN':
      return 'warn';
    case 'ERROR':
      return 'error';
    default:
      return 'info';
  }
}

/** The change reference and run ID out of the SDK's workflow/activity log metadata. */
export function changeFields(meta: Record<string, unknown> | undefined): LogFields {
  if (!meta) return {};
  const { workflowId, runId, workflowRunId, ...rest } = meta;
  const fields: LogFields = { ...rest };
  if (typeof workflowId === 'string') {
    if (workflowId.startsWith('change:')) fields.change = workflowId.slice('change:'.length);
    else fields.workflowId = workflowId;
  }
  const run = runId ?? workflowRunId;
  if (typeof run === 'string') fields.runId = run;
  return fields;
}

/** Runtime options for this environment, or undefined when the SDK defaults are what was asked for. */
export function runtimeOptions(
  component: string,
  env: NodeJS.ProcessEnv,
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): RuntimeOptions | undefined {
  const metricsAddress = env.FOUREYES_METRICS_ADDRESS?.trim();
  const json = logFormatFromEnv(env) === 'json';
  if (!metricsAddress && !json) return undefined;
  const level = logLevelFromEnv(env);
  const options: RuntimeOptions = { telemetryOptions: {} };
  if (json) {
    options.logger = new DefaultLogger(SDK_LEVEL[level], (entry) => {
      const time = new Date(Number(entry.timestampNanos / 1_000_000n));
      write(formatLine('json', time, levelOf(entry), component, entry.message, changeFields(entry.meta)));
    });
    options.telemetryOptions!.logging = {
      filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }),
      forward: {},
    };
  }
  if (metricsAddress) {
    options.telemetryOptions!.metrics = {
      prometheus: { bindAddress: metricsAddress },
      globalTags: { service: component },
    };
  }
  return options;
}

/** Install the Runtime once per process; a no-op with the defaults. */
export function installRuntime(component: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const options = runtimeOptions(component, env);
  if (!options) return false;
  Runtime.install(options);
  return true;
}
