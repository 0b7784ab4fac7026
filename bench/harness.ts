import { addCpu, cpuDelta, snapshot, type CpuDelta, type Pids } from './cpu.ts';
import type { LoadResult } from './load.ts';
import type { SliceProfiler } from './profiler.ts';
import type { LoadGenerator } from './processes.ts';
import { dynamodbPerOk, reportOf, type ScenarioReport } from './report.ts';
import { SCENARIOS, type LoadSpec, type ScenarioName } from './scenarios.ts';
import type { DynamoDbCalls, ExtraApi } from './service.ts';
import { log, settings } from './settings.ts';

// What every scenario function (bench/suite.ts) measures with: the running
// processes, a warm-up followed by a measured window with CPU read around
// it, and the rows measured so far.

export type PhaseSpec = Omit<LoadSpec, 'phase' | 'seconds'>;

export const measuresOf = (name: ScenarioReport['name']): string =>
  name === 'ceiling-end'
    ? `${measuresOf('ceiling')}, again at the end of the run`
    : SCENARIOS.find((scenario) => scenario.name === name)!.measures;

/** Where the large-transfer scenario finds the S3 emulator, and the service's multipart settings. */
export type TransferSetup = { s3Endpoint: string; bucket: string; partSize: number; partsInFlight: number };

export class Harness {
  readonly reports: ScenarioReport[] = [];
  /** Documents created and never read yet (post-documents-small): get-cold reads them first. */
  readonly coldPool: string[] = [];
  /** Ratios to the ceiling measured in the slices between their own (get-hot, ceiling-same-response), by row. */
  readonly interleavedRatios = new Map<string, { ratio: number; slices: number[] }>();

  readonly load: LoadGenerator;
  readonly apiOrigin: string;
  readonly ceilingOrigin: string;
  readonly redisUrl: string;
  /** Per-run tag, so keys and payloads never collide with an earlier run against the same stack. */
  readonly runTag: string;
  readonly transfers: TransferSetup;
  /** What every phase spec starts from. */
  readonly base: { connections: number; runTag: string };
  private readonly pids: { api: number; ceiling: number; redis: number | undefined };
  private ordersProbe: Promise<string | undefined> | undefined;
  /** Scenarios measured against another process than the API: whose CPU they count. */
  private readonly serverPids = new Map<string, number>();
  /** Starts another API process with these variables on top of the run's. */
  readonly startApi: (env: Record<string, string>, entry?: string, nodeArgs?: readonly string[]) => Promise<ExtraApi>;
  /** Starts a process that accepts OTLP/HTTP exports and discards them; its origin. */
  readonly startOtlpSink: () => Promise<string>;
  /** The DynamoDB calls the emulator answered so far, by operation. */
  readonly dynamodbCalls: () => DynamoDbCalls;
  /** BENCH_API_PROFILE: the profilers of the rows profiled over their measured slices (get-hot, ceiling-same-response). */
  private readonly profilers: ReadonlyMap<string, SliceProfiler>;

  constructor(run: {
    load: LoadGenerator;
    pids: { api: number; ceiling: number; redis: number | undefined };
    apiOrigin: string;
    ceilingOrigin: string;
    redisUrl: string;
    runTag: string;
    transfers: TransferSetup;
    startApi: (env: Record<string, string>, entry?: string, nodeArgs?: readonly string[]) => Promise<ExtraApi>;
    startOtlpSink: () => Promise<string>;
    dynamodbCalls: () => DynamoDbCalls;
    profilers?: ReadonlyMap<string, SliceProfiler>;
  }) {
    this.load = run.load;
    this.pids = run.pids;
    this.apiOrigin = run.apiOrigin;
    this.ceilingOrigin = run.ceilingOrigin;
    this.redisUrl = run.redisUrl;
    this.runTag = run.runTag;
    this.transfers = run.transfers;
    this.base = { connections: settings.connections, runTag: run.runTag };
    this.startApi = run.startApi;
    this.startOtlpSink = run.startOtlpSink;
    this.dynamodbCalls = run.dynamodbCalls;
    this.profilers = run.profilers ?? new Map();
  }

  /** Runs `work` with the API's and the machine's CPU read around it. */
  async withCpu<T>(work: () => Promise<T>): Promise<{ value: T; cpu: CpuDelta }> {
    const processes = this.processes('transfer');
    const before = snapshot(processes);
    const value = await work();
    return { value, cpu: cpuDelta(before, snapshot(processes)) };
  }

  /** The CPU of scenario `name` is that of process `pid` (an extra API). */
  measureAgainst(name: string, pid: number) {
    this.serverPids.set(name, pid);
  }

  private processes(name: string): Pids {
    const server = this.serverPids.get(name) ?? (name.startsWith('ceiling') ? this.pids.ceiling : this.pids.api);
    return { server, redis: this.pids.redis, load: this.load.pid };
  }

