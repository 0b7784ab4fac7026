import { once } from 'node:events';
import autocannon from 'autocannon';
import { cpuMs } from './cpu.ts';
import { cleanup, installStopHandlers, startNode } from './processes.ts';
import { here, log, numberFromEnv } from './settings.ts';

// `node bench/fastify-ladder.ts` (about 2 minutes; not part of `make bench`):
// how far below the ceiling bare Fastify falls when it answers get-hot's
// bytes with the things every request of a production service pays, added
// one at a time (bench/ladder-server.ts): the reference for issue 21's
// "get-hot ≥ 0.75 × ceiling" (bench/README.md, "Fourth round"). Each rung and
// the ceiling in their own process, measured in interleaved slices whose
// order alternates; req/s as a ratio to the ceiling's, CPU per answer from
// /proc.

const ROUNDS = numberFromEnv('ROUNDS', 6);
const SLICE_SECONDS = numberFromEnv('SLICE_SECONDS', 2);
const CONNECTIONS = 50;

/** What each rung adds to the one before (bench/ladder-server.ts), in order. */
const STEPS = ['request id', 'onRequest hook', 'onResponse hook', 'logger', 'param schema'] as const;
export type Step = (typeof STEPS)[number];

type Row = { name: string; url: string; pid: number; requests: number; seconds: number; cpuMs: number };

/** A rung with the first `step` STEPS, answering at its document's path (or at `/`, the ceiling's constant JSON). */
async function start(name: string, step: number, at: 'document' | 'root'): Promise<Row> {
  const child = startNode([`${here}ladder-server.ts`], { ...process.env, LADDER_STEPS: STEPS.slice(0, step).join(',') }, 'inherit');
  const [{ port, documentPath }] = (await once(child, 'message')) as [{ port: number; documentPath: string }];
  const path = at === 'root' ? '/' : documentPath;
  return { name, url: `http://127.0.0.1:${port}${path}`, pid: child.pid!, requests: 0, seconds: 0, cpuMs: 0 };
}

async function load(url: string, seconds: number): Promise<number> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds });
  if (result.errors > 0 || result.non2xx > 0) throw new Error(`${url}: ${result.errors} errors, ${result.non2xx} non-2xx`);
  return result.requests.total;
}

installStopHandlers(20 * 60);
try {
  const rows = [await start('ceiling', 0, 'root'), await start('same bytes', 0, 'document')];
  for (let step = 1; step <= STEPS.length; step++) rows.push(await start(`+ ${STEPS[step - 1]}`, step, 'document'));
  for (const row of rows) {
    log(`${row.name}: warm-up 3 s`);
    await load(row.url, 3);
  }
  for (let round = 0; round < ROUNDS; round++) {
    log(`round ${round + 1} of ${ROUNDS}`);
    for (const row of round % 2 === 0 ? rows : [...rows].reverse()) {
      const before = cpuMs(row.pid);
      row.requests += await load(row.url, SLICE_SECONDS);
      row.cpuMs += cpuMs(row.pid) - before;
      row.seconds += SLICE_SECONDS;
    }
  }
  const rate = (row: Row) => row.requests / row.seconds;
  const perAnswer = (row: Row) => (row.cpuMs * 1000) / row.requests;
  const [ceiling, same] = rows as [Row, Row, ...Row[]];
  console.log('| rung | req/s | × ceiling | CPU µs per answer | × same bytes |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const row of rows) {
    const cells = [row.name, Math.round(rate(row)), (rate(row) / rate(ceiling)).toFixed(3), perAnswer(row).toFixed(1), (perAnswer(row) / perAnswer(same)).toFixed(2)];
    console.log(`| ${cells.join(' | ')} |`);
  }
} finally {
  await cleanup();
}
