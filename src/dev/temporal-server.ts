// The Temporal dev server from the Temporal CLI, on a persistent SQLite file tuned as Temporal's own
// stress CI tunes it (WAL journal, normal sync), with the foureyes namespace and search attributes.
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SEARCH_ATTRIBUTES } from '../shared/search-attributes.ts';
import { ensureTool } from './tools.ts';
import {
  describeHolder,
  freePort,
  inGroupOf,
  portHolder,
  startProcess,
  waitUntil,
  type ManagedProcess,
} from './process.ts';

export interface TemporalServer {
  address: string;
  namespace: string;
  uiUrl?: string;
  dbFile: string;
  process: ManagedProcess;
}

export interface TemporalServerOptions {
  dataDir: string;
  namespace?: string;
  port?: number;
  uiPort?: number;
  headless?: boolean;
  logFile?: string;
  echo?: boolean | 'problems';
  /** Pid file of the server while it runs (orphan detection for `foureyes up`). */
  pidFile?: string;
  /**
   * How long closed changes' histories stay (the audit record's source). The dev server creates
   * namespaces with 24 hours; `up` keeps them for 30 days so a local audit survives the weekend.
   */
  retentionDays?: number;
}

export async function startTemporalServer(options: TemporalServerOptions): Promise<TemporalServer> {
  const bin = ensureTool('temporal');
  const namespace = options.namespace ?? 'foureyes';
  const port = options.port ?? (await freePort());
  const dbFile = join(options.dataDir, 'temporal.sqlite');
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    dbFile,
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--http-port',
    String(await freePort()),
    '--metrics-port',
    String(await freePort()),
    '--namespace',
    namespace,
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
    '--log-level',
    'warn',
    // Short workflow tasks fail fast in tests and drills; frontend rate limits off for benchmarks.
    '--dynamic-config-value',
    'frontend.enableUpdateWorkflowExecution=true',
    '--dynamic-config-value',
    'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
    '--dynamic-config-value',
    'frontend.workerVersioningWorkflowAPIs=true',
  ];
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  let uiUrl: string | undefined;
  if (options.headless) args.push('--headless');
  else {
    const uiPort = options.uiPort ?? (await freePort());
    args.push('--ui-port', String(uiPort));
    uiUrl = `http://localhost:${uiPort}`;
  }
  const address = `127.0.0.1:${port}`;
  const proc = await startAndWait(bin, args, address, namespace, options);
  // The server that answered must be the one started here, not another one on the same port.
  const holder = portHolder(port);
  if (holder !== undefined && proc.child.pid !== undefined && !inGroupOf(holder, proc.child.pid)) {
    await proc.stop();
    throw new Error(
      `port ${port} is held by another Temporal server, ${describeHolder(port)}; stop it or choose another port`,
    );
  }
  if (options.retentionDays !== undefined) await setRetention(address, namespace, options.retentionDays);
  return { address, namespace, uiUrl, dbFile, process: proc };
}

/**
 * The dev server picks free ports of its own for its internal services at start; another process can take one
 * between its check and its bind ("bind: address already in use", then a panic). That is the server's race,
 * not the user's port: start it again, at most twice.
 */
async function startAndWait(
  bin: string,
  args: string[],
  address: string,
  namespace: string,
  options: TemporalServerOptions,
): Promise<ManagedProcess> {
  for (let attempt = 1; ; attempt++) {
    const logged = options.logFile && existsSync(options.logFile) ? statSync(options.logFile).size : 0;
    const proc = startProcess(bin, args, {
      name: 'temporal',
      logFile: options.logFile,
      echo: options.echo,
      pidFile: options.pidFile,
    });
    try {
      await waitUntil(
        `Temporal dev server on ${address}`,
        async () => {
          const connection = await Connection.connect({ address, connectTimeout: 1000 });
          try {
            const { namespaceInfo } = await connection.workflowService.describeNamespace({ namespace });
            if (!namespaceInfo) return false;
            const sa = await connection.operatorService.listSearchAttributes({ namespace });
            return Object.keys(SEARCH_ATTRIBUTES).every((k) => k in (sa.customAttributes ?? {}));
          } finally {
            await connection.close();
          }
        },
        { timeoutMs: 90_000, process: proc },
      );
      return proc;
    } catch (error) {
      const tail =
        proc.child.exitCode !== null && options.logFile
          ? readFileSync(options.logFile).subarray(logged).toString()
          : '';
      // Taken from under it: an internal port, not the one asked for (that one fails the same way again).
      const raced = tail.includes('bind: address already in use') && !tail.includes(`${address}: bind`);
      if (!raced || attempt >= 3) throw error;
    }
  }
}

async function setRetention(address: string, namespace: string, days: number): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await connection.workflowService.updateNamespace({
      namespace,
      config: { workflowExecutionRetentionTtl: msToTs(`${days} days`) },
    });
  } finally {
    await connection.close();
  }
}
