// Figures for the benchmarks: percentiles (nearest-rank), summaries and the small tables each scenario prints.
import { cpus, totalmem } from 'node:os';

/** Nearest-rank percentile (p in 0..100) of `values`; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((Math.min(100, Math.max(0, p)) / 100) * sorted.length);
  return sorted[Math.max(0, rank - 1)] as number;
}

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  const n = values.length;
  const mean = n === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / n;
  return {
    n,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    mean,
    max: n === 0 ? Number.NaN : Math.max(...values),
  };
}

export function fmt(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return '—';
  return value.toFixed(Math.abs(value) >= 100 ? 0 : digits);
}

/** "1.23×" — how many times the baseline's figure this figure is. */
export function ratio(value: number, baseline: number): string {
  if (!Number.isFinite(value) || !Number.isFinite(baseline) || baseline === 0) return '—';
  return `${(value / baseline).toFixed(2)}×`;
}

/** A plain-text table (also valid Markdown) with a header row. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

export function machineLine(): string {
  const cores = cpus();
  return `machine: ${cores.length} cores (${cores[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, Node ${process.version}, ${process.platform}/${process.arch}`;
}

/** Milliseconds since the epoch with sub-millisecond precision, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Median (mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** "1.12× (1.05–1.20×)": the median of per-round ratios and their spread (lowest–highest). */
export function ratioSpread(ratios: readonly number[]): string {
  const ok = ratios.filter(Number.isFinite);
  if (ok.length === 0) return '—';
  return `${median(ok).toFixed(2)}× (${Math.min(...ok).toFixed(2)}–${Math.max(...ok).toFixed(2)}×)`;
}
