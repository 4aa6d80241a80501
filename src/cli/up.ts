// `foureyes up` (= `npm start`): the whole system on this machine, until Ctrl-C.
import { dataDir } from '../dev/paths.ts';
import { defaultConfigFile, startStack } from '../dev/stack.ts';
import { CliError, parseArgs } from './commands.ts';

export async function run(args: string[]): Promise<number> {
  const { flags } = parseArgs(args, { flags: ['quiet'] });
  const configFile = defaultConfigFile();
  const data = dataDir();
  const retention = process.env.FOUREYES_RETENTION_DAYS ?? '30';
  if (!/^[1-9][0-9]{0,4}$/.test(retention)) throw new CliError(`FOUREYES_RETENTION_DAYS: expected a whole number of days (1 or more), found ${JSON.stringify(retention.slice(0, 20))}`, 2);
  const stack = await startStack({
    dataDir: data,
    configFile,
    temporalPort: Number(process.env.FOUREYES_TEMPORAL_PORT ?? 7233),
    uiPort: Number(process.env.FOUREYES_UI_PORT ?? 8233),
    baoPort: Number(process.env.FOUREYES_BAO_PORT ?? 8200),
    gatewayPort: Number(process.env.PORT ?? 3000),
    echo: !flags.has('quiet'),
    retentionDays: Number(retention),
  });
  const lines = [
    '',
    'foureyes is up.',
    `  gateway          ${stack.gatewayUrl}   (POST /webhooks/github, /slack/*, /api/changes/…; GET /healthz)`,
    `  Temporal         ${stack.temporal.address}   namespace ${stack.temporal.namespace}`,
    `  Temporal UI      ${stack.temporal.uiUrl ?? '(headless)'}`,
    `  OpenBao          ${stack.openbao.address}   (dev server; deployer logs in with AppRole ${stack.config.vault.prefix}-deployer)`,
    `  data folder      ${data}   (Temporal database, keys, logs; kept across restarts; histories kept ${retention} days)`,
    `  configuration    ${configFile}`,
    `  GitHub           ${stack.githubSummary}`,
    '',
    'Press Ctrl-C to stop everything.',
  ];
  console.log(lines.join('\n'));
  let stopping = false;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`\nfoureyes: ${signal} received, stopping the gateway, the workers and the servers …`);
      void stack.stop().then(() => {
        console.log('foureyes: stopped.');
        resolve();
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    // A child that dies on its own is a failure the operator must see: stop the rest and exit non-zero.
    for (const p of stack.processes) {
      void p.exited.then((code) => {
        if (!stopping) {
          console.error(`foureyes: ${p.name} exited (code ${code}); see ${data}/logs. Stopping everything.`);
          process.exitCode = 1;
          stop('child exit');
        }
      });
    }
  });
  return Number(process.exitCode ?? 0);
}
