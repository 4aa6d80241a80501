// The OpenBao dev server's start must know it is talking to the server it started, not to whatever else
// answers on its port (a Temporal UI answers 200 with its page on every path).
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startOpenBao, VaultAdmin, type OpenBaoServer } from '../../src/dev/openbao.ts';
import { freePort } from '../../src/dev/process.ts';

const running: Array<OpenBaoServer | Server> = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    if ('rootToken' in r) await r.process.stop();
    else await new Promise((resolve) => r.close(resolve));
  }
});

/** An HTTP server like the Temporal UI: a page, status 200, for any path. */
async function pageServer(port: number): Promise<Server> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><html><body>Temporal</body></html>');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  running.push(server);
  return server;
}

describe('OpenBao dev server start', () => {
  it('refuses a port another HTTP server holds, naming the port, instead of taking that server for OpenBao', async () => {
    const port = await freePort();
    await pageServer(port);
    const started = startOpenBao({ port }).then((server) => {
      running.push(server);
      return server;
    });
    await expect(started).rejects.toThrow(`port ${port} (OpenBao) is in use`);
  }, 60_000);

  it('on a port of its own choosing, moves to another free port when the one it picked is taken', async () => {
    const taken = await freePort();
    await pageServer(taken);
    let picks = 0;
    const server = await startOpenBao({ pickPort: async () => (picks++ === 0 ? taken : freePort()) });
    running.push(server);
    expect(picks).toBe(2);
    expect(server.address).not.toContain(`:${taken}`);
    // The server that answers is the one started: its root token reads what it wrote.
    const admin = new VaultAdmin(server.address, server.rootToken);
    expect(Object.keys(await admin.mounts())).toContain('secret/');
  }, 60_000);
});
