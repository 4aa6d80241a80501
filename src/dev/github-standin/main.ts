// The GitHub stand-in as an outside service of its own:
//
//   node --import tsx src/dev/github-standin/main.ts [--port 0] [--host 127.0.0.1] [--data DIR] [--persist]
//
// It prints one line, `github-standin: listening on <url> (REST API <url>/api/v3)`, then serves until
// SIGTERM or SIGINT. Whoever started it sets it up through its control API (/_standin/…: users,
// repositories, Apps, the webhook) and reads back what it received (/_standin/requests, /_standin/state).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startGitHubStandin } from './server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    data: { type: 'string' },
    persist: { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(
    `github-standin: --port: expected a port number (0 = any free port), found ${JSON.stringify(values.port)}`,
  );
  process.exit(2);
}
const running = await startGitHubStandin({
  dataDir: values.data ?? mkdtempSync(join(tmpdir(), 'github-standin-')),
  persist: values.persist,
  port,
  host: values.host,
});
console.log(`github-standin: listening on ${running.url} (REST API ${running.url}/api/v3)`);

const stop = () => void running.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
