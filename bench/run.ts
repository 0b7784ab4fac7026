import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { freePort } from '../src/local/emulators.ts';
import { RUNTIME_FLAGS } from '../src/processes/v8-flags.ts';
import { Harness } from './harness.ts';
import { InspectorProfiler, type SliceProfiler } from './profiler.ts';
import { PerfProfiler } from './perf-profiler.ts';
import { cleanup, collectLog, installStopHandlers, isCleaningUp, LoadGenerator, startNode, waitForHttp, wasInterrupted } from './processes.ts';
import { applyCeilingRatios, checkTargets, printApiLog, printTable, writeResults } from './report.ts';
import { startApiProcess, startService } from './service.ts';
import { here, log, root, settings } from './settings.ts';
import { runScenarios, selectScenarios } from './suite.ts';

// `make bench`: the local stack in this process, the built API and a
// bare-Fastify ceiling server as child processes, autocannon in a third
// child; every selected scenario (suite.ts) warmed up, then measured, with
// the API process's CPU read from /proc (cpu.ts). Prints a table and writes
// bench/results/latest.json (report.ts).

async function main(): Promise<boolean> {
  const startedAt = new Date();
  const runTag = randomBytes(4).toString('hex');
  const selected = selectScenarios(settings.only);

  if (!existsSync(`${root}${settings.apiEntry}`)) throw new Error(`${settings.apiEntry} is missing: run \`make build\` (or \`make bench\`, which builds)`);

  const { config, serviceEnv, redisPid, dynamodbCalls } = await startService();
  const [apiPort, ceilingPort] = [await freePort(), await freePort()];
  // Profiled through the inspector, or by perf (JavaScript frames named through --perf-basic-prof).
  const inspector = settings.apiProfileDir !== undefined && !settings.apiProfilePerf;
  const perfMap = settings.apiProfilePerf ? ['--perf-basic-prof'] : [];
  const inspectPort = inspector ? await freePort() : undefined;
  const inspect = inspectPort ? [`--inspect=127.0.0.1:${inspectPort}`] : perfMap;
  const api = startNode([...RUNTIME_FLAGS, ...inspect, ...settings.apiNodeArgs, settings.apiEntry], { ...serviceEnv, PORT: String(apiPort) }, 'pipe');
  const apiLog = collectLog(api);
  const ceilingInspectPort = inspector ? await freePort() : undefined;
  const ceilingInspect = ceilingInspectPort ? [`--inspect=127.0.0.1:${ceilingInspectPort}`] : perfMap;
  const ceiling = startNode([...ceilingInspect, `${here}ceiling.ts`], { ...serviceEnv, PORT: String(ceilingPort) }, 'inherit');
  const loadChild = startNode([`${here}load.ts`], process.env, 'inherit');
  const loadReady = once(loadChild, 'message');
  const apiOrigin = `http://127.0.0.1:${apiPort}`;
  const ceilingOrigin = `http://127.0.0.1:${ceilingPort}`;
  const apiOutput = () => (apiLog.tail.length ? `\nits last output:\n  ${apiLog.tail.join('\n  ')}` : '');
  // The API dying mid-run ends the run at once, with its last words.
  const apiDied = new Promise<never>((_, reject) => {
    api.once('exit', (code, signal) => {
      if (!isCleaningUp()) reject(new Error(`the API exited (${signal ?? code}) during the run${apiOutput()}`));
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
  // The API over get-hot, and the ceiling's process over ceiling-same-response: the same bytes, the one with the service around them.
  const profilers = new Map<string, SliceProfiler>();
  if (settings.apiProfilePerf) {
    profilers.set('get-hot', new PerfProfiler(api.pid!, settings.apiProfileDir!));
    profilers.set('ceiling-same-response', new PerfProfiler(ceiling.pid!, settings.apiProfileDir!));
  }
  if (inspectPort) profilers.set('get-hot', await InspectorProfiler.connect(inspectPort, settings.apiProfileDir!, settings.apiProfileHeap));
  if (ceilingInspectPort) profilers.set('ceiling-same-response', await InspectorProfiler.connect(ceilingInspectPort, settings.apiProfileDir!, settings.apiProfileHeap));
  log(`API pid ${api.pid} on ${apiOrigin}, ceiling pid ${ceiling.pid}, load generator pid ${load.pid}, redis pid ${redisPid ?? '?'}`);

  const bench = new Harness({
    load,
    pids: { api: api.pid!, ceiling: ceiling.pid!, redis: redisPid },
    apiOrigin,
    ceilingOrigin,
    redisUrl: serviceEnv.REDIS_URL!,
    runTag,
    transfers: {
      s3Endpoint: serviceEnv.AWS_ENDPOINT_URL!,
      bucket: config.DOCUMENTS_BUCKET,
      partSize: config.S3_PART_SIZE_BYTES,
      partsInFlight: config.S3_PARTS_IN_FLIGHT,
    },
    startApi: (env, entry, nodeArgs) => startApiProcess(serviceEnv, nodeArgs ?? settings.apiNodeArgs, env, entry),
    dynamodbCalls,
    profilers,
    startOtlpSink: async () => {
      const port = await freePort();
      const sink = startNode([`${here}otlp-sink.ts`], { ...process.env, PORT: String(port) }, 'inherit');
      const origin = `http://127.0.0.1:${port}`;
      await waitForHttp('the OTLP sink', sink, `${origin}/`, 20_000);
      return origin;
    },
  });
  try {
    await runScenarios(bench, selected);
  } finally {
    for (const profiler of profilers.values()) profiler.close();
  }

  const ceilingSummary = applyCeilingRatios(bench.reports, bench.interleavedRatios);
  const targets = checkTargets(bench.reports, settings.burstRate);
  printTable(ceilingSummary, bench.reports, targets);
  printApiLog(apiLog);
  writeResults({
    startedAt,
    finishedAt: new Date(),
    only: settings.only.length ? [...selected] : [],
    ceiling: ceilingSummary,
    reports: bench.reports,
    targets,
    apiLog,
  });
  return targets.every((target) => target.met !== false);
}

installStopHandlers(settings.deadlineSeconds);
let exitCode = 1;
try {
  const met = await main();
  exitCode = met || !settings.strict ? 0 : 2;
} catch (error) {
  // After Ctrl-C the run fails on its killed children: nothing to report.
  if (!wasInterrupted()) console.error('[bench] failed:', error);
} finally {
  await cleanup();
}
process.exit(exitCode);
