import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { clockTicks, cpuFigures, type CpuDelta, type CpuFigures } from './cpu.ts';
import type { LoadResult, Percentiles } from './load.ts';
import type { ApiLog } from './processes.ts';
import type { LoadSpec, ScenarioName } from './scenarios.ts';
import { here, isPartialRun, root, settings } from './settings.ts';

// What a run reports: one row per scenario, the targets of issue 5, the
// printed table and bench/results/latest.json (whose layout other tools
// read: docs/capacity.md is computed from it).

/** Above this many busy cores of other work, a row is marked noisy. */
const NOISY_CORES = 0.5;

export type ScenarioReport = {
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
  /**
   * The process under test's CPU per 2xx answer ÷ the ceiling's CPU per request, same run (issue 21): what
   * a request costs relative to the least a Node HTTP process spends on one, which holds across machines
   * and days where milliseconds do not. From unrounded figures (the ceiling's is about 0.01 ms).
   */
  cpuMultipleOfCeiling?: number | null;
  targetRate?: number;
  cache?: { hits: number; misses: number; missRatio: number | null };
  /**
   * DynamoDB calls per 2xx answer in the measured window, by operation, as the emulator counted them:
   * of every process using it (the API measured, and what other processes of the run do meanwhile).
   */
  dynamodbCallsPerOk?: Record<string, number>;
  missLatencyMs?: Percentiles;
  /** list-documents: the documents its walks cover, pages of how many, and what the measured window listed. */
  listing?: { documents: number; pageSize: number; pagesPerWalk: number; pages: number; itemsPerPage: number };
  warmup?: { seconds: number; requestsPerSecond: number; non2xx: number; errors: number };
  /** transfer-64mb: MB/s through the API against the SDK alone, and memory with uploads at once. */
  transfer?: {
    upload: TransferFigures;
    download: TransferFigures;
    concurrent: { uploads: number; ok: number; peakRssMiB: number; MBps: number };
  };
  /** resumable-64mb: a resumable upload against a one-request one, and what completing one costs by its size. */
  resumable?: {
    oneRequest: { MBps: number; apiCpuMsPerMB: number };
    resumable: { MBps: number; apiCpuMsPerMB: number };
    /** The same document in a single append (tus-js-client's default), and its MB/s ÷ one-request MB/s. */
    oneAppend: { MBps: number; apiCpuMsPerMB: number; ratio: number };
    /** Resumable MB/s ÷ one-request MB/s. */
    ratio: number;
    /** One-request CPU per MB ÷ resumable CPU per MB: below 1, the resumable upload costs more CPU. */
    cpuRatio: number;
    /** The API's CPU of the append that completes an upload, net of what the idle API spends meanwhile (raw: with it). */
    completion: {
      small: { bytes: number; cpuMs: number; rawCpuMs: number; idleCpuMs: number };
      large: { bytes: number; cpuMs: number; rawCpuMs: number; idleCpuMs: number };
      /** The idle API's CPU rate on a quiet emulator: taken off the small completion. */
      idleMsPerSecond: number;
      /** The same while the SDK alone completes an upload of the large one's parts, a round each: taken off the large completion. */
      idleMsPerSecondWhileEmulatorCompletes?: number[];
      ratio: number;
    };
  };
  notes: string[];
};

export type TransferFigures = { MBps: number; ceilingMBps: number; ratio: number; apiCpuMsPerMB: number };

export const rps = (result: LoadResult) => Math.round((result.responses / Math.max(result.seconds, 0.001)) * 10) / 10;

export function summarize(result: LoadResult) {
  return { seconds: result.seconds, requestsPerSecond: rps(result), non2xx: result.non2xx, errors: result.errors };
}

/** Calls per 2xx answer, by operation, to two decimals (a row without answers has none). */
export function dynamodbPerOk(calls: Record<string, number>, ok: number): Record<string, number> | undefined {
  if (ok === 0) return undefined;
  return Object.fromEntries(Object.entries(calls).sort(([a], [b]) => a.localeCompare(b)).map(([operation, count]) => [operation, Math.round((count / ok) * 100) / 100]));
}

export function cacheFigures(result: LoadResult) {
  const total = result.cacheHits + result.cacheMisses;
  return { hits: result.cacheHits, misses: result.cacheMisses, missRatio: total ? Math.round((result.cacheMisses / total) * 1000) / 1000 : null };
}

/** Each row's server CPU per 2xx answer unrounded, for the multiples of the ceiling (the JSON keeps it rounded). */
const exactServerMsPerOk = new WeakMap<ScenarioReport, { serverMs: number; ok: number }>();

