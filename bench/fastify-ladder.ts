import { once } from 'node:events';
import { measureInterleaved, printRows, rowOf, type ProcessRow } from './process-slices.ts';
import { cleanup, installStopHandlers, startNode } from './processes.ts';
import { putHotDocument, startApiProcess, startService } from './service.ts';
import { here, settings } from './settings.ts';

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

/** A rung with the first `step` STEPS, answering at its document's path (or at `/`, the ceiling's constant JSON). */
async function start(name: string, step: number, at: 'document' | 'root'): Promise<ProcessRow> {
  const child = startNode([`${here}ladder-server.ts`], { ...process.env, LADDER_STEPS: STEPS.slice(0, step).join(',') }, 'inherit');
  const [{ port, documentPath }] = (await once(child, 'message')) as [{ port: number; documentPath: string }];
  return rowOf(name, `http://127.0.0.1:${port}`, at === 'root' ? '/' : documentPath, child.pid!);
}

/**
 * The service itself (the build's API on the local stack, as `make bench` runs it) answering a cached
 * 1 KiB document: get-hot, measured in the same slices as the rungs.
 */
async function startApi(documentPath: string): Promise<ProcessRow> {
  const { serviceEnv } = await startService();
  const api = await startApiProcess(serviceEnv, []);
  // The rungs' body and type (ladder-server.ts).
  await putHotDocument(api.origin, documentPath.slice('/documents/'.length), [api.origin], { body: Buffer.alloc(1024, 'x'), contentType: 'application/octet-stream' });
  return rowOf(`the API (${settings.apiEntry})`, api.origin, documentPath, api.pid);
}

installStopHandlers(20 * 60);
try {
  const rows = [await start('ceiling', 0, 'root'), await start('ceiling, a second process', 0, 'root'), await start('same bytes', 0, 'document')];
  for (let step = 1; step <= STEPS.length; step++) rows.push(await start(`+ ${STEPS[step - 1]}`, step, 'document'));
  rows.push(await startApi(rows[2]!.path));
  await measureInterleaved(rows, 6);
  const [ceiling, , same] = rows as [ProcessRow, ProcessRow, ProcessRow, ...ProcessRow[]];
  printRows(rows, 'rung', ceiling, 'ceiling', same, 'same bytes');
} finally {
  await cleanup();
}
