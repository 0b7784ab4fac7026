import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { PERF_FREQUENCY_HZ } from './perf-profiler.ts';

// `node bench/completion-timeline.ts <dir>`: the API's CPU over each
// completion of `resumable-64mb` (BENCH_API_PROFILE=<dir>
// BENCH_API_PROFILE_PERF=1), split in time: what it did when the last
// append arrived (the first BURST_S), what it did once the emulator had
// completed the upload (the last BURST_S), and the wait between, when it
// only idles. A large completion's wait lasts seconds of the emulator's
// work; its bursts are the completion's own cost.

const BURST_S = 0.2;
const [dir = '.'] = process.argv.slice(2);
const ms = (samples: number) => (samples / PERF_FREQUENCY_HZ) * 1000;

for (const file of readdirSync(dir).filter((name) => /^completion-.*\.perf\.data$/.test(name)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))) {
  const times = execFileSync('perf', ['script', '-i', `${dir}/${file}`, '-F', 'time'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 1024 * 1024 })
    .split('\n')
    .map((line) => Number.parseFloat(line))
    .filter((time) => Number.isFinite(time));
  if (times.length === 0) continue;
  const first = times[0]!;
  const last = times.at(-1)!;
  const start = times.filter((time) => time - first < BURST_S).length;
  const end = last - first < 2 * BURST_S ? 0 : times.filter((time) => last - time < BURST_S).length;
  const wait = times.length - start - end;
  const waitS = Math.max(last - first - 2 * BURST_S, 0);
  console.log(
    `${file.padEnd(32)} ${ms(times.length).toFixed(1).padStart(6)} ms: arrival ${ms(start).toFixed(1)}, end ${ms(end).toFixed(1)}, ` +
      `wait ${ms(wait).toFixed(1)} ms over ${waitS.toFixed(2)} s${waitS > 0 ? ` (${(ms(wait) / waitS).toFixed(1)} ms/s)` : ''}`,
  );
}