/** The row of one measured scenario; its scenario function adds what is particular to it. */
export function reportOf(
  name: ScenarioReport['name'],
  measures: string,
  spec: Pick<LoadSpec, 'connections'>,
  result: LoadResult,
  cpu: CpuDelta,
  warmup: LoadResult,
): ScenarioReport {
  const report: ScenarioReport = {
    name,
    measures,
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
  exactServerMsPerOk.set(report, { serverMs: cpu.server, ok: result.ok });
  if (report.cpu!.otherBusyCores > NOISY_CORES) {
    report.notes.push(`noisy: other work on the machine took ${report.cpu!.otherBusyCores} cores`);
  }
  return report;
}

// ------------------------------------------------------------------ ceiling

export type CeilingSummary = {
  start: number | null;
  end: number | null;
  mean: number | null;
  drift: number | null;
  /** The ceiling server's CPU per request over all ceiling rows (ms, 6 decimals): the unit of every cpuMultipleOfCeiling. */
  cpuMsPerRequest: number | null;
};

/**
 * Every row's ratio to the mean ceiling of this run; get-hot's and
 * ceiling-same-response's to the ceiling measured in the slices between
 * their own, when there was one.
 */
export function applyCeilingRatios(reports: ScenarioReport[], interleaved: ReadonlyMap<string, { ratio: number; slices: number[] }>): CeilingSummary {
  // ceiling-same-response is a reference row, not the ceiling.
  const ceilings = reports.filter((report) => (report.name === 'ceiling' || report.name === 'ceiling-end') && report.requestsPerSecond);
  const ceilingRps = ceilings.length ? ceilings.reduce((sum, report) => sum + report.requestsPerSecond!, 0) / ceilings.length : null;
  for (const report of reports) {
    if (report.requestsPerSecond !== undefined) {
      report.ratioToCeiling = ceilingRps ? Math.round((report.requestsPerSecond / ceilingRps) * 1000) / 1000 : null;
    }
  }
  // The ceiling's CPU per request pooled over its rows (the interleaved one and ceiling-end), unrounded.
  let ceilingCpu = { serverMs: 0, ok: 0 };
  for (const report of ceilings) {
    const exact = exactServerMsPerOk.get(report);
    if (exact) ceilingCpu = { serverMs: ceilingCpu.serverMs + exact.serverMs, ok: ceilingCpu.ok + exact.ok };
  }
  const ceilingMsPerRequest = ceilingCpu.ok > 0 && ceilingCpu.serverMs > 0 ? ceilingCpu.serverMs / ceilingCpu.ok : null;
  for (const report of reports) {
    const exact = exactServerMsPerOk.get(report);
    if (!exact || report.name === 'ceiling' || report.name === 'ceiling-end') continue;
    report.cpuMultipleOfCeiling = ceilingMsPerRequest && exact.ok > 0 ? Math.round((exact.serverMs / exact.ok / ceilingMsPerRequest) * 10) / 10 : null;
  }
  for (const report of reports) {
    const ratio = interleaved.get(report.name);
    if (ratio) {
      report.ratioToCeiling = ratio.ratio;
      report.ratioToCeilingPerSlice = ratio.slices;
    }
  }

  const summary: CeilingSummary = {
    start: ceilings.find((report) => report.name === 'ceiling')?.requestsPerSecond ?? null,
    end: ceilings.find((report) => report.name === 'ceiling-end')?.requestsPerSecond ?? null,
    mean: ceilingRps === null ? null : Math.round(ceilingRps),
    /** (end - start) / mean: how much the machine changed under the run (other work on it). */
    drift: null,
    cpuMsPerRequest: ceilingMsPerRequest === null ? null : Math.round(ceilingMsPerRequest * 1e6) / 1e6,
  };
  if (summary.start && summary.end && ceilingRps) {
    summary.drift = Math.round(((summary.end - summary.start) / ceilingRps) * 1000) / 1000;
  }
  return summary;
}

// ------------------------------------------------------------------ targets

export type Target = { scenario: string; target: string; measured: string; met: boolean | null };

export function checkTargets(reports: ScenarioReport[], burstRate: number): Target[] {
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
  add(
    'post-orders',
    '≤ 60 × the ceiling\'s CPU per request',
    orders?.cpuMultipleOfCeiling != null ? `${orders.cpuMultipleOfCeiling} ×` : undefined,
    (orders?.cpuMultipleOfCeiling ?? Infinity) <= 60,
  );
  add('post-orders', 'zero non-2xx', orders && `${orders.errors} errors, ${orders.non2xx} non-2xx`, orders && orders.errors === 0 && orders.non2xx === 0);

  const burst = find('orders-burst');
  add('orders-burst', `p95 ≤ 300 ms at ${burstRate} req/s`, burst && `${burst.latencyMs!.p95} ms at ${burst.requestsPerSecond} req/s`, burst && burst.latencyMs!.p95 <= 300 && burst.requestsPerSecond! >= (burst.targetRate ?? burstRate) * 0.97);
  add('orders-burst', 'zero non-2xx', burst && `${burst.errors} errors, ${burst.non2xx} non-2xx`, burst && burst.errors === 0 && burst.non2xx === 0);

  const transfer = reports.find((report) => report.name === 'transfer-64mb' && report.transfer)?.transfer;
  for (const direction of ['upload', 'download'] as const) {
    const figures = transfer?.[direction];
    add('transfer-64mb', `${direction} ≥ 0.8 × the SDK alone MB/s`, figures && `${figures.ratio} (${figures.MBps} of ${figures.ceilingMBps} MB/s)`, figures && figures.ratio >= 0.8);
  }
  const concurrent = transfer?.concurrent;
  add('transfer-64mb', `API peak RSS < 256 MiB, ${concurrent?.uploads ?? 10} uploads at once`, concurrent && `${concurrent.peakRssMiB} MiB, ${concurrent.ok} of ${concurrent.uploads} stored`, concurrent && concurrent.peakRssMiB < 256 && concurrent.ok === concurrent.uploads);

  const resumable = reports.find((report) => report.name === 'resumable-64mb' && report.resumable)?.resumable;
  add('resumable-64mb', 'resumable ≥ 0.9 × one-request MB/s', resumable && `${resumable.ratio} (${resumable.resumable.MBps} of ${resumable.oneRequest.MBps} MB/s)`, resumable && resumable.ratio >= 0.9);
  add(
    'resumable-64mb',
    'resumable ≥ 0.9 × one-request in API CPU per MB',
    resumable && `${resumable.cpuRatio} (${resumable.resumable.apiCpuMsPerMB} against ${resumable.oneRequest.apiCpuMsPerMB} ms/MB)`,
    resumable && resumable.cpuRatio >= 0.9,
  );
  // "The same CPU": within a quarter, or one clock tick of the measurement, whichever is more.
  add(
    'resumable-64mb',
    'completing 1026 MiB costs what completing 1 MiB does',
    resumable && `${resumable.completion.large.cpuMs} against ${resumable.completion.small.cpuMs} ms`,
    resumable && resumable.completion.large.cpuMs <= Math.max(resumable.completion.small.cpuMs * 1.25, resumable.completion.small.cpuMs + 10),
  );

  const documents = find('post-documents-small');
  add('post-documents-small', '≤ 2 ms API CPU per document', documents?.cpu?.serverMsPerOk != null ? `${documents.cpu.serverMsPerOk} ms` : undefined, (documents?.cpu?.serverMsPerOk ?? Infinity) <= 2);
  return targets;
}

// -------------------------------------------------------------------- table

export function printTable(ceiling: CeilingSummary, reports: ScenarioReport[], targets: Target[]) {
  const header = ['scenario', 'req/s', '× ceil', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'non-2xx', 'CPU ms/req', 'CPU × ceil', 'cores', 'stack cores', 'other cores', 'notes'];
  const rows = reports.filter((report) => !report.transfer && !report.resumable).map((report) => {
    if (report.skipped) return [report.name, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', `skipped: ${report.skipped.slice(0, 80)}`];
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
      report.cpuMultipleOfCeiling == null ? '-' : report.cpuMultipleOfCeiling.toFixed(1),
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
      `${ceiling.drift === null ? '' : `, drift ${(ceiling.drift * 100).toFixed(1)}%`}); ratios are to the mean` +
      `${ceiling.cpuMsPerRequest === null ? '' : `; its CPU per request ${ceiling.cpuMsPerRequest} ms, the unit of "CPU × ceil"`}`,
  );
  if (ceiling.drift !== null && Math.abs(ceiling.drift) > 0.15) {
    console.log('warning: the ceiling moved more than 15% during the run (other work on the machine): ratios are uncertain, re-run when it is quieter');
  }
  console.log('');
  console.log(line(header));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of rows) console.log(line(row));
  for (const report of reports) {
    const transfer = report.transfer;
    if (!transfer) continue;
    console.log(`\n${report.name}: MB/s through the API (× the SDK alone with the same emulator), API CPU ms per MB`);
    for (const direction of ['upload', 'download'] as const) {
      const figures = transfer[direction];
      console.log(`  ${direction.padEnd(9)} ${String(figures.MBps).padStart(7)} MB/s  (${figures.ratio} × ${figures.ceilingMBps})  ${figures.apiCpuMsPerMB} ms/MB`);
    }
    const { uploads, ok, peakRssMiB, MBps } = transfer.concurrent;
    console.log(`  ${uploads} uploads at once: ${ok} stored, ${MBps} MB/s in all, API peak RSS ${peakRssMiB} MiB`);
    for (const note of report.notes) console.log(`  note: ${note}`);
  }
  for (const report of reports) {
    const resumable = report.resumable;
    if (!resumable) continue;
    console.log(`\n${report.name}: MB/s and API CPU ms per MB of a 64 MiB document`);
    console.log(`  one PUT     ${String(resumable.oneRequest.MBps).padStart(7)} MB/s  ${resumable.oneRequest.apiCpuMsPerMB} ms/MB`);
    console.log(`  resumable   ${String(resumable.resumable.MBps).padStart(7)} MB/s  ${resumable.resumable.apiCpuMsPerMB} ms/MB  (${resumable.ratio} × the MB/s, ${resumable.cpuRatio} × the CPU efficiency), in 8 MiB appends`);
    console.log(`  one append  ${String(resumable.oneAppend.MBps).padStart(7)} MB/s  ${resumable.oneAppend.apiCpuMsPerMB} ms/MB  (${resumable.oneAppend.ratio} × the MB/s), the whole document in one append`);
    const { small, large } = resumable.completion;
    console.log(
      `  completing: ${small.cpuMs} ms of API CPU at ${small.bytes} bytes, ${large.cpuMs} ms at ${large.bytes} bytes ` +
        `(net of the idle API's ${resumable.completion.idleMsPerSecond} ms/s: ${small.idleCpuMs} ms, ` +
        `and of its ${resumable.completion.idleMsPerSecondWhileEmulatorCompletes?.join(', ') ?? '?'} ms/s while the emulator completed the same parts: ${large.idleCpuMs} ms)`,
    );
    for (const note of report.notes) console.log(`  note: ${note}`);
  }
  console.log('\ntargets (issues 5 and 9):');
  for (const target of targets) {
    const verdict = target.met === null ? 'n/a ' : target.met ? 'MET ' : 'MISS';
    console.log(`  ${verdict}  ${target.scenario.padEnd(21)} ${target.target.padEnd(32)} ${target.measured}`);
  }
}

export function printApiLog(apiLog: ApiLog) {
  if (apiLog.lines === 0) return;
  console.log(`\nAPI log (warn and above): ${apiLog.lines} lines`);
  for (const [message, count] of [...apiLog.messages].slice(0, 10)) {
    console.log(`  ${count} × ${message}\n      first: ${apiLog.examples.get(message)?.slice(0, 400)}`);
  }
}

// ----------------------------------------------------------- results file

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

export type RunRecord = {
  startedAt: Date;
  finishedAt: Date;
  /** The scenario names that were selected (empty: all). */
  only: string[];
  ceiling: CeilingSummary;
  reports: ScenarioReport[];
  targets: Target[];
  apiLog: ApiLog;
};

/** Writes results/latest.json, or results/partial.tmp.json for a run with non-default settings. */
export function writeResults(run: RunRecord) {
  const output = {
    date: run.startedAt.toISOString(),
    revision: revision(),
    durationSeconds: Math.round((run.finishedAt.getTime() - run.startedAt.getTime()) / 1000),
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
      only: run.only,
      api: `node ${settings.apiEntry}, NODE_ENV=production, LOG_LEVEL=warn, AUTH_MODE=none, one process`,
      clockTicksPerSecond: clockTicks,
    },
    ceiling: run.ceiling,
    scenarios: run.reports,
    targets: run.targets,
    apiLog: {
      lines: run.apiLog.lines,
      messages: Object.fromEntries([...run.apiLog.messages].slice(0, 20)),
      examples: Object.fromEntries([...run.apiLog.examples].slice(0, 20)),
    },
  };
  const partial = isPartialRun();
  const path = partial && !process.env.BENCH_OUTPUT ? `${here}results/partial.tmp.json` : settings.output;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(output, null, 2)}\n`);
  console.log(`\nwritten to ${path.replace(root, '')}${partial ? ' (non-default settings: not the reference latest.json)' : ''}`);
}
