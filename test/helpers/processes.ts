// What a test needs to know about the processes a command left behind: every descendant (children run in
// process groups of their own, so a group is not enough), whether a pid still runs, who holds a port.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { commandLine, portHolder } from '../../src/dev/process.ts';

/** Every process descended from `pid`. */
export function descendants(pid: number): number[] {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const found = new Set<number>();
  const walk = (parent: number) => {
    for (const [child, ppid] of table) {
      if (ppid === parent && !found.has(child)) {
        found.add(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return [...found];
}

/** Running (a zombie waiting for its parent to reap it counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** Those of `pids` still running after up to `withinMs`, each with its command line (for the failure message). */
export async function survivors(pids: number[], withinMs = 5000): Promise<string[]> {
  const deadline = Date.now() + withinMs;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return pids.filter(alive).map((pid) => `${pid} ${commandLine(pid, 200) ?? ''}`);
}

/** "port → holder" for each of `ports` something still listens on. */
export function heldPorts(ports: number[]): string[] {
  return ports.flatMap((port) => {
    const pid = portHolder(port);
    return pid === undefined ? [] : [`${port} held by ${pid} ${commandLine(pid, 200) ?? ''}`];
  });
}

/** SIGKILL to `pid` and everything below it. */
export function killTree(pid: number | undefined): void {
  if (pid === undefined) return;
  for (const p of [...descendants(pid), pid]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