  skip(name: ScenarioName, reason: string) {
    this.reports.push({ name, measures: measuresOf(name), skipped: reason, notes: [] });
  }

  /** Warm-up, then the measured phase with CPU read around it. */
  async measured(
    name: ScenarioReport['name'],
    spec: PhaseSpec,
    options: { warmup?: Partial<LoadSpec>; seconds?: number; before?: (warmup: LoadResult) => Promise<Partial<LoadSpec>> } = {},
  ): Promise<{ report: ScenarioReport; result: LoadResult; warmup: LoadResult }> {
    const warmupSpec: LoadSpec = { ...spec, phase: 'warmup', seconds: settings.warmupSeconds, ...options.warmup };
    log(`${name}: warm-up ${warmupSpec.seconds} s`);
    const warmup = await this.load.run(warmupSpec);
    const extra = options.before ? await options.before(warmup) : {};
    const seconds = options.seconds ?? settings.seconds;
    log(`${name}: measuring ${seconds} s`);
    const processes = this.processes(name);
    const callsBefore = this.dynamodbCalls();
    const before = snapshot(processes);
    const result = await this.load.run({ ...spec, phase: 'measure', seconds, ...extra });
    const after = snapshot(processes);
    const report = reportOf(name, measuresOf(name), spec, result, cpuDelta(before, after), warmup);
    report.dynamodbCallsPerOk = dynamodbPerOk(addCalls({}, callsBefore, this.dynamodbCalls()), result.ok);
    this.reports.push(report);
    return { report, result, warmup };
  }

  /**
   * Scenarios measured in alternating slices (A B, B A, A B …) after their
   * warm-ups: work elsewhere on the machine, which comes and goes over tens
   * of seconds, then weighs on both alike, and their ratio holds.
   */
  async interleaved(entries: { name: ScenarioName; spec: PhaseSpec }[], slices: number, seconds: number) {
    const warmups = new Map<string, LoadResult>();
    for (const { name, spec } of entries) {
      log(`${name}: warm-up ${settings.warmupSeconds} s`);
      warmups.set(name, await this.load.run({ ...spec, phase: 'warmup', seconds: settings.warmupSeconds }));
    }
    log(`${entries.map((entry) => entry.name).join(' / ')}: measuring ${slices} interleaved slices of ${seconds / slices} s each`);
    const state = new Map<string, { result?: LoadResult; cpu?: CpuDelta; calls: DynamoDbCalls; sliceRps: number[] }>();
    for (let slice = 0; slice < slices; slice++) {
      // Every other slice in the reverse order (A B C, C B A, …), so that none always comes first or last.
      for (const { name, spec } of slice % 2 === 0 ? entries : [...entries].reverse()) {
        const entry = state.get(name) ?? { calls: {}, sliceRps: [] };
        state.set(name, entry);
        const processes = this.processes(name);
        const profiled = this.profilers.get(name);
        await profiled?.start();
        const callsBefore = this.dynamodbCalls();
        const before = snapshot(processes);
        const result = await this.load.run({ ...spec, phase: 'measure', seconds: seconds / slices, series: `${name}-${this.runTag}` });
        const after = snapshot(processes);
        await profiled?.stop(name);
        addCalls(entry.calls, callsBefore, this.dynamodbCalls());
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
      const { result, cpu, calls, sliceRps } = state.get(name)!;
      const report = reportOf(name, measuresOf(name), spec, result!, cpu!, warmups.get(name)!);
      report.dynamodbCallsPerOk = dynamodbPerOk(calls, result!.ok);
      this.reports.push(report);
      return { report, result: result!, sliceRps, warmup: warmups.get(name)! };
    });
  }

  /** Why the order scenarios cannot run (POST /orders refuses a valid order), or undefined; asked once. */
  ordersUnavailable(): Promise<string | undefined> {
    this.ordersProbe ??= (async () => {
      const probe = await fetch(`${this.apiOrigin}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ customerId: 'CUST-99999999', items: [{ sku: 'SKU-PROBE', quantity: 1 }] }),
      });
      const text = await probe.text();
      return probe.status === 201 ? undefined : `POST /orders answered ${probe.status} to a valid order: ${text.slice(0, 200)}`;
    })();
    return this.ordersProbe;
  }
}

/** Adds the calls made between two counts of the emulator to `sum`. */
function addCalls(sum: DynamoDbCalls, before: DynamoDbCalls, after: DynamoDbCalls): DynamoDbCalls {
  for (const [operation, count] of Object.entries(after)) {
    const made = count - (before[operation] ?? 0);
    if (made > 0) sum[operation] = (sum[operation] ?? 0) + made;
  }
  return sum;
}
