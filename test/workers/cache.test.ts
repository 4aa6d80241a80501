import { describe, expect, it } from 'vitest';
import { workflowCacheSize } from '../../src/workers/cache.ts';

describe('FOUREYES_WORKFLOW_CACHE', () => {
  it('defaults to no cache: every workflow task is handled from the full history, as a replay handles it', () => {
    expect(workflowCacheSize({})).toBe(0);
    expect(workflowCacheSize({ FOUREYES_WORKFLOW_CACHE: ' ' })).toBe(0);
  });

  it('takes a whole number of workflows', () => {
    expect(workflowCacheSize({ FOUREYES_WORKFLOW_CACHE: '500' })).toBe(500);
  });

  it.each(['-1', '1.5', 'lots', '99999999'])('refuses %s, naming the variable and the way out', (value) => {
    expect(() => workflowCacheSize({ FOUREYES_WORKFLOW_CACHE: value })).toThrow(
      /^FOUREYES_WORKFLOW_CACHE: expected a whole number of workflows \(0 or more\), found .*; unset it for the default 0/,
    );
  });
});
