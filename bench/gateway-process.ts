// The gateway as its own process for the webhook benchmark, as in production (`foureyes gateway`): the GitHub
// stand-in stays in the bench process, whose synchronous git calls must not stall the gateway's event loop.
// Its settings (secrets included) come over IPC, never argv; it answers with its URL.
import { Client, Connection } from '@temporalio/client';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../src/config/load.ts';
import { createGateway } from '../src/gateway/app.ts';

export interface GatewayProcessSettings {
  address: string;
  namespace: string;
  configYaml: string;
  env: Record<string, string>;
}

process.once('message', (settings: GatewayProcessSettings) => {
  void (async () => {
    const connection = await Connection.connect({ address: settings.address });
    const client = new Client({ connection, namespace: settings.namespace });
    const config = parseConfig(settings.configYaml, 'bench.yaml');
    const server = createGateway({ client, config: () => config, env: settings.env });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    process.send?.({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    process.once('SIGTERM', () => {
      server.closeAllConnections();
      server.close(() => void connection.close().finally(() => process.exit(0)));
    });
  })().catch((error: unknown) => {
    console.error(`bench gateway: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  });
});
