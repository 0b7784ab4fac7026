import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { freePort } from '../src/local/emulators.ts';
import { cpuMs } from './cpu.ts';
import { LoadGenerator, startNode, waitForHttp } from './processes.ts';
import type { LoadSpec } from './scenarios.ts';
import { here, log, numberFromEnv } from './settings.ts';

// Servers in processes of their own, each loaded in turn by make bench's load
// generator (bench/load.ts) with its ceiling or get-hot requests, in
// interleaved slices whose order alternates: bench/fastify-ladder.ts and
// bench/process-spread.ts. The ratios depend on what the load generator
// costs per request, which is then make bench's.

/** One process under load: `/` gets the ceiling's requests, `/documents/{id}` get-hot's. */
export type ProcessRow = { name: string; origin: string; path: string; pid: number; answers: number; seconds: number; cpuMs: number };

export const rowOf = (name: string, origin: string, path: string, pid: number): ProcessRow => ({ name, origin, path, pid, answers: 0, seconds: 0, cpuMs: 0 });

/** `node <script>` listening on PORT (given in `env`), once it answers `/`: its row, loaded at `path`. */
export async function startServer(name: string, script: string, env: NodeJS.ProcessEnv, path: string): Promise<ProcessRow> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const child = startNode([script], { ...process.env, ...env, PORT: String(port) }, 'inherit');
  await waitForHttp(name, child, `${origin}/`, 20_000);
  return rowOf(name, origin, path, child.pid!);
}

/** 3 s warm-ups, then ROUNDS (default `rounds`) rounds of SLICE_SECONDS (2) s slices, CPU of each process from /proc. */
export async function measureInterleaved(rows: ProcessRow[], rounds: number): Promise<void> {
  const ROUNDS = numberFromEnv('ROUNDS', rounds);
  const SLICE_SECONDS = numberFromEnv('SLICE_SECONDS', 2);
  const child = startNode([`${here}load.ts`], process.env, 'inherit');
  await once(child, 'message');
  const generator = new LoadGenerator(child, new Promise<never>(() => {}));
  const runTag = randomBytes(4).toString('hex');
  const load = async (row: ProcessRow, phase: 'warmup' | 'measure', seconds: number) => {
    const target: Pick<LoadSpec, 'scenario' | 'hotId'> = row.path === '/' ? { scenario: 'ceiling' } : { scenario: 'get-hot', hotId: row.path.slice('/documents/'.length) };
    const result = await generator.run({ ...target, phase, origin: row.origin, seconds, connections: 50, runTag });
    if (result.errors > 0 || result.non2xx > 0) throw new Error(`${row.name}: ${result.errors} errors, ${result.non2xx} non-2xx`);
    return result;
  };
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
      row.answers += ok;
      row.seconds += seconds;
    }
  }
}

/** A markdown table: req/s and CPU per answer of each row, each as a ratio to a reference row's. */
export function printRows(rows: ProcessRow[], heading: string, rateBase: ProcessRow, rateName: string, cpuBase: ProcessRow, cpuName: string): void {
  const rate = (row: ProcessRow) => row.answers / row.seconds;
  const perAnswer = (row: ProcessRow) => (row.cpuMs * 1000) / row.answers;
  console.log(`| ${heading} | req/s | × ${rateName} | CPU µs per answer | × ${cpuName} |`);
  console.log('| --- | --- | --- | --- | --- |');
  for (const row of rows) {
    const cells = [row.name, Math.round(rate(row)), (rate(row) / rate(rateBase)).toFixed(3), perAnswer(row).toFixed(1), (perAnswer(row) / perAnswer(cpuBase)).toFixed(2)];
    console.log(`| ${cells.join(' | ')} |`);
  }
}
