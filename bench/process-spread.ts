import { once } from 'node:events';
import { cpuMs } from './cpu.ts';
import { cleanup, installStopHandlers, LoadGenerator, startNode } from './processes.ts';
import { here, log, numberFromEnv } from './settings.ts';

// `node bench/process-spread.ts '' '' ../src/app.ts ../src/app.ts` (about a
// minute for four): bare Fastify answering the ceiling's `GET /`, one process
// per argument, each after importing the modules the argument names
// (comma-separated; '' for none), loaded by make bench's load generator in
// interleaved slices like bench/fastify-ladder.ts. Copies of one argument say
// how far two processes of the same code land apart; different arguments,
// what loading modules costs a request (bench/README.md, "Fourth round").

const ROUNDS = numberFromEnv('ROUNDS', 4);
const SLICE_SECONDS = numberFromEnv('SLICE_SECONDS', 2);

type Row = { name: string; origin: string; pid: number; answers: number; seconds: number; cpuMs: number };

installStopHandlers(10 * 60);
try {
  const rows: Row[] = [];
  for (const imports of process.argv.slice(2)) {
    const child = startNode([`${here}import-server.ts`], { ...process.env, IMPORTS: imports }, 'inherit');
    const [{ port }] = (await once(child, 'message')) as [{ port: number }];
    rows.push({ name: imports || '(none)', origin: `http://127.0.0.1:${port}`, pid: child.pid!, answers: 0, seconds: 0, cpuMs: 0 });
  }
  if (rows.length === 0) throw new Error('name at least one process: its imports, or \'\' for none');
  const loadChild = startNode([`${here}load.ts`], process.env, 'inherit');
  await once(loadChild, 'message');
  const generator = new LoadGenerator(loadChild, new Promise<never>(() => {}));
  const load = async (row: Row, phase: 'warmup' | 'measure', seconds: number) => {
    const result = await generator.run({ scenario: 'ceiling', phase, origin: row.origin, seconds, connections: 50, runTag: 'spread' });
    if (result.errors > 0 || result.non2xx > 0) throw new Error(`${row.name}: ${result.errors} errors, ${result.non2xx} non-2xx`);
    return result;
  };
  for (const row of rows) await load(row, 'warmup', 3);
  for (let round = 0; round < ROUNDS; round++) {
    log(`round ${round + 1} of ${ROUNDS}`);
    for (const row of round % 2 === 0 ? rows : [...rows].reverse()) {
      const before = cpuMs(row.pid);
      const { ok, seconds } = await load(row, 'measure', SLICE_SECONDS);
      row.cpuMs += cpuMs(row.pid) - before;
      row.answers += ok;
      row.seconds += seconds;
    }
  }
  const rate = (row: Row) => row.answers / row.seconds;
  const perAnswer = (row: Row) => (row.cpuMs * 1000) / row.answers;
  const [first] = rows as [Row, ...Row[]];
  console.log('| process (imports) | req/s | × the first | CPU µs per answer | × the first |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const row of rows) {
    console.log(`| ${[row.name, Math.round(rate(row)), (rate(row) / rate(first)).toFixed(3), perAnswer(row).toFixed(1), (perAnswer(row) / perAnswer(first)).toFixed(2)].join(' | ')} |`);
  }
} finally {
  await cleanup();
}
