import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { freePort, startLocalStack, type LocalStack } from '../src/local/emulators.ts';
import { ensureResources } from '../src/bootstrap/resources.ts';
import { createAwsClients } from '../src/adapters/aws.ts';
import { loadConfig } from '../src/config.ts';
import { SCENARIOS, type LoadSpec, type ScenarioName } from './scenarios.ts';
import type { LoadAnswer, LoadResult, Percentiles } from './load.ts';

// `make bench`: the local stack in this process, the built API and a
// bare-Fastify ceiling server as child processes, autocannon in a third
// child; every scenario warmed up, then measured, with the API process's CPU
// read from /proc. Prints a table and writes bench/results/latest.json.

const root = fileURLToPath(new URL('..', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number (got "${raw}")`);
  return value;
}

const settings = {
  warmupSeconds: numberFromEnv('BENCH_WARMUP_S', 3),
  seconds: numberFromEnv('BENCH_DURATION_S', 10),
  /** get-cold reads every document once: its window is shorter, so its pool of fresh documents stays small. */
  coldSeconds: numberFromEnv('BENCH_COLD_S', 5),
  connections: numberFromEnv('BENCH_CONNECTIONS', 50),
  burstRate: numberFromEnv('BENCH_BURST_RATE', 500),
  burstSeconds: numberFromEnv('BENCH_BURST_S', 20),
  burstWaves: numberFromEnv('BENCH_BURST_WAVES', 10),
  burstConnections: numberFromEnv('BENCH_BURST_CONNECTIONS', 100),
  /** The whole run is abandoned (children killed, exit 1) after this. */
  deadlineSeconds: numberFromEnv('BENCH_DEADLINE_S', 300),
  only: (process.env.BENCH_ONLY ?? '').split(',').map((name) => name.trim()).filter(Boolean),
  output: process.env.BENCH_OUTPUT || `${here}results/latest.json`,
  /** The API entry point, relative to the repository (default: the build of `make build`). */
  apiEntry: process.env.BENCH_API_ENTRY || 'dist/server.js',
  /** Extra node flags for the API process, e.g. `--cpu-prof --cpu-prof-dir=bench/results/profiles`. */
  apiNodeArgs: (process.env.BENCH_API_NODE_ARGS ?? '').split(' ').filter(Boolean),
  strict: process.env.BENCH_STRICT === '1',
};

const log = (message: string) => console.error(`[bench] ${message}`);

/** Slices of the interleaved ceiling / get-hot measurement. */
const INTERLEAVED_SLICES = 5;
/** Above this many busy cores of other work, a row is marked noisy. */
const NOISY_CORES = 0.5;

// ---------------------------------------------------------------- processes

const children = new Set<ChildProcess>();
let stack: LocalStack | undefined;
let reaper: ChildProcess | undefined;

function tellReaper(message: { watch?: number; forget?: number; clear?: true }) {
  if (reaper?.connected) reaper.send(message);
}

/** Starts `node <args>` with an IPC channel; the reaper kills it if this process dies first. */
function startNode(name: string, args: string[], env: NodeJS.ProcessEnv, output: 'pipe' | 'inherit'): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', output, output, 'ipc'] });
  children.add(child);
  child.once('exit', () => {
    children.delete(child);
    if (child.pid) tellReaper({ forget: child.pid });
  });
  if (child.pid) tellReaper({ watch: child.pid });
  return child;
}

async function stopChild(child: ChildProcess, graceMs = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.allSettled([...children].map((child) => stopChild(child)));
    await stack?.stop();
    tellReaper({ clear: true });
    reaper?.disconnect();
  })();
  return cleaning;
}

// Last resort if the process exits without cleanup() (an exception in a
// callback): synchronous kills of what is still running.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: stopping`);
    void cleanup().finally(() => process.exit(130));
  });
}
const deadline = setTimeout(() => {
  log(`still running after ${settings.deadlineSeconds} s (BENCH_DEADLINE_S): giving up`);
  void cleanup().finally(() => process.exit(1));
}, settings.deadlineSeconds * 1000);
deadline.unref();

