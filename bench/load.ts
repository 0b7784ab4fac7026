import autocannon, { type Options, type Result } from 'autocannon';
import { newPhaseState, requestsFor, type LoadSpec, type PhaseState } from './scenarios.ts';

// The load generator, a child process of bench/run.ts (IPC): it runs one
// phase at a time and answers its figures. Kept out of run.ts's process,
// whose event loop serves the DynamoDB and S3/SNS/SQS emulators: autocannon
// there would add its own work to every emulated AWS call's latency.

export type Percentiles = { count: number; mean: number; p50: number; p95: number; p99: number; max: number };

export type LoadResult = {
  scenario: LoadSpec['scenario'];
  phase: LoadSpec['phase'];
  /** Closed loop: from the first request to the last answer; fixed rate: the window of each wave. Seconds. */
  seconds: number;
  responses: number;
  ok: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  /** Connection errors and timeouts (autocannon's `errors`, which include `timeouts`). */
  errors: number;
  timeouts: number;
  /** Latency of 2xx answers, ms, exact (not autocannon's 1 ms-bucket histogram). */
  latency: Percentiles;
  /** get-cold: latency of the answers that were misses only. */
  missLatency?: Percentiles;
  cacheHits: number;
  cacheMisses: number;
  idsSent: number;
  createdIds: string[];
  /** list-documents: pages answered 200 and the items they held. */
  listedPages: number;
  listedItems: number;
  /** Fixed-rate phases: the rate asked for, after rounding to whole requests per wave. */
  targetRate?: number;
};

class Samples {
  private values = new Float64Array(1 << 16);
  private length = 0;

  add(value: number) {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }

  percentiles(): Percentiles {
    const sorted = this.values.subarray(0, this.length).sort();
    const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : 0);
    let sum = 0;
    for (const value of sorted) sum += value;
    const round = (value: number) => Math.round(value * 100) / 100;
    return {
      count: sorted.length,
      mean: round(sorted.length ? sum / sorted.length : 0),
      p50: round(at(0.5)),
      p95: round(at(0.95)),
      p99: round(at(0.99)),
      max: round(at(1)),
    };
  }
}

type Recorder = { all: Samples; misses: Samples; state: PhaseState; lastResponseAt: number };

/** What phases of one series add up. */
type Totals = {
  all: Samples;
  misses: Samples;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  seconds: number;
  cacheHits: number;
  cacheMisses: number;
};

const newTotals = (): Totals => ({
  all: new Samples(),
  misses: new Samples(),
  statusCodes: {},
  errors: 0,
  timeouts: 0,
  seconds: 0,
  cacheHits: 0,
  cacheMisses: 0,
});

const series = new Map<string, Totals>();

function runInstance(options: Options, recorder: Recorder, stopAfterMs: number): Promise<Result> {
  const instance = autocannon(options);
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    recorder.lastResponseAt = performance.now();
    if (statusCode < 200 || statusCode > 299) return;
    recorder.all.add(responseTime);
    // onResponse (scenarios.ts) ran synchronously just before this event, for this same answer.
    if (recorder.state.lastCacheStatus?.includes('fwd=miss')) recorder.misses.add(responseTime);
  });
  const timer = setTimeout(() => instance.stop(), stopAfterMs);
  return Promise.resolve(instance).finally(() => clearTimeout(timer));
}

