import { measureInterleaved, printRows, startServer, type ProcessRow } from './process-slices.ts';
import { cleanup, installStopHandlers } from './processes.ts';
import { here } from './settings.ts';

// `node bench/process-spread.ts '' '' ../src/app.ts ../src/app.ts` (about a
// minute for four): the ceiling (bench/ceiling.ts), one process per
// argument, each after importing the modules the argument names
// (comma-separated, relative to bench/; '' for none), loaded by make bench's
// load generator in interleaved slices like bench/fastify-ladder.ts. Copies of one argument say
// how far two processes of the same code land apart; different arguments,
// what loading modules costs a request (bench/README.md, "Fourth round").

installStopHandlers(10 * 60);
try {
  const rows: ProcessRow[] = [];
  for (const imports of process.argv.slice(2)) {
    rows.push(await startServer(imports || '(none)', `${here}ceiling.ts`, { IMPORTS: imports }, '/'));
  }
  const [first] = rows;
  if (!first) throw new Error("name at least one process: its imports, or '' for none");
  await measureInterleaved(rows, 4);
  printRows(rows, 'process (imports)', first, 'the first', first, 'the first');
} finally {
  await cleanup();
}
