import { measureInterleaved, printRows, rowOf, startServer, type ProcessRow } from './process-slices.ts';
import { cleanup, installStopHandlers } from './processes.ts';
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

// Where the rungs (whose route answers any id) and the API answer the document.
const DOCUMENT_ID = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const DOCUMENT_PATH = `/documents/${DOCUMENT_ID}`;

/** A rung with the first `step` STEPS, loaded at the document (or at `/`, the ceiling's constant JSON). */
const start = (name: string, step: number, at: 'document' | 'root'): Promise<ProcessRow> =>
  startServer(name, `${here}ladder-server.ts`, { LADDER_STEPS: STEPS.slice(0, step).join(',') }, at === 'root' ? '/' : DOCUMENT_PATH);

/**
 * The service itself (the build's API on the local stack, as `make bench` runs it) answering a cached
 * 1 KiB document, the bytes and type a rung answers: get-hot, measured in the same slices as the rungs.
 */
async function startApi(rung: ProcessRow): Promise<ProcessRow> {
  const sample = await fetch(`${rung.origin}${DOCUMENT_PATH}`);
  const contentType = sample.headers.get('content-type');
  if (!sample.ok || !contentType) throw new Error(`${rung.name} answered ${sample.status}, type ${contentType}`);
  const document = { body: Buffer.from(await sample.arrayBuffer()), contentType };
  const { serviceEnv } = await startService();
  const api = await startApiProcess(serviceEnv, []);
  await putHotDocument(api.origin, DOCUMENT_ID, [api.origin], document);
  return rowOf(`the API (${settings.apiEntry})`, api.origin, DOCUMENT_PATH, api.pid);
}

installStopHandlers(20 * 60);
try {
  const rows = [await start('ceiling', 0, 'root'), await start('ceiling, a second process', 0, 'root'), await start('same bytes', 0, 'document')];
  for (let step = 1; step <= STEPS.length; step++) rows.push(await start(`+ ${STEPS[step - 1]}`, step, 'document'));
  rows.push(await startApi(rows[2]!));
  await measureInterleaved(rows, 6);
  const [ceiling, , same] = rows as [ProcessRow, ProcessRow, ProcessRow, ...ProcessRow[]];
  printRows(rows, 'rung', ceiling, 'ceiling', same, 'same bytes');
} finally {
  await cleanup();
}
