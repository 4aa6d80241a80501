// The GitHub stand-in answers foureyes' writes with 500, with 429 + Retry-After, or slowly (also slower than
// the client's 15 s request timeout, so the write lands after the client gave up): retries wait at least
// Retry-After, and no comment, check run or deployment is duplicated.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { driveChange, judge, type Drill } from './common.ts';
import type { DrillStack } from './stack.ts';

interface Fault {
  method?: string;
  path: string;
  status: number;
  retryAfter?: number;
  delayMs?: number;
  count: number;
}

const CYCLE: Array<{ name: string; faults: Fault[] }> = [
  {
    name: '500',
    faults: [
      { path: '/issues/(\\d+/)?comments', status: 500, count: 3 },
      { method: 'POST', path: '/deployments$', status: 500, count: 2 },
      { method: 'POST', path: '/check-runs$', status: 502, count: 2 },
    ],
  },
  {
    name: '429 + Retry-After',
    faults: [
      { method: 'POST', path: '/check-runs$', status: 429, retryAfter: 2, count: 2 },
      { method: 'POST', path: '/deployments/\\d+/statuses$', status: 429, retryAfter: 3, count: 1 },
      { path: '/issues/(\\d+/)?comments', status: 429, retryAfter: 1, count: 2 },
    ],
  },
  {
    name: 'slow',
    faults: [
      { path: '^/repos/', status: 0, delayMs: 2500, count: 8 },
      // Longer than the client's request timeout: the deployment is created after the client gave up.
      { method: 'POST', path: '/deployments$', status: 0, delayMs: 16_000, count: 1 },
    ],
  },
];

interface Logged {
  method: string;
  path: string;
  startedAt: number;
  finishedAt: number;
  status: number;
  retryAfter?: number;
}

function recordRequests(stack: DrillStack): { log: Logged[]; stop(): void } {
  const log: Logged[] = [];
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const startedAt = Date.now();
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path.startsWith('/_standin/')) return;
    res.on('finish', () => {
      // writeHead's headers are not readable back; the Retry-After sent is the matching 429 fault's.
      const fault =
        res.statusCode === 429
          ? CYCLE.flatMap((p) => p.faults).find(
              (f) => f.status === 429 && new RegExp(f.path).test(path) && (!f.method || f.method === req.method),
            )
          : undefined;
      log.push({
        method: req.method ?? '',
        path,
        startedAt,
        finishedAt: Date.now(),
        status: res.statusCode,
        ...(fault?.retryAfter !== undefined ? { retryAfter: fault.retryAfter } : {}),
      });
    });
  };
  stack.github.server.server.on('request', listener);
  return { log, stop: () => void stack.github.server.server.off('request', listener) };
}

export const githubFaults: Drill = async ({ long, log, stack }) => {
  const started = Date.now();
  const rounds = long ? 4 : 1;
  {
    const recorder = recordRequests(stack);
    const requests = recorder.log;
    const results = [];
    let injected = 0;
    for (let round = 0; round < rounds; round++) {
      for (const phase of CYCLE) {
        const faults = stack.github.standin.state.faults;
        faults.length = 0;
        for (const f of phase.faults)
          faults.push({
            id: stack.github.standin.nextId(),
            method: f.method,
            path: f.path,
            status: f.status,
            retryAfter: f.retryAfter,
            delayMs: f.delayMs,
            remaining: f.count,
          });
        log(`change with GitHub answering ${phase.name}`);
        // One change at a time, so that the request after a 429 on the same path is that write's retry.
        results.push(await driveChange(stack, 240_000));
        injected += phase.faults.reduce(
          (sum, f) =>
            sum +
            (f.count - Math.max(0, faults.find((x) => x.path === f.path && x.method === f.method)?.remaining ?? 0)),
          0,
        );
      }
    }
    stack.github.standin.state.faults.length = 0;
    recorder.stop();
    // Every 429 with Retry-After: the next request to the same method and path came no earlier than asked.
    let limited = 0;
    let early = 0;
    const gaps: number[] = [];
    for (const [i, r] of requests.entries()) {
      if (r.status !== 429 || r.retryAfter === undefined) continue;
      limited++;
      const next = requests.slice(i + 1).find((n) => n.method === r.method && n.path === r.path);
      if (!next) continue;
      const gap = next.startedAt - r.finishedAt;
      gaps.push(gap);
      if (gap < r.retryAfter * 1000 - 100) early++;
    }
    const served = requests.filter((r) => r.status >= 500).length;
    const result = await judge(
      stack,
      'github-faults',
      results,
      `${injected} faulty GitHub answers (${served} × 5xx, ${limited} × 429 with Retry-After, slow answers up to 16 s) over ${results.length} changes`,
      started,
    );
    result.notes.push(
      `429 retries waited ${gaps.map((g) => `${(g / 1000).toFixed(1)} s`).join(', ') || 'n/a'} after Retry-After of ${requests
        .filter((r) => r.status === 429)
        .map((r) => `${r.retryAfter} s`)
        .join(', ')}; retried too early: ${early}`,
    );
    if (result.githubDuplicates > 0) {
      // What GitHub saw of the deployments, for the diagnosis.
      const t0 = requests[0]?.startedAt ?? 0;
      for (const r of requests.filter((x) => /\/deployments$/.test(x.path)))
        result.notes.push(
          `${r.method} ${r.path} ${r.status} at +${((r.startedAt - t0) / 1000).toFixed(1)} s..+${((r.finishedAt - t0) / 1000).toFixed(1)} s`,
        );
    }
    if (early > 0) result.failures.push(`${early} request(s) retried before Retry-After`);
    if (limited > 0 && gaps.length === 0) result.failures.push('no request was retried after a 429');
    return result;
  }
};
