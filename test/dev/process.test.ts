import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, startProcess } from '../../src/dev/process.ts';

describe('freePort', () => {
  it('never hands out one port twice in a process, so the servers of one start never share a port', async () => {
    // 400 picks at random from 12,000 ports would repeat one almost surely (p > 0.99) if picks were independent.
    const ports: number[] = [];
    for (let i = 0; i < 400; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
  });
});

describe('startProcess', () => {
  it('keeps in its log what a child printed after it exited, without a write after the log ended', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'foureyes-process-'));
    const logFile = join(dir, 'child.log');
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onError);
    try {
      // The leader exits at once; what it started (in a session of its own, as a server's helper may be) still
      // holds its output and prints after that, as a stopping server's last log lines come after its 'exit'.
      const child = startProcess('sh', ['-c', 'setsid sh -c "sleep 0.3; echo late line" & echo first line'], {
        name: 'leader',
        logFile,
      });
      const closed = new Promise<void>((resolve) => child.child.once('close', () => resolve()));
      expect(await child.exited).toBe(0);
      await closed;
      await new Promise((r) => setTimeout(r, 100));
      expect(readFileSync(logFile, 'utf8')).toBe('first line\nlate line\n');
    } finally {
      process.off('uncaughtException', onError);
    }
    expect(errors).toEqual([]);
  });
});
