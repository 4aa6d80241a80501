import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/process.ts';

describe('freePort', () => {
  it('never hands out one port twice in a process, so the servers of one start never share a port', async () => {
    // 400 picks at random from 12,000 ports would repeat one almost surely (p > 0.99) if picks were independent.
    const ports: number[] = [];
    for (let i = 0; i < 400; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
  });
});
