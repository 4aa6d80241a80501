// Entry point of the gateway process.
import { loadConfig } from '../config/load.ts';
import { connectClient } from '../shared/temporal-connection.ts';
import { logFor } from '../shared/log.ts';
import { startTracing } from '../workers/tracing.ts';
import { createGateway } from './app.ts';
import { loadSigningKey, SigningKeyError } from './approvals/signing.ts';
import { requireWebhookSecret, WebhookSecretError } from './routes/github-webhook.ts';
import { OperatorTokenError, ReadAccess } from './read-access.ts';

const log = logFor('gateway', process.env);
const config = loadConfig();
try {
  // Every approval channel signs with this key: refuse to start without it rather than fail on the first approval.
  loadSigningKey(process.env);
} catch (error) {
  if (!(error instanceof SigningKeyError)) throw error;
  log.error(error.message);
  process.exit(1);
}
try {
  // POST /webhooks/github verifies every delivery with it.
  requireWebhookSecret(process.env);
} catch (error) {
  if (!(error instanceof WebhookSecretError)) throw error;
  log.error(error.message);
  process.exit(1);
}
const readAccess = new ReadAccess();
try {
  // A malformed operator token list is a configuration error: say so now, not as a 500 on the first read.
  readAccess.operatorDigests(process.env);
} catch (error) {
  if (!(error instanceof OperatorTokenError)) throw error;
  log.error(error.message);
  process.exit(1);
}
// Optional OpenTelemetry tracing (OTEL_EXPORTER_OTLP_ENDPOINT): webhooks' signalWithStart and approvals carry the trace.
const tracing = startTracing('gateway', process.env, (line) => log.info(line));
const client = await connectClient(process.env, tracing.clientInterceptors);
const port = Number(process.env.PORT ?? 3000);
const server = createGateway({ client, config: () => config, env: process.env, readAccess });
server.listen(port, process.env.HOST ?? '127.0.0.1', () =>
  log.info(`listening on http://${process.env.HOST ?? '127.0.0.1'}:${port}`),
);
const stop = () => {
  // Stop accepting; requests in flight finish (up to 5 s), idle keep-alive connections close now.
  log.info('stopping: no new connections, finishing requests in flight');
  // Then flush the spans still batched, so the last requests' traces are not lost.
  server.close(() => void tracing.shutdown().finally(() => process.exit(0)));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5000).unref();
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
