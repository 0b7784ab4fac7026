import { fileURLToPath } from 'node:url';

// The benchmark's settings, from BENCH_* variables (bench/README.md lists
// them). Read once, here.

export const root = fileURLToPath(new URL('..', import.meta.url));
export const here = fileURLToPath(new URL('.', import.meta.url));

export function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number (got "${raw}")`);
  return value;
}

export const settings = {
  warmupSeconds: numberFromEnv('BENCH_WARMUP_S', 3),
  seconds: numberFromEnv('BENCH_DURATION_S', 10),
  /** get-cold reads every document once: its window is shorter, so its pool of fresh documents stays small. */
  coldSeconds: numberFromEnv('BENCH_COLD_S', 5),
  connections: numberFromEnv('BENCH_CONNECTIONS', 50),
  burstRate: numberFromEnv('BENCH_BURST_RATE', 500),
  burstSeconds: numberFromEnv('BENCH_BURST_S', 20),
  burstWaves: numberFromEnv('BENCH_BURST_WAVES', 10),
  burstConnections: numberFromEnv('BENCH_BURST_CONNECTIONS', 100),
  /** The whole run is abandoned (children killed, exit 1) after this: a full run takes 440 s on a quiet 2-core host (bench/README.md). */
  deadlineSeconds: numberFromEnv('BENCH_DEADLINE_S', 600),
  /** Scenario and group names (`make bench SCENARIOS=…` sets it); empty: all. */
  only: (process.env.BENCH_ONLY ?? '').split(',').map((name) => name.trim()).filter(Boolean),
  output: process.env.BENCH_OUTPUT || `${here}results/latest.json`,
  /** The API entry point, relative to the repository (default: the build of `make build`). */
  apiEntry: process.env.BENCH_API_ENTRY || 'dist/processes/api.js',
  /** Another build of the API (e.g. the one before a change), measured as get-hot-b in get-hot's slices. */
  apiEntryB: process.env.BENCH_API_ENTRY_B || undefined,
  /** Extra node flags for the API process, e.g. `--cpu-prof --cpu-prof-dir=bench/results/profiles`. */
  apiNodeArgs: (process.env.BENCH_API_NODE_ARGS ?? '').split(' ').filter(Boolean),
  /** Node flags for get-hot-b's API instead of BENCH_API_NODE_ARGS (alone, without BENCH_API_ENTRY_B: the same build with other flags). */
  apiNodeArgsB: process.env.BENCH_API_NODE_ARGS_B === undefined ? undefined : process.env.BENCH_API_NODE_ARGS_B.split(' ').filter(Boolean),
  strict: process.env.BENCH_STRICT === '1',
  /** A directory: CPU profiles of the API over get-hot's measured slices, and of the ceiling's process over ceiling-same-response's (bench/profiler.ts). */
  apiProfileDir: process.env.BENCH_API_PROFILE || undefined,
  /** With BENCH_API_PROFILE: allocation samples (.heapprofile) instead of CPU profiles. */
  apiProfileHeap: process.env.BENCH_API_PROFILE_HEAP === '1',
  /** With BENCH_API_PROFILE: the kernel's CPU samples (perf record) instead of V8's wall-clock ones (bench/perf-profiler.ts). */
  apiProfilePerf: process.env.BENCH_API_PROFILE_PERF === '1' && Boolean(process.env.BENCH_API_PROFILE),
};

export type Settings = typeof settings;

/** Any setting that changes what is measured makes a run no reference: it writes results/partial.tmp.json. */
export function isPartialRun(): boolean {
  const neutral = ['BENCH_OUTPUT', 'BENCH_API_ENTRY', 'BENCH_STRICT', 'BENCH_DEADLINE_S'];
  return Object.keys(process.env).some((name) => name.startsWith('BENCH_') && !neutral.includes(name) && process.env[name] !== '');
}

export const log = (message: string) => console.error(`[bench] ${message}`);