async function waitForHttp(name: string, child: ChildProcess, url: string, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.signalCode ?? child.exitCode}) before answering ${url}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > until) throw new Error(`${name} does not answer ${url} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The API's own log lines (LOG_LEVEL=warn): counted, a few kept for the report. */
function collectLog(child: ChildProcess) {
  const seen = { lines: 0, messages: new Map<string, number>(), examples: new Map<string, string>(), tail: [] as string[] };
  let rest = '';
  const take = (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      seen.lines++;
      seen.tail.push(line.slice(0, 600));
      if (seen.tail.length > 15) seen.tail.shift();
      let message = line.slice(0, 200);
      try {
        const parsed = JSON.parse(line) as { msg?: string; level?: number };
        message = `${parsed.level ?? '?'} ${parsed.msg ?? line.slice(0, 200)}`;
      } catch {
        // Not JSON (a crash trace): keep the raw line.
      }
      seen.messages.set(message, (seen.messages.get(message) ?? 0) + 1);
      if (!seen.examples.has(message)) seen.examples.set(message, line.slice(0, 600));
    }
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return seen;
}

// -------------------------------------------------------------- the load child

class LoadGenerator {
  private readonly child: ChildProcess;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (result: LoadResult) => void; reject: (error: Error) => void }>();

  private readonly abort: Promise<never>;

  constructor(child: ChildProcess, abort: Promise<never>) {
    this.child = child;
    this.abort = abort;
    child.on('message', (answer: LoadAnswer) => {
      const waiting = this.pending.get(answer.id);
      if (!waiting) return;
      this.pending.delete(answer.id);
      if (answer.result) waiting.resolve(answer.result);
      else waiting.reject(new Error(`load generator: ${answer.error}`));
    });
    child.once('exit', (code, signal) => {
      for (const waiting of this.pending.values()) waiting.reject(new Error(`load generator exited (${signal ?? code})`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  run(spec: LoadSpec): Promise<LoadResult> {
    const id = this.next++;
    const answer = new Promise<LoadResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, spec });
    });
    return Promise.race([answer, this.abort]);
  }
}

// ------------------------------------------------------------------ CPU, /proc

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads), in ms. */
function cpuMs(pid: number | 'self'): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return Number.NaN;
  }
}

/** Busy and total time of the whole machine, in ms (first line of /proc/stat). */
function machineMs(): { busy: number; total: number } {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + (steal ?? 0);
  return { busy: (busy * 1000) / clockTicks, total: ((busy + idle! + iowait!) * 1000) / clockTicks };
}

/** Direct children of this process (redis-server is started by the stack, not by us here). */
function childPidsNamed(name: string): number[] {
  const found: number[] = [];
  for (const task of readdirSync(`/proc/${process.pid}/task`)) {
    let list = '';
    try {
      list = readFileSync(`/proc/${process.pid}/task/${task}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const pid of list.trim().split(/\s+/).filter(Boolean).map(Number)) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name) found.push(pid);
      } catch {
        // Gone.
      }
    }
  }
  return found;
}

type CpuSnapshot = { at: number; server: number; bench: number; redis: number; load: number; machine: { busy: number; total: number } };

/** `server` is the process under test: the API, or the ceiling server for the ceiling rows. */
type Pids = { server: number; redis: number | undefined; load: number };

function snapshot(pids: Pids): CpuSnapshot {
  return {
    at: performance.now(),
    server: cpuMs(pids.server),
    bench: cpuMs('self'),
    redis: pids.redis ? cpuMs(pids.redis) : 0,
    load: cpuMs(pids.load),
    machine: machineMs(),
  };
}

type CpuFigures = {
  /** CPU of the process under test (the API; the ceiling server in ceiling rows) per 2xx answer, ms. */
  serverMsPerOk: number | null;
  /** Its average busy cores during the window. */
  serverCores: number;
  /** Emulators (this process) and redis-server, per 2xx answer, ms, and their busy cores. */
  stackMsPerOk: number | null;
  stackCores: number;
  loadGeneratorCores: number;
  machineBusyCores: number;
  /** Busy cores not accounted for by the API, the stack and the load generator: other work on the machine. */
  otherBusyCores: number;
};

/** CPU ms spent between two snapshots; slices of one interleaved scenario add up. */
type CpuDelta = { wallMs: number; server: number; stack: number; load: number; machineBusy: number; machineTotal: number };

function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuDelta {
  return {
    wallMs: after.at - before.at,
    server: after.server - before.server,
    stack: after.bench - before.bench + (after.redis - before.redis),
    load: after.load - before.load,
    machineBusy: after.machine.busy - before.machine.busy,
    machineTotal: after.machine.total - before.machine.total,
  };
}

function addCpu(a: CpuDelta | undefined, b: CpuDelta): CpuDelta {
  if (!a) return b;
  return {
    wallMs: a.wallMs + b.wallMs,
    server: a.server + b.server,
    stack: a.stack + b.stack,
    load: a.load + b.load,
    machineBusy: a.machineBusy + b.machineBusy,
    machineTotal: a.machineTotal + b.machineTotal,
  };
}

