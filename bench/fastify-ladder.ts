import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { cpuMs } from './cpu.ts';
import { cleanup, installStopHandlers, LoadGenerator, startNode } from './processes.ts';
import type { LoadSpec } from './scenarios.ts';
import { startApiProcess, startService } from './service.ts';
import { here, log, numberFromEnv, settings } from './settings.ts';

// `node bench/fastify-ladder.ts` (about 5 minutes, after `make build`; not
// part of `make bench`): how far below the ceiling bare Fastify falls when it
// answers get-hot's bytes with the things every request of a production
// service pays, added one at a time (bench/ladder-server.ts), up to the API
// itself on the local stack: the reference for issue 21's "get-hot ≥ 0.75 ×
// ceiling" (bench/README.md, "Fourth round"). Each rung, the ceiling (twice:
// two processes of the same code differ, and the second says by how much in
// this run) and the API in their own process, loaded by make bench's load
// generator in interleaved slices whose order alternates; req/s as a ratio
// to the first ceiling's, CPU per answer from /proc.

const ROUNDS = numberFromEnv('ROUNDS', 6);
const SLICE_SECONDS = numberFromEnv('SLICE_SECONDS', 2);
const CONNECTIONS = 50;

/** What each rung adds to the one before (bench/ladder-server.ts), in order. */
const STEPS = [
  'request id',
  'onRequest hook',
  'onResponse hook',
  // src/app.ts imported and not used: what loading the service's modules costs bare Fastify.
  'service modules',
  'logger',
  'param schema',
  // The service's own plumbing (src/app.ts), each in place of what stood in for it above.
  'server options',
  'conventions',
  'request deadline',
  'metrics',
  'load shedding',
  'read schema',
] as const;
export type Step = (typeof STEPS)[number];

type Row = { name: string; origin: string; path: string; pid: number; requests: number; seconds: number; cpuMs: number };

/** A rung with the first `step` STEPS, answering at its document's path (or at `/`, the ceiling's constant JSON). */
async function start(name: string, step: number, at: 'document' | 'root'): Promise<Row> {
  const child = startNode([`${here}ladder-server.ts`], { ...process.env, LADDER_STEPS: STEPS.slice(0, step).join(',') }, 'inherit');
  const [{ port, documentPath }] = (await once(child, 'message')) as [{ port: number; documentPath: string }];
  return { name, origin: `http://127.0.0.1:${port}`, path: at === 'root' ? '/' : documentPath, pid: child.pid!, requests: 0, seconds: 0, cpuMs: 0 };
}

/**
 * The service itself (the build's API on the local stack, as `make bench` runs it) answering a cached
 * 1 KiB document: get-hot, measured in the same slices as the rungs.
 */
async function startApi(documentPath: string): Promise<Row> {
  const { serviceEnv } = await startService();
  const api = await startApiProcess(serviceEnv, []);
  const url = `${api.origin}${documentPath}`;
  const create = () => fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(1024, 'x') });
  let put = await create();
  // A fresh API, its event loop still lagging from its start among the rungs', may shed it: retried, as make bench does.
  for (let retries = 10; put.status === 503 && retries > 0; retries--) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    put = await create();
  }
  if (put.status !== 201) throw new Error(`PUT of the hot document answered ${put.status}: ${await put.text()}`);
  // The second read is answered from process memory.
  for (let i = 0; i < 2; i++) await (await fetch(url)).arrayBuffer();
  return { name: `the API (${settings.apiEntry})`, origin: api.origin, path: documentPath, pid: api.pid, requests: 0, seconds: 0, cpuMs: 0 };
}

/**
 * The load generator of `make bench` (bench/load.ts, a process of its own), sending what its ceiling
 * and get-hot rows send: the ratios depend on what the load generator costs, which must then be the same.
 */
async function loadGenerator(): Promise<(row: Row, phase: LoadSpec['phase'], seconds: number) => Promise<{ ok: number; seconds: number }>> {
  const child = startNode([`${here}load.ts`], process.env, 'inherit');
  await once(child, 'message');
  const generator = new LoadGenerator(child, new Promise<never>(() => {}));
  const runTag = randomBytes(4).toString('hex');
  return async (row, phase, seconds) => {
    const hotId = row.path.slice('/documents/'.length);
    const scenario = row.path === '/' ? 'ceiling' : 'get-hot';
    const result = await generator.run({ scenario, phase, origin: row.origin, seconds, connections: CONNECTIONS, runTag, ...(hotId ? { hotId } : {}) });
    if (result.errors > 0 || result.non2xx > 0) throw new Error(`${row.name}: ${result.errors} errors, ${result.non2xx} non-2xx`);
    return result;
  };
}

installStopHandlers(20 * 60);
try {
  const rows = [await start('ceiling', 0, 'root'), await start('ceiling, a second process', 0, 'root'), await start('same bytes', 0, 'document')];
  for (let step = 1; step <= STEPS.length; step++) rows.push(await start(`+ ${STEPS[step - 1]}`, step, 'document'));
  rows.push(await startApi(rows[2]!.path));
  const load = await loadGenerator();
  for (const row of rows) {
    log(`${row.name}: warm-up 3 s`);
    await load(row, 'warmup', 3);
  }
  for (let round = 0; round < ROUNDS; round++) {
    log(`round ${round + 1} of ${ROUNDS}`);
    for (const row of round % 2 === 0 ? rows : [...rows].reverse()) {
      const before = cpuMs(row.pid);
      const { ok, seconds } = await load(row, 'measure', SLICE_SECONDS);
      row.cpuMs += cpuMs(row.pid) - before;
      row.requests += ok;
      row.seconds += seconds;
    }
  }
  const rate = (row: Row) => row.requests / row.seconds;
  const perAnswer = (row: Row) => (row.cpuMs * 1000) / row.requests;
  const [ceiling, , same] = rows as [Row, Row, Row, ...Row[]];
  console.log('| rung | req/s | × ceiling | CPU µs per answer | × same bytes |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const row of rows) {
    const cells = [row.name, Math.round(rate(row)), (rate(row) / rate(ceiling)).toFixed(3), perAnswer(row).toFixed(1), (perAnswer(row) / perAnswer(same)).toFixed(2)];
    console.log(`| ${cells.join(' | ')} |`);
  }
} finally {
  await cleanup();
}
