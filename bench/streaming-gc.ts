import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cpuMs } from './cpu.ts';
import { cleanup } from './processes.ts';
import { move, startApiProcess, startService } from './service.ts';
import { log, root, settings } from './settings.ts';

// What the V8 flags of src/processes/v8-flags.ts are worth to a download
// (bench/README.md, "Large documents: what the garbage collector costs a
// stream"): `node bench/streaming-gc.ts` (about 3 minutes; not part of
// `make bench`). For each variant, PROCESSES fresh API processes (the build
// of `make build`), each storing one 64 MiB document and then downloading
// it ROUNDS times; per download, the API's CPU per MB and the full
// collections it ran meanwhile (prom-client's
// nodejs_gc_duration_seconds{kind="major"}, read from /metrics around it).
// A flag given to the API on its command line wins over the one it sets as
// it starts, so a variant can undo one.

// VARIANTS='{"semi-space 4":["--max-semi-space-size=4"],"16":["--max-semi-space-size=16"]}' replaces them.
const VARIANTS: Record<string, string[]> = process.env.VARIANTS
  ? (JSON.parse(process.env.VARIANTS) as Record<string, string[]>)
  : {
      'as shipped': [],
      "V8's own heap growth": ['--heap-growing-percent=0'],
      'neither flag': ['--heap-growing-percent=0', '--scavenger-max-new-space-capacity-mb=32'],
    };
const PROCESSES = Number(process.env.PROCESSES ?? 4);
const ROUNDS = Number(process.env.ROUNDS ?? 4);
const IDLE_MS = 1500;
const SIZE = 64 * 1024 * 1024;
const MB = SIZE / 1e6;

async function majorCollections(origin: string): Promise<number> {
  const metrics = await (await fetch(`${origin}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  return Number(/^nodejs_gc_duration_seconds_count\{kind="major"\} (\d+)/m.exec(metrics)?.[1] ?? Number.NaN);
}

type Download = { cpuMsPerMB: number; majors: number };

async function oneProcess(serviceEnv: NodeJS.ProcessEnv, flags: string[]): Promise<Download[]> {
  const api = await startApiProcess(serviceEnv, flags);
  const { origin } = api;
  try {
    const id = `streaming-gc-${randomBytes(4).toString('hex')}`;
    if ((await move({ kind: 'upload', origin, ids: [id], size: SIZE })).ok !== 1) throw new Error('the upload failed');
    const downloads: Download[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Idle in between, as a server is between requests (and the API in `make bench` while the SDK
      // alone moves its bytes): V8 then schedules collections of its own, and sizes the heap anew.
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      const [cpuBefore, majorsBefore] = [cpuMs(api.pid), await majorCollections(origin)];
      if ((await move({ kind: 'download', origin, ids: [id], size: SIZE })).ok !== 1) throw new Error('a download failed');
      const cpu = cpuMs(api.pid) - cpuBefore;
      downloads.push({ cpuMsPerMB: Math.round((cpu / MB) * 10) / 10, majors: (await majorCollections(origin)) - majorsBefore });
    }
    return downloads;
  } finally {
    await api.stop();
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main() {
  if (!existsSync(`${root}${settings.apiEntry}`)) throw new Error(`${settings.apiEntry} is missing: run \`make build\``);
  const { serviceEnv } = await startService();

  const results: Record<string, Download[][]> = Object.fromEntries(Object.keys(VARIANTS).map((name) => [name, []]));
  // The variants in turn, process after process, so that the machine's drift falls on all of them.
  for (let i = 0; i < PROCESSES; i++) {
    for (const [name, flags] of Object.entries(VARIANTS)) {
      const downloads = await oneProcess(serviceEnv, flags);
      results[name]!.push(downloads);
      log(`${name}, process ${i + 1}: ${downloads.map((d) => `${d.cpuMsPerMB} ms/MB, ${d.majors} full`).join(' | ')}`);
    }
  }
  console.log(`\n${PROCESSES} processes per variant, ${ROUNDS} downloads of 64 MiB each; API CPU per MB, full collections per download`);
  for (const [name, processes] of Object.entries(results)) {
    const all = processes.flat();
    const withMajors = all.filter((d) => d.majors > 0).length;
    console.log(
      `  ${name.padEnd(22)} median ${median(all.map((d) => d.cpuMsPerMB))} ms/MB (${Math.min(...all.map((d) => d.cpuMsPerMB))}-${Math.max(...all.map((d) => d.cpuMsPerMB))}),` +
        ` ${withMajors} of ${all.length} downloads with full collections (${all.reduce((sum, d) => sum + d.majors, 0)} in all)`,
    );
  }
}

try {
  await main();
} finally {
  await cleanup();
}