function cpuFigures(delta: CpuDelta, ok: number): CpuFigures {
  const { wallMs, server, stack: stackMs, load } = delta;
  const machineBusy = (delta.machineBusy / delta.machineTotal) * cpus().length;
  const r = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;
  return {
    serverMsPerOk: ok > 0 ? r(server / ok) : null,
    serverCores: r(server / wallMs, 2),
    stackMsPerOk: ok > 0 ? r(stackMs / ok) : null,
    stackCores: r(stackMs / wallMs, 2),
    loadGeneratorCores: r(load / wallMs, 2),
    machineBusyCores: r(machineBusy, 2),
    otherBusyCores: r(Math.max(0, machineBusy - (server + stackMs + load) / wallMs), 2),
  };
}

// ------------------------------------------------------------------- scenarios

type ScenarioReport = {
  name: ScenarioName | 'ceiling-end';
  measures: string;
  skipped?: string;
  connections?: number;
  seconds?: number;
  requestsPerSecond?: number;
  /** To the mean of the run's ceiling measurements; get-hot: to the interleaved ceiling. */
  ratioToCeiling?: number | null;
  ratioToCeilingPerSlice?: number[];
  latencyMs?: Percentiles;
  errors?: number;
  timeouts?: number;
  non2xx?: number;
  statusCodes?: Record<string, number>;
  cpu?: CpuFigures;
  targetRate?: number;
  cache?: { hits: number; misses: number; missRatio: number | null };
  missLatencyMs?: Percentiles;
  warmup?: { seconds: number; requestsPerSecond: number; non2xx: number; errors: number };
  notes: string[];
};

const rps = (result: LoadResult) => Math.round((result.responses / Math.max(result.seconds, 0.001)) * 10) / 10;

function summarize(result: LoadResult) {
  return { seconds: result.seconds, requestsPerSecond: rps(result), non2xx: result.non2xx, errors: result.errors };
}

