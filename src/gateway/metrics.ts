// Gateway metrics in the Prometheus text exposition format (0.0.4), written by hand: request counts by
// route and status, and a request-duration histogram by route. Routes are labelled by their pattern
// (`/api/changes/{owner}/{repo}/{number}`), never by the raw path, so label cardinality stays bounded.
import type { ServerResponse } from 'node:http';

export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labels = (pairs: Record<string, string>) =>
  `{${Object.entries(pairs)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',')}}`;
const num = (n: number) => (Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(12))));

export class GatewayMetrics {
  private readonly requests = new Map<string, { method: string; route: string; status: string; value: number }>();
  private readonly durations = new Map<string, { route: string; h: Histogram }>();
  private readonly started = Date.now();
  inFlight = 0;

  observe(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`;
    const entry = this.requests.get(key) ?? { method, route, status: String(status), value: 0 };
    entry.value += 1;
    this.requests.set(key, entry);
    const d = this.durations.get(route) ?? { route, h: { counts: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 } };
    DURATION_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) d.h.counts[i] = (d.h.counts[i] ?? 0) + 1;
    });
    d.h.sum += seconds;
    d.h.count += 1;
    this.durations.set(route, d);
  }

  /** Start timing a request; the observation is made when the response finishes (or the socket closes). */
  track(method: string, route: string, res: ServerResponse): void {
    const start = process.hrtime.bigint();
    this.inFlight += 1;
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      this.inFlight -= 1;
      this.observe(method, route, res.statusCode, Number(process.hrtime.bigint() - start) / 1e9);
    };
    res.once('finish', end);
    res.once('close', end);
  }

  render(): string {
    const lines: string[] = [];
    lines.push(
      '# HELP foureyes_gateway_requests_total HTTP requests answered by the gateway, by method, route and status.',
    );
    lines.push('# TYPE foureyes_gateway_requests_total counter');
    for (const r of [...this.requests.values()].sort((a, b) =>
      `${a.route}${a.method}${a.status}`.localeCompare(`${b.route}${b.method}${b.status}`),
    )) {
      lines.push(
        `foureyes_gateway_requests_total${labels({ method: r.method, route: r.route, status: r.status })} ${r.value}`,
      );
    }
    lines.push('# HELP foureyes_gateway_request_duration_seconds Time from request to response, by route.');
    lines.push('# TYPE foureyes_gateway_request_duration_seconds histogram');
    for (const { route, h } of [...this.durations.values()].sort((a, b) => a.route.localeCompare(b.route))) {
      DURATION_BUCKETS.forEach((bound, i) =>
        lines.push(
          `foureyes_gateway_request_duration_seconds_bucket${labels({ route, le: String(bound) })} ${h.counts[i] ?? 0}`,
        ),
      );
      lines.push(`foureyes_gateway_request_duration_seconds_bucket${labels({ route, le: '+Inf' })} ${h.count}`);
      lines.push(`foureyes_gateway_request_duration_seconds_sum${labels({ route })} ${num(h.sum)}`);
      lines.push(`foureyes_gateway_request_duration_seconds_count${labels({ route })} ${h.count}`);
    }
    lines.push('# HELP foureyes_gateway_requests_in_flight Requests being handled now.');
    lines.push('# TYPE foureyes_gateway_requests_in_flight gauge');
    lines.push(`foureyes_gateway_requests_in_flight ${this.inFlight}`);
    lines.push('# HELP foureyes_gateway_start_time_seconds When this gateway process started (Unix time).');
    lines.push('# TYPE foureyes_gateway_start_time_seconds gauge');
    lines.push(`foureyes_gateway_start_time_seconds ${Math.floor(this.started / 1000)}`);
    return `${lines.join('\n')}\n`;
  }
}

export function sendMetrics(res: ServerResponse, metrics: GatewayMetrics): void {
  const body = metrics.render();
  res.writeHead(200, {
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
