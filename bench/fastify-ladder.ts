import { once } from 'node:events';
import autocannon from 'autocannon';
import { cpuMs } from './cpu.ts';
import { STEPS } from './ladder-server.ts';
import { cleanup, installStopHandlers, startNode } from './processes.ts';
import { here, log } from './settings.ts';

// `node bench/fastify-ladder.ts` (about 2 minutes; not part of `make bench`):
// how far below the ceiling bare Fastify falls when it answers get-hot's
// bytes with the things every request of a production service pays, added
// one at a time (bench/ladder-server.ts): the reference for issue 21's
// "get-hot ≥ 0.75 × ceiling" (bench/README.md, "Fourth round"). Each rung and
// the ceiling in their own process, measured in interleaved slices whose
// order alternates; req/s as a ratio to the ceiling's, CPU per answer from
// /proc.

const ROUNDS = Number(process.env.ROUNDS ?? 6);
const SLICE_SECONDS = Number(process.env.SLICE_SECONDS ?? 2);
const CONNECTIONS = 50;
const ID = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';

type Row = { name: string; url: string; pid: number; requests: number; seconds: number; cpuMs: number };

async function start(name: string, step: number, path: string): Promise<Row> {
  const child = startNode([`${here}ladder-server.ts`], { ...process.env, LADDER_STEP: String(step) }, 'inherit');
  const [{ port }] = (await once(child, 'message')) as [{ port: number }];
  return { name, url: `http://127.0.0.1:${port}${path}`, pid: child.pid!, requests: 0, seconds: 0, cpuMs: 0 };
}

async function load(url: string, seconds: number): Promise<number> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds });
  if (result.errors > 0 || result.non2xx > 0) throw new Error(`${url}: ${result.errors} errors, ${result.non2xx} non-2xx`);
  return result.requests.total;
}

installStopHandlers(20 * 60);
try {
  const rows = [await start('ceiling', 0, '/'), await start('same bytes', 0, `/documents/${ID}`)];
  for (let step = 1; step <= STEPS.length; step++) rows.push(await start(`+ ${STEPS[step - 1]}`, step, `/documents/${ID}`));
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
// autocannon leaves handles open: like run.ts, end here.
process.exit(process.exitCode ?? 0);