async function runPhase(spec: LoadSpec): Promise<LoadResult> {
  const state = newPhaseState();
  let totals = newTotals();
  if (spec.series) {
    totals = series.get(spec.series) ?? totals;
    series.set(spec.series, totals);
  }
  const recorder: Recorder = { all: totals.all, misses: totals.misses, state, lastResponseAt: 0 };
  const requests = requestsFor(spec, state);
  const base: Options = {
    url: spec.origin,
    connections: spec.connections,
    duration: spec.seconds,
    timeout: 10,
    // autocannon notices the end of a run (duration, amount, stop()) only at
    // its next sample tick: 1 s by default, which would pad short runs.
    sampleInt: 100,
    requests,
  };
  if (spec.scenario === 'get-cold' || spec.scenario === 'get-warm') base.amount = Math.max(spec.ids?.length ?? 0, spec.connections);
  if (spec.scenario === 'put-documents') base.amount = Math.max(spec.count ?? 0, spec.connections);

  const started = performance.now();
  let results: Result[];
  let targetRate: number | undefined;
  if (spec.rate) {
    // autocannon's limiter lets each connection send its whole per-second
    // quota at the top of every second, all connections in step: one
    // instance is one wave per second. Instances started 1/waves s apart
    // spread the arrivals over the second. Its coordinated-omission
    // correction assumes an interval of ceil(1/rate) = 1 ms, which adds
    // made-up low samples, so it is off: falling behind shows up as an
    // achieved rate below the target instead.
    const waves = Math.max(1, spec.waves ?? 1);
    const perWave = Math.max(1, Math.round(spec.rate / waves));
    // Every connection needs a rate of at least 1/s: a 0 share means unlimited.
    const connections = Math.max(1, Math.min(perWave, Math.floor(spec.connections / waves)));
    targetRate = perWave * waves;
    results = await Promise.all(
      Array.from({ length: waves }, async (_, wave) => {
        await new Promise((resolve) => setTimeout(resolve, (wave * 1000) / waves));
        // Quotas go out at 0, 1, …, seconds-1 s; ending 0.2 s short of
        // `seconds` keeps a quota at `seconds` from slipping in before
        // autocannon notices the end. A quota not answered by then is lost,
        // which shows as an achieved rate below the target.
        return runInstance(
          { ...base, duration: spec.seconds - 0.2, connections, overallRate: perWave, ignoreCoordinatedOmission: true },
          recorder,
          spec.seconds * 1000 + 2000,
        );
      }),
    );
  } else {
    results = [await runInstance(base, recorder, spec.seconds * 1000)];
  }
  // Closed loop: first request to last answer. Fixed rate: each wave sends
  // for exactly `seconds`, staggered; a wave that falls behind answers less.
  const seconds = spec.rate ? spec.seconds : Math.max(recorder.lastResponseAt - started, 1) / 1000;

  const statusCodes = totals.statusCodes;
  for (const result of results) {
    totals.errors += result.errors;
    totals.timeouts += result.timeouts;
    for (const [code, { count }] of Object.entries(result.statusCodeStats)) {
      statusCodes[code] = (statusCodes[code] ?? 0) + Number(count);
    }
  }
  totals.seconds += seconds;
  totals.cacheHits += state.cacheHits;
  totals.cacheMisses += state.cacheMisses;
  const responses = Object.values(statusCodes).reduce((sum, count) => sum + count, 0);
  const ok = Object.entries(statusCodes)
    .filter(([code]) => code.startsWith('2'))
    .reduce((sum, [, count]) => sum + count, 0);
  return {
    scenario: spec.scenario,
    phase: spec.phase,
    seconds: Math.round(totals.seconds * 1000) / 1000,
    responses,
    ok,
    non2xx: responses - ok,
    statusCodes,
    errors: totals.errors,
    timeouts: totals.timeouts,
    latency: recorder.all.percentiles(),
    ...(spec.scenario === 'get-cold' ? { missLatency: recorder.misses.percentiles() } : {}),
    cacheHits: totals.cacheHits,
    cacheMisses: totals.cacheMisses,
    idsSent: state.idsSent,
    createdIds: state.createdIds,
    listedPages: state.listedPages,
    listedItems: state.listedItems,
    ...(targetRate ? { targetRate } : {}),
  };
}

export type LoadRequest = { id: number; spec: LoadSpec };
export type LoadAnswer = { id: number; result?: LoadResult; error?: string };

if (process.send) {
  process.on('message', (message: LoadRequest) => {
    runPhase(message.spec).then(
      (result) => process.send!({ id: message.id, result } satisfies LoadAnswer),
      (error: Error) => process.send!({ id: message.id, error: error.stack ?? String(error) } satisfies LoadAnswer),
    );
  });
  // The parent went away (crash, Ctrl-C): never outlive it.
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true });
}