async function main() {
  const startedAt = new Date();
  const runTag = randomBytes(4).toString('hex');
  const selected = (name: string) => settings.only.length === 0 || settings.only.includes(name);
  const measuresOf = (name: ScenarioName) => SCENARIOS.find((scenario) => scenario.name === name)!.measures;

  if (!existsSync(`${root}${settings.apiEntry}`)) throw new Error(`${settings.apiEntry} is missing: run \`make build\` (or \`make bench\`, which builds)`);

  reaper = spawn(process.execPath, [`${here}reaper.ts`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await once(reaper, 'message');

  log('starting the local stack (dynalite and fauxqs in this process, redis-server)');
  stack = await startLocalStack();
  const redisPid = childPidsNamed('redis-server')[0];
  if (redisPid) tellReaper({ watch: redisPid });
  Object.assign(process.env, stack.env);
  const config = loadConfig(process.env);
  const aws = createAwsClients(config);
  await ensureResources(config, aws);
  aws.destroy();

  const [apiPort, ceilingPort] = [await freePort(), await freePort()];
  const serviceEnv = {
    ...process.env,
    ...stack.env,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    AUTH_MODE: 'none',
    // Per-tenant rate limiting would turn a load test into a test of the limiter.
    RATE_LIMIT_PER_MINUTE: '1000000000',
  };
  const api = startNode('api', [...settings.apiNodeArgs, settings.apiEntry], { ...serviceEnv, PORT: String(apiPort) }, 'pipe');
  const apiLog = collectLog(api);
  const ceiling = startNode('ceiling', [`${here}ceiling.ts`], { ...serviceEnv, PORT: String(ceilingPort) }, 'inherit');
  const loadChild = startNode('load', [`${here}load.ts`], process.env, 'inherit');
  const loadReady = once(loadChild, 'message');
  const apiOrigin = `http://127.0.0.1:${apiPort}`;
  const ceilingOrigin = `http://127.0.0.1:${ceilingPort}`;
  const apiOutput = () => (apiLog.tail.length ? `\nits last output:\n  ${apiLog.tail.join('\n  ')}` : '');
  // The API dying mid-run ends the run at once, with its last words.
  const apiDied = new Promise<never>((_, reject) => {
    api.once('exit', (code, signal) => {
      if (!cleaning) reject(new Error(`the API exited (${signal ?? code}) during the run${apiOutput()}`));
    });
  });
  apiDied.catch(() => {});
  await Promise.all([
    waitForHttp('the API', api, `${apiOrigin}/health/live`, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}${apiOutput()}`);
    }),
    waitForHttp('the ceiling server', ceiling, `${ceilingOrigin}/`, 20_000),
    loadReady,
  ]);
  const load = new LoadGenerator(loadChild, apiDied);
  const pids: Pids = { server: api.pid!, redis: redisPid, load: load.pid };
  log(`API pid ${api.pid} on ${apiOrigin}, ceiling pid ${ceiling.pid}, load generator pid ${load.pid}, redis pid ${redisPid ?? '?'}`);

  const reports: ScenarioReport[] = [];
  const base = { connections: settings.connections, runTag };

  const serverPid = (name: string) => (name.startsWith('ceiling') ? ceiling.pid! : api.pid!);

  /** Warm-up, then the measured phase with CPU read around it. */
  async function measured(
    name: ScenarioReport['name'],
    spec: Omit<LoadSpec, 'phase' | 'seconds'>,
    options: { warmup?: Partial<LoadSpec>; seconds?: number; before?: (warmup: LoadResult) => Promise<Partial<LoadSpec>> } = {},
  ): Promise<{ report: ScenarioReport; result: LoadResult; warmup: LoadResult }> {
    const warmupSpec: LoadSpec = { ...spec, phase: 'warmup', seconds: settings.warmupSeconds, ...options.warmup };
    log(`${name}: warm-up ${warmupSpec.seconds} s`);
    const warmup = await load.run(warmupSpec);
    const extra = options.before ? await options.before(warmup) : {};
    const seconds = options.seconds ?? settings.seconds;
    log(`${name}: measuring ${seconds} s`);
    const processes = { ...pids, server: serverPid(name) };
    const before = snapshot(processes);
    const result = await load.run({ ...spec, phase: 'measure', seconds, ...extra });
    const after = snapshot(processes);
    const report = reportOf(name, spec, result, cpuDelta(before, after), warmup);
    reports.push(report);
    return { report, result, warmup };
  }

  function reportOf(
    name: ScenarioReport['name'],
    spec: Omit<LoadSpec, 'phase' | 'seconds'>,
    result: LoadResult,
    cpu: CpuDelta,
    warmup: LoadResult,
  ): ScenarioReport {
    const report: ScenarioReport = {
      name,
      measures: name === 'ceiling-end' ? `${measuresOf('ceiling')}, again at the end of the run` : measuresOf(name),
      connections: spec.connections,
      seconds: result.seconds,
      requestsPerSecond: rps(result),
      latencyMs: result.latency,
      errors: result.errors,
      timeouts: result.timeouts,
      non2xx: result.non2xx,
      statusCodes: result.statusCodes,
      cpu: cpuFigures(cpu, result.ok),
      warmup: summarize(warmup),
      notes: [],
    };
    if (report.cpu!.otherBusyCores > NOISY_CORES) {
      report.notes.push(`noisy: other work on the machine took ${report.cpu!.otherBusyCores} cores`);
    }
    return report;
  }

  /**
   * Scenarios measured in alternating slices (A B A B …) after their
   * warm-ups: work elsewhere on the machine, which comes and goes over tens
   * of seconds, then weighs on both alike, and their ratio holds.
   */
  async function interleaved(
    entries: { name: ScenarioName; spec: Omit<LoadSpec, 'phase' | 'seconds'> }[],
    slices: number,
    seconds: number,
  ) {
    const warmups = new Map<string, LoadResult>();
    for (const { name, spec } of entries) {
      log(`${name}: warm-up ${settings.warmupSeconds} s`);
      warmups.set(name, await load.run({ ...spec, phase: 'warmup', seconds: settings.warmupSeconds }));
    }
    log(`${entries.map((entry) => entry.name).join(' / ')}: measuring ${slices} interleaved slices of ${seconds / slices} s each`);
    const state = new Map<string, { result?: LoadResult; cpu?: CpuDelta; sliceRps: number[] }>();
    for (let slice = 0; slice < slices; slice++) {
      for (const { name, spec } of entries) {
        const entry = state.get(name) ?? { sliceRps: [] };
        state.set(name, entry);
        const processes = { ...pids, server: serverPid(name) };
        const before = snapshot(processes);
        const result = await load.run({ ...spec, phase: 'measure', seconds: seconds / slices, series: `${name}-${runTag}` });
        const after = snapshot(processes);
        // Cumulative answers: this slice is the difference to the previous one.
        const previous = entry.result;
        const responses = result.responses - (previous?.responses ?? 0);
        const sliceSeconds = result.seconds - (previous?.seconds ?? 0);
        entry.sliceRps.push(Math.round(responses / sliceSeconds));
        entry.result = result;
        entry.cpu = addCpu(entry.cpu, cpuDelta(before, after));
      }
    }
    return entries.map(({ name, spec }) => {
      const { result, cpu, sliceRps } = state.get(name)!;
      const report = reportOf(name, spec, result!, cpu!, warmups.get(name)!);
      reports.push(report);
      return { report, result: result!, sliceRps };
    });
  }

  // 1-2. The ceiling and GET of one hot document, interleaved: the hot GET's
  // ratio to the ceiling is the target that needs the most precision. The
  // ceiling is measured again at the end, to show the drift of the run.
  const pair: { name: ScenarioName; spec: Omit<LoadSpec, 'phase' | 'seconds'> }[] = [];
  if (selected('ceiling')) pair.push({ name: 'ceiling', spec: { ...base, scenario: 'ceiling', origin: ceilingOrigin } });
  if (selected('get-hot')) {
    const hotId = `hot-${runTag}`;
    // 1 KiB of JSON, exactly.
    const body = Buffer.from(`{"hot":true,"pad":"${'x'.repeat(1024 - '{"hot":true,"pad":""}'.length)}"}`);
    const put = await fetch(`${apiOrigin}/documents/${hotId}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
    if (put.status !== 201) throw new Error(`PUT of the hot document answered ${put.status}: ${await put.text()}`);
    for (let i = 0; i < 2; i++) await (await fetch(`${apiOrigin}/documents/${hotId}`)).arrayBuffer();
    pair.push({ name: 'get-hot', spec: { ...base, scenario: 'get-hot', origin: apiOrigin, hotId } });
  }
  let pairedRatio: { ratio: number; slices: number[] } | undefined;
  if (pair.length) {
    const measuredPair = await interleaved(pair, INTERLEAVED_SLICES, settings.seconds);
    const hot = measuredPair.find((entry) => entry.report.name === 'get-hot');
    const ceilingEntry = measuredPair.find((entry) => entry.report.name === 'ceiling');
    if (hot) hot.report.cache = cacheFigures(hot.result);
    if (hot && ceilingEntry) {
      pairedRatio = {
        ratio: Math.round((hot.report.requestsPerSecond! / ceilingEntry.report.requestsPerSecond!) * 1000) / 1000,
        slices: hot.sliceRps.map((value, i) => Math.round((value / ceilingEntry.sliceRps[i]!) * 1000) / 1000),
      };
      hot.report.notes.push(`ratio per slice ${pairedRatio.slices.join(', ')}`);
    }
    for (const entry of measuredPair) entry.report.notes.unshift(`req/s per slice ${entry.sliceRps.join(', ')}`);
  }

  // 3. POST /documents small, each with its own Idempotency-Key. Its
  // documents, never read yet, are the pool of get-cold.
  const coldPool: string[] = [];
  if (selected('post-documents-small')) {
    const { result, warmup } = await measured('post-documents-small', { ...base, scenario: 'post-documents-small', origin: apiOrigin });
    coldPool.push(...warmup.createdIds, ...result.createdIds);
  }

  // 4. GET with the cache cold: every id read once, after its Redis key (if
  // any) is deleted. An in-process cache filled on write would turn reads
  // into hits: Cache-Status is counted, and the latency of misses only is kept.
  if (selected('get-cold')) {
    const redis = new Redis(stack.env.REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      const topUp = async (count: number) => {
        log(`get-cold: creating ${count} more never-read documents with PUT`);
        const created = await load.run({
          ...base,
          scenario: 'put-documents',
          phase: 'prepare',
          origin: apiOrigin,
          seconds: 30,
          count,
          idPrefix: `cold-${runTag}`,
        });
        log(`get-cold: ${created.createdIds.length} created in ${created.seconds} s (${rps(created)} req/s, ${created.non2xx} non-2xx)`);
        return created.createdIds;
      };
      // The warm-up reads at most this many (it ends early when they are used up).
      const warmupPool = 6000;
      if (coldPool.length < warmupPool) coldPool.push(...(await topUp(warmupPool - coldPool.length)));
      await evict(redis, coldPool);
      let measuredIds: string[] = [];
      const { report, result, warmup } = await measured(
        'get-cold',
        { ...base, scenario: 'get-cold', origin: apiOrigin },
        {
          seconds: settings.coldSeconds,
          warmup: { ids: coldPool.slice(0, warmupPool) },
          before: async (warm) => {
            const remaining = coldPool.slice(warm.idsSent);
            // Enough ids for the whole measured window at the warm-up's pace,
            // with a margin: the warm-up runs slower than the measured window.
            const wanted = Math.ceil((rps(warm) || 1000) * settings.coldSeconds * 1.5);
            if (remaining.length < wanted) {
              const created = await topUp(Math.min(wanted - remaining.length, 100_000));
              await evict(redis, created);
              remaining.push(...created);
            }
            measuredIds = remaining.slice(0, wanted);
            return { ids: measuredIds };
          },
        },
      );
      report.cache = cacheFigures(result);
      report.missLatencyMs = result.missLatency!;
      report.warmup = { ...summarize(warmup) };
      if (result.idsSent >= measuredIds.length && result.seconds < settings.coldSeconds * 0.9) {
        report.notes.push(`pool of ${measuredIds.length} ids ran out after ${result.seconds} s`);
      }
      if ((report.cache.missRatio ?? 0) < 0.99) {
        report.notes.push(`only ${Math.round((report.cache.missRatio ?? 0) * 100)}% misses: not a cold-cache figure (see cache counts)`);
      }
    } finally {
      redis.disconnect();
    }
  }

  // 5-6. Orders, if the route exists yet.
  const ordersWanted = selected('post-orders') || selected('orders-burst');
  let ordersMissing: string | undefined;
  if (ordersWanted) {
    const probe = await fetch(`${apiOrigin}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'CUST-99999999', items: [{ sku: 'SKU-PROBE', quantity: 1 }] }),
    });
    const text = await probe.text();
    if (probe.status !== 201) ordersMissing = `POST /orders answered ${probe.status} to a valid order: ${text.slice(0, 200)}`;
  }
  if (selected('post-orders')) {
    if (ordersMissing) reports.push({ name: 'post-orders', measures: measuresOf('post-orders'), skipped: ordersMissing, notes: [] });
    else await measured('post-orders', { ...base, scenario: 'post-orders', origin: apiOrigin });
  }
  if (selected('orders-burst')) {
    if (ordersMissing) reports.push({ name: 'orders-burst', measures: measuresOf('orders-burst'), skipped: ordersMissing, notes: [] });
    else {
      const spec = {
        ...base,
        scenario: 'orders-burst' as const,
        origin: apiOrigin,
        connections: settings.burstConnections,
        rate: settings.burstRate,
        waves: settings.burstWaves,
      };
      const { report, result } = await measured('orders-burst', spec, { seconds: settings.burstSeconds });
      report.targetRate = result.targetRate!;
      if (report.requestsPerSecond! < result.targetRate! * 0.97) {
        report.notes.push(`fell behind: ${report.requestsPerSecond} of ${result.targetRate} req/s`);
      }
    }
  }

  // 7. The ceiling again, to see the machine's drift during the run.
  if (selected('ceiling')) {
    await measured('ceiling-end', { ...base, scenario: 'ceiling', origin: ceilingOrigin }, { warmup: { seconds: 1 } });
  }

  // Ratios to the mean ceiling of this run.
  const ceilings = reports.filter((report) => report.name.startsWith('ceiling') && report.requestsPerSecond);
  const ceilingRps = ceilings.length ? ceilings.reduce((sum, report) => sum + report.requestsPerSecond!, 0) / ceilings.length : null;
  for (const report of reports) {
    if (report.requestsPerSecond !== undefined) {
      report.ratioToCeiling = ceilingRps ? Math.round((report.requestsPerSecond / ceilingRps) * 1000) / 1000 : null;
    }
  }
  // get-hot: to the ceiling measured in the slices between its own.
  const hotReport = reports.find((report) => report.name === 'get-hot');
  if (hotReport && pairedRatio) {
    hotReport.ratioToCeiling = pairedRatio.ratio;
    hotReport.ratioToCeilingPerSlice = pairedRatio.slices;
  }

  const ceilingSummary = {
    start: ceilings.find((report) => report.name === 'ceiling')?.requestsPerSecond ?? null,
    end: ceilings.find((report) => report.name === 'ceiling-end')?.requestsPerSecond ?? null,
    mean: ceilingRps === null ? null : Math.round(ceilingRps),
    /** (end - start) / mean: how much the machine changed under the run (other work on it). */
    drift: null as number | null,
  };
  if (ceilingSummary.start && ceilingSummary.end && ceilingRps) {
    ceilingSummary.drift = Math.round(((ceilingSummary.end - ceilingSummary.start) / ceilingRps) * 1000) / 1000;
  }

  const targets = checkTargets(reports, settings.burstRate);
  const finishedAt = new Date();
  const output = {
    date: startedAt.toISOString(),
    revision: revision(),
    durationSeconds: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
    machine: {
      cores: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      loadAverageAtStart: loadavg().map((value) => Math.round(value * 100) / 100),
    },
    settings: {
      warmupSeconds: settings.warmupSeconds,
      seconds: settings.seconds,
      coldSeconds: settings.coldSeconds,
      connections: settings.connections,
      burst: { rate: settings.burstRate, seconds: settings.burstSeconds, waves: settings.burstWaves, connections: settings.burstConnections },
      only: settings.only,
      api: `node ${settings.apiEntry}, NODE_ENV=production, LOG_LEVEL=warn, AUTH_MODE=none, one process`,
      clockTicksPerSecond: clockTicks,
    },
    ceiling: ceilingSummary,
    scenarios: reports,
    targets,
    apiLog: {
      lines: apiLog.lines,
      messages: Object.fromEntries([...apiLog.messages].slice(0, 20)),
      examples: Object.fromEntries([...apiLog.examples].slice(0, 20)),
    },
  };

  printTable(ceilingSummary, reports, targets);
  if (apiLog.lines > 0) {
    console.log(`\nAPI log (warn and above): ${apiLog.lines} lines`);
    for (const [message, count] of [...apiLog.messages].slice(0, 10)) {
      console.log(`  ${count} × ${message}\n      first: ${apiLog.examples.get(message)?.slice(0, 400)}`);
    }
  }

  // Any setting that changes what is measured makes this run no reference.
  const neutral = ['BENCH_OUTPUT', 'BENCH_API_ENTRY', 'BENCH_STRICT', 'BENCH_DEADLINE_S'];
  const partial = Object.keys(process.env).some((name) => name.startsWith('BENCH_') && !neutral.includes(name) && process.env[name] !== '');
  const path = partial && !process.env.BENCH_OUTPUT ? `${here}results/partial.tmp.json` : settings.output;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(output, null, 2)}\n`);
  console.log(`\nwritten to ${path.replace(root, '')}${partial ? ' (non-default settings: not the reference latest.json)' : ''}`);
  return targets.every((target) => target.met !== false);
}

/** The commit measured, and whether the working tree differed from it (read-only git). */
function revision(): { commit: string | null; dirty: boolean | null } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    // `git diff --quiet` exits 1 when the files differ (and, unlike `git status`, never rewrites the index).
    let dirty = false;
    try {
      execFileSync('git', ['diff', '--quiet', 'HEAD', '--', 'src', 'package.json', 'package-lock.json'], { cwd: root, stdio: 'ignore' });
    } catch {
      dirty = true;
    }
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

function cacheFigures(result: LoadResult) {
  const total = result.cacheHits + result.cacheMisses;
  return { hits: result.cacheHits, misses: result.cacheMisses, missRatio: total ? Math.round((result.cacheMisses / total) * 1000) / 1000 : null };
}

/** Deletes every Redis key naming one of these ids (whatever the key layout: `doc:tenant:id`, …). */
async function evict(redis: Redis, ids: string[]) {
  if (ids.length === 0) return;
  const wanted = new Set(ids);
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    const doomed = keys.filter((key) => key.split(/[:#{}]/).some((part) => wanted.has(part)));
    if (doomed.length) deleted += await redis.del(...doomed);
  } while (cursor !== '0');
  if (deleted) log(`get-cold: deleted ${deleted} Redis keys of pool documents`);
}

// ------------------------------------------------------------------- targets

type Target = { scenario: string; target: string; measured: string; met: boolean | null };

function checkTargets(reports: ScenarioReport[], burstRate: number): Target[] {
  const find = (name: string) => reports.find((report) => report.name === name && !report.skipped && report.latencyMs);
  const targets: Target[] = [];
  const add = (scenario: string, target: string, measured: string | undefined, met: boolean | undefined) =>
    targets.push({ scenario, target, measured: measured ?? 'not measured', met: measured === undefined ? null : (met ?? null) });

  const hot = find('get-hot');
  add('get-hot', '≥ 0.75 × ceiling req/s', hot?.ratioToCeiling != null ? `${hot.ratioToCeiling}` : undefined, (hot?.ratioToCeiling ?? 0) >= 0.75);
  add('get-hot', 'p99 ≤ 10 ms', hot && `${hot.latencyMs!.p99} ms`, hot && hot.latencyMs!.p99 <= 10);
  add('get-hot', 'zero errors and non-2xx', hot && `${hot.errors} errors, ${hot.non2xx} non-2xx`, hot && hot.errors === 0 && hot.non2xx === 0);

  const orders = find('post-orders');
  add('post-orders', '≤ 1.5 ms API CPU per order', orders?.cpu?.serverMsPerOk != null ? `${orders.cpu.serverMsPerOk} ms` : undefined, (orders?.cpu?.serverMsPerOk ?? Infinity) <= 1.5);
  add('post-orders', 'zero non-2xx', orders && `${orders.errors} errors, ${orders.non2xx} non-2xx`, orders && orders.errors === 0 && orders.non2xx === 0);

  const burst = find('orders-burst');
  add('orders-burst', `p95 ≤ 300 ms at ${burstRate} req/s`, burst && `${burst.latencyMs!.p95} ms at ${burst.requestsPerSecond} req/s`, burst && burst.latencyMs!.p95 <= 300 && burst.requestsPerSecond! >= (burst.targetRate ?? burstRate) * 0.97);
  add('orders-burst', 'zero non-2xx', burst && `${burst.errors} errors, ${burst.non2xx} non-2xx`, burst && burst.errors === 0 && burst.non2xx === 0);

  const documents = find('post-documents-small');
  add('post-documents-small', '≤ 2 ms API CPU per document', documents?.cpu?.serverMsPerOk != null ? `${documents.cpu.serverMsPerOk} ms` : undefined, (documents?.cpu?.serverMsPerOk ?? Infinity) <= 2);
  return targets;
}

// --------------------------------------------------------------------- table

function printTable(
  ceiling: { start: number | null; end: number | null; mean: number | null; drift: number | null },
  reports: ScenarioReport[],
  targets: Target[],
) {
  const header = ['scenario', 'req/s', '× ceil', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'non-2xx', 'CPU ms/req', 'cores', 'stack cores', 'other cores', 'notes'];
  const rows = reports.map((report) => {
    if (report.skipped) return [report.name, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', `skipped: ${report.skipped.slice(0, 80)}`];
    const notes = [...report.notes];
    if (report.cache) notes.unshift(`cache ${report.cache.hits} hit / ${report.cache.misses} miss`);
    if (report.missLatencyMs?.count) notes.push(`misses p50/p95/p99 ${report.missLatencyMs.p50}/${report.missLatencyMs.p95}/${report.missLatencyMs.p99} ms`);
    if (report.targetRate) notes.push(`target ${report.targetRate} req/s`);
    return [
      report.name,
      String(report.requestsPerSecond),
      report.ratioToCeiling == null ? '-' : report.ratioToCeiling.toFixed(3),
      report.latencyMs!.p50.toFixed(2),
      report.latencyMs!.p95.toFixed(2),
      report.latencyMs!.p99.toFixed(2),
      String(report.errors),
      String(report.non2xx),
      report.cpu?.serverMsPerOk == null ? '-' : report.cpu.serverMsPerOk.toFixed(3),
      String(report.cpu?.serverCores ?? '-'),
      String(report.cpu?.stackCores ?? '-'),
      String(report.cpu?.otherBusyCores ?? '-'),
      notes.join('; '),
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) =>
    cells.map((cell, column) => (column === 0 || column === cells.length - 1 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  console.log(
    `\nceiling: ${ceiling.mean ?? '-'} req/s (start ${ceiling.start ?? '-'}, end ${ceiling.end ?? '-'}` +
      `${ceiling.drift === null ? '' : `, drift ${(ceiling.drift * 100).toFixed(1)}%`}); ratios are to the mean`,
  );
  if (ceiling.drift !== null && Math.abs(ceiling.drift) > 0.15) {
    console.log('warning: the ceiling moved more than 15% during the run (other work on the machine): ratios are uncertain, re-run when it is quieter');
  }
  console.log('');
  console.log(line(header));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of rows) console.log(line(row));
  console.log('\ntargets (issue 5):');
  for (const target of targets) {
    const verdict = target.met === null ? 'n/a ' : target.met ? 'MET ' : 'MISS';
    console.log(`  ${verdict}  ${target.scenario.padEnd(21)} ${target.target.padEnd(32)} ${target.measured}`);
  }
}

// ---------------------------------------------------------------------- run

let exitCode = 1;
try {
  const met = await main();
  exitCode = met || !settings.strict ? 0 : 2;
} catch (error) {
  // After Ctrl-C the run fails on its killed children: nothing to report.
  if (!interrupted) console.error('[bench] failed:', error);
} finally {
  await cleanup();
}
process.exit(exitCode);
