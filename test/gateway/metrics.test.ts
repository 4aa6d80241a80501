// GET /metrics: request counts by route and status, and the latency histogram, in Prometheus text format.
import type { Client } from '@temporalio/client';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway } from '../../src/gateway/app.ts';
import { DURATION_BUCKETS } from '../../src/gateway/metrics.ts';
import type { FoureyesConfig } from '../../src/config/schema.ts';

// /healthz asks Temporal; this client's Temporal is down, so the gateway answers 503.
const client = {
  options: { namespace: 'foureyes' },
  workflowService: { describeNamespace: async () => Promise.reject(new Error('14 UNAVAILABLE: no Temporal here')) },
} as unknown as Client;

let server: ReturnType<typeof createGateway>;
let base: string;

beforeAll(async () => {
  server = createGateway({ client, config: () => ({}) as FoureyesConfig, env: {} });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('gateway /metrics', () => {
  it('counts requests by route pattern and status and records their latency', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(503);
    expect((await fetch(`${base}/api/changes/acme/app/7`, { method: 'DELETE' })).status).toBe(405);
    expect((await fetch(`${base}/no/such/place`)).status).toBe(404);
    expect((await fetch(`${base}/no/such/place`)).status).toBe(404);

    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(sample(text, 'foureyes_gateway_requests_total', 'method="GET",route="/healthz",status="503"')).toBe(1);
    // The raw path never becomes a label: the route pattern does.
    expect(
      sample(
        text,
        'foureyes_gateway_requests_total',
        'method="DELETE",route="/api/changes/{owner}/{repo}/{number}",status="405"',
      ),
    ).toBe(1);
    expect(sample(text, 'foureyes_gateway_requests_total', 'method="GET",route="unmatched",status="404"')).toBe(2);
    expect(text).not.toContain('acme');
    expect(text).toContain('# TYPE foureyes_gateway_request_duration_seconds histogram');
    expect(sample(text, 'foureyes_gateway_request_duration_seconds_count', 'route="unmatched"')).toBe(2);
    expect(sample(text, 'foureyes_gateway_request_duration_seconds_bucket', 'route="unmatched",le="+Inf"')).toBe(2);
    // Cumulative buckets never decrease.
    const buckets = DURATION_BUCKETS.map(
      (le) => sample(text, 'foureyes_gateway_request_duration_seconds_bucket', `route="/healthz",le="${le}"`) ?? -1,
    );
    expect(buckets.every((v, i) => v >= 0 && (i === 0 || v >= (buckets[i - 1] ?? 0)))).toBe(true);

    // The scrape itself is counted by the next one.
    const again = await (await fetch(`${base}/metrics`)).text();
    expect(sample(again, 'foureyes_gateway_requests_total', 'method="GET",route="/metrics",status="200"')).toBe(1);
  });
});
