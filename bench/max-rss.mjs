// Preloaded into a measured child (`node --import ./bench/max-rss.mjs …`): at exit it writes the process's
// peak resident set size (getrusage ru_maxrss, KiB on Linux) to stderr on a line of its own.
import { writeSync } from 'node:fs';

process.on('exit', () => {
  writeSync(2, `\nbench-max-rss-kib ${process.resourceUsage().maxRSS}\n`);
});
