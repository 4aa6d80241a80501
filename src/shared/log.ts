// Structured logs for non-workflow code (gateway, workers, CLI). FOUREYES_LOG_FORMAT=json writes one JSON
// object per line ({time, level, component, msg, change?, runId?, ...}); the default is readable text.
// Callers pass the environment in, so this module holds no I/O of its own beyond console (it sits in
// src/shared, which the workflow lint rules keep free of Node built-ins).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';
export type LogFields = Record<string, unknown> & { change?: string; runId?: string };

export interface Log {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines all carry these fields (e.g. the change reference and run ID). */
  child(fields: LogFields): Log;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function logFormatFromEnv(env: NodeJS.ProcessEnv): LogFormat {
  return env.FOUREYES_LOG_FORMAT?.trim().toLowerCase() === 'json' ? 'json' : 'text';
}

export function logLevelFromEnv(env: NodeJS.ProcessEnv): LogLevel {
  const level = env.FOUREYES_LOG_LEVEL?.trim().toLowerCase();
  return level === 'debug' || level === 'warn' || level === 'error' ? level : 'info';
}

export interface LogOptions {
  component: string;
  format?: LogFormat;
  level?: LogLevel;
  /** Where a finished line goes; console by default (errors and warnings to stderr). */
  write?: (line: string, level: LogLevel) => void;
  now?: () => Date;
}

const defaultWrite = (line: string, level: LogLevel) =>
  level === 'error' || level === 'warn' ? console.error(line) : console.log(line);

/** Fields that are safe to print: errors become their message, nothing else is transformed. */
function normalise(fields: LogFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = value instanceof Error ? { name: value.name, message: value.message } : value;
  }
  return out;
}

export function formatLine(
  format: LogFormat,
  time: Date,
  level: LogLevel,
  component: string,
  msg: string,
  fields: LogFields,
): string {
  const extra = normalise(fields);
  if (format === 'json') return JSON.stringify({ time: time.toISOString(), level, component, msg, ...extra });
  const tail = Object.entries(extra)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${component}: ${msg}${tail ? ` (${tail})` : ''}`;
}

export function createLog(options: LogOptions, bound: LogFields = {}): Log {
  const format = options.format ?? 'text';
  const min = ORDER[options.level ?? 'info'];
  const write = options.write ?? defaultWrite;
  const now = options.now ?? (() => new Date());
  const emit = (level: LogLevel, msg: string, fields: LogFields = {}) => {
    if (ORDER[level] < min) return;
    write(formatLine(format, now(), level, options.component, msg, { ...bound, ...fields }), level);
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLog(options, { ...bound, ...fields }),
  };
}

/** The usual way in: `logFor('gateway', process.env)`. */
export function logFor(component: string, env: NodeJS.ProcessEnv): Log {
  return createLog({ component, format: logFormatFromEnv(env), level: logLevelFromEnv(env) });
}
