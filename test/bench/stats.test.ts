// The percentile helper behind every benchmark figure (nearest-rank, as the RESULTS tables state).
import { describe, expect, it } from 'vitest';
import { percentile, ratio, summarize, table } from '../../bench/stats.ts';

describe('bench stats', () => {
  it('takes nearest-rank percentiles without reordering the input', () => {
    const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(values, 50)).toBe(5);
    expect(percentile(values, 95)).toBe(10);
    expect(percentile(values, 99)).toBe(10);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile(values, 100)).toBe(10);
    expect(values[0]).toBe(5);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(hundred, 50), percentile(hundred, 95), percentile(hundred, 99)]).toEqual([50, 95, 99]);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarizes and compares against a baseline', () => {
    expect(summarize([1, 2, 3, 4])).toMatchObject({ n: 4, p50: 2, mean: 2.5, max: 4 });
    expect(ratio(150, 100)).toBe('1.50×');
    expect(ratio(1, 0)).toBe('—');
    expect(table(['a', 'bb'], [['1', '2']]).split('\n')).toEqual(['| a | bb |', '| - | -- |', '| 1 | 2  |']);
  });
});
