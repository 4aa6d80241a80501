// `foureyes up` (= `npm start`): the whole system on this machine, until Ctrl-C.
// Ctrl-C (or SIGTERM) at any moment, start-up included, stops every child started so far within 15 s
// (then SIGKILL) and says what it stopped; a second Ctrl-C kills them at once. Children die with this
// process even on SIGKILL (each has a watchdog, see src/dev/process.ts).
import { join } from 'node:path';
import { dataDir } from '../paths.ts';
import { operatorTokenPath } from '../../config/paths.ts';
import {
  InterruptedError,
  killAllNow,
  liveProcesses,
  recordedProcess,
  recordSelf,
  refuseNewProcesses,
  stopProcesses,
} from '../process.ts';
import { defaultConfigFile, pidDir, startStack, type Stack } from '../stack.ts';
import { CliError, parseArgs } from '../../cli/commands.ts';
import { temporalSettings } from '../../shared/temporal-connection.ts';

const STOP_WITHIN_MS = 15_000;

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[0-9]{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65_535)
    throw new CliError(`${name}: expected a port number (1-65535), found ${JSON.stringify(raw.slice(0, 20))}`, 2);
  return Number(raw);
}

export async function run(args: string[]): Promise<number> {
  const { flags } = parseArgs(args, { flags: ['quiet', 'verbose'] });
  const data = dataDir();
  const retention = process.env.FOUREYES_RETENTION_DAYS ?? '30';
  if (!/^[1-9][0-9]{0,4}$/.test(retention))
    throw new CliError(
      `FOUREYES_RETENTION_DAYS: expected a whole number of days (1 or more), found ${JSON.stringify(retention.slice(0, 20))}`,
      2,
    );
  const ports = {
    temporal: port('FOUREYES_TEMPORAL_PORT', 7233),
    ui: port('FOUREYES_UI_PORT', 8233),
    bao: port('FOUREYES_BAO_PORT', 8200),
    gateway: port('PORT', 3000),
  };

  // One `up` per data folder: a second one would take the first one's children for orphans.
  const self = join(pidDir(data), 'up.pid');
  const running = recordedProcess(self);
  if (running && running.pid !== process.pid) {
    throw new CliError(
      `foureyes up is already running on ${data} (pid ${running.pid}); stop it with Ctrl-C in its terminal (or kill ${running.pid}), or set FOUREYES_DATA to another folder`,
      1,
    );
  }
  recordSelf(self, 'foureyes up');

  // The handlers are in place before the first child starts: a Ctrl-C during start-up stops what has started.
  let up = false;
  let stopping = false;
  const exitWith = (code: number) => process.exit(code);
  const stop = (reason: string, code: number) => {
    if (stopping) {
      console.error(`foureyes: ${reason} again: killing everything now.`);
      killAllNow();
      exitWith(code || 130);
      return;
    }
    stopping = true;
    refuseNewProcesses();
    const names = liveProcesses()
      .map((p) => p.name)
      .reverse();
    console.error(
      `\nfoureyes: ${reason}${up ? '' : ' during start-up'}; stopping ${names.length ? names.join(', ') : 'nothing (no process started yet)'} … (Ctrl-C again to force)`,
    );
    void stopProcesses(liveProcesses(), STOP_WITHIN_MS).then(
      (stopped) => {
        console.error(`foureyes: stopped${stopped.length ? ` ${stopped.join(', ')}` : ''}.`);
        exitWith(code);
      },
      () => exitWith(code || 1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT received', up ? 0 : 130));
  process.on('SIGTERM', () => stop('SIGTERM received', up ? 0 : 143));

  const configFile = defaultConfigFile();
  let stack: Stack;
  try {
    stack = await startStack({
      dataDir: data,
      configFile,
      temporalPort: ports.temporal,
      uiPort: ports.ui,
      baoPort: ports.bao,
      gatewayPort: ports.gateway,
      // The console shows foureyes' own lines and the children's errors; everything else is in the logs.
      echo: flags.has('verbose') ? true : flags.has('quiet') ? false : 'problems',
      retentionDays: Number(retention),
    });
  } catch (error) {
    // An interrupted start-up fails wherever it was; the signal handler reports and exits.
    if (stopping || error instanceof InterruptedError) return new Promise<number>(() => {});
    refuseNewProcesses();
    await stopProcesses(liveProcesses(), STOP_WITHIN_MS);
    if (process.env.FOUREYES_LOG_LEVEL === 'debug') console.error((error as Error).stack ?? String(error));
    // Config, prerequisite and GitHub errors keep their own wording (main.ts prints them in one line).
    if ((error as Error).name !== 'Error' && (error as Error).name !== 'StartupError') throw error;
    throw new CliError(
      `${firstLine((error as Error).message)}\n  (logs: ${join(data, 'logs')}; FOUREYES_LOG_LEVEL=debug shows the details)`,
      1,
    );
  }
  up = true;
  const lines = [
    '',
    'foureyes is up.',
    `  gateway          ${stack.gatewayUrl}   (POST /webhooks/github, /slack/*, /api/changes/…; GET /healthz)`,
    `  operator token   ${operatorTokenPath(data)}   (reads /api/changes/… and /api/environments…; the CLI here uses it, elsewhere set FOUREYES_GATEWAY_TOKEN)`,
    `  Temporal         ${stack.temporal.address}   namespace ${stack.temporal.namespace}`,
    `  Temporal UI      ${stack.temporal.uiUrl ?? '(headless)'}`,
    ...temporalHint(stack.temporal),
    `  OpenBao          ${stack.openbao.address}   (dev server; deployer logs in with AppRole ${stack.config.vault.prefix}-deployer)`,
    `  data folder      ${data}   (Temporal database, keys, logs; kept across restarts; histories kept ${retention} days)`,
    `  logs             ${join(data, 'logs')}   (servers and workers; \`foureyes up --verbose\` streams them here)`,
    `  configuration    ${configFile}`,
    `  GitHub           ${stack.githubSummary}`,
    '',
    'Press Ctrl-C to stop everything.',
  ];
  console.log(lines.join('\n'));
  // A child that dies on its own is a failure the operator must see: stop the rest and exit non-zero.
  for (const p of stack.processes) {
    void p.exited.then((code) => {
      if (!stopping) {
        console.error(`foureyes: ${p.name} exited (code ${code}); see ${join(data, 'logs')}. Stopping everything.`);
        stop('a child exited', 1);
      }
    });
  }
  return new Promise<number>(() => {});
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

/**
 * `foureyes status` and `audit` read Temporal directly, where this shell's settings point them: when that is not
 * this stack's Temporal, the line to paste in the shell where they run.
 */
function temporalHint(temporal: { address: string; namespace: string }): string[] {
  const { connectionOptions, namespace } = temporalSettings(process.env);
  if (connectionOptions.address === temporal.address && namespace === temporal.namespace) return [];
  return [
    `  status, audit    export TEMPORAL_ADDRESS=${temporal.address} TEMPORAL_NAMESPACE=${temporal.namespace}   (in the shell where you run foureyes status or audit: they read Temporal directly)`,
  ];
}
