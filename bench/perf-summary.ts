import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { PERF_FREQUENCY_HZ } from './perf-profiler.ts';

// `node bench/perf-summary.ts <dir> <results.json> [top]`: the .perf.data
// files of BENCH_API_PROFILE_PERF=1 (get-hot's API, ceiling-same-response's
// bare process) in µs of CPU per answer, by kind of code and by symbol, and
// the symbols that cost get-hot the most more than the bare process. The
// answers are the rows' in the results file the same run wrote.

type Row = { name: string; latencyMs?: { count: number }; cpu?: { serverUsPerOk: number } };
const ROWS = ['get-hot', 'ceiling-same-response'] as const;

const [dir, resultsFile, topArg = '25'] = process.argv.slice(2);
if (!dir || !resultsFile) throw new Error('usage: node bench/perf-summary.ts <dir> <results.json> [top]');
const rows = (JSON.parse(readFileSync(resultsFile, 'utf8')) as { scenarios: Row[] }).scenarios;

/** What a symbol is: the kernel, JIT-compiled JavaScript, V8's built-ins, its collector, the rest of Node and V8, libraries. */
function kindOf(dso: string, symbol: string): string {
  if (dso === '[kernel.kallsyms]') return 'kernel';
  if (dso.startsWith('[JIT]')) return 'JavaScript (compiled)';
  if (dso !== 'node') return 'libraries (libc, libstdc++, vdso)';
  if (symbol.startsWith('Builtins_')) return "V8's built-ins (property access, calls, strings, regexps)";
  if (/Scaveng|MarkCompact|Sweeper|Heap::|Marking|Evacuat|GCTracer|MinorMS/.test(symbol)) return 'garbage collector';
  return 'Node and V8 native (parser, runtime, streams)';
}

/** JavaScript frames as --perf-basic-prof names them, shortened to function and module. */
function nameOf(symbol: string): string {
  return symbol
    .replace(/^JS:[*~^+]?'?/, '')
    .replace(/file:\/\/\/?/, '')
    .replace(/\S*\/node_modules\//, '')
    .replace(/\S*\/(dist|src|bench)\//, '$1/');
}

const samplesByRow = new Map<string, Map<string, { kind: string; samples: number }>>();
for (const file of readdirSync(dir).filter((name) => name.endsWith('.perf.data'))) {
  const row = ROWS.find((name) => new RegExp(`^${name}-\\d+\\.perf\\.data$`).test(file));
  if (!row) continue;
  const symbols = samplesByRow.get(row) ?? new Map<string, { kind: string; samples: number }>();
  samplesByRow.set(row, symbols);
  const report = execFileSync('perf', ['report', '-i', `${dir}/${file}`, '--stdio', '--no-children', '-n', '--sort', 'dso,sym', '-g', 'none'], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  for (const line of report.split('\n')) {
    // "  5.26%   1433  [kernel.kallsyms]  [k] _raw_spin_unlock_irqrestore"
    const match = /^\s*[\d.]+%\s+(\d+)\s+(.+?)\s+\[[k.]\]\s+(.*)$/.exec(line);
    if (!match) continue;
    const [, samples, dso, symbol] = match as unknown as [string, string, string, string];
    const name = nameOf(symbol.trim());
    const entry = symbols.get(name) ?? { kind: kindOf(dso.trim(), symbol.trim()), samples: 0 };
    entry.samples += Number(samples);
    symbols.set(name, entry);
  }
}

/** µs of CPU per answer of a row, by symbol. */
function perAnswer(row: string): Map<string, { kind: string; us: number }> {
  const answers = rows.find((r) => r.name === row)?.latencyMs?.count;
  const symbols = samplesByRow.get(row);
  if (!answers || !symbols) throw new Error(`no ${row} row with answers in ${resultsFile}, or no ${row}-<n>.perf.data in ${dir}`);
  return new Map([...symbols].map(([name, { kind, samples }]) => [name, { kind, us: ((samples / PERF_FREQUENCY_HZ) * 1e6) / answers }]));
}

const [api, bare] = ROWS.map(perAnswer) as [ReturnType<typeof perAnswer>, ReturnType<typeof perAnswer>];
const total = (symbols: ReturnType<typeof perAnswer>) => [...symbols.values()].reduce((sum, { us }) => sum + us, 0);
const fixed = (us: number) => us.toFixed(2).padStart(7);
console.log(`µs of CPU per answer (perf, ${PERF_FREQUENCY_HZ} Hz)   get-hot  same response  difference`);
console.log(`${'all'.padEnd(60)}${fixed(total(api))}  ${fixed(total(bare))}  ${fixed(total(api) - total(bare))}`);
for (const row of ROWS) {
  const measured = rows.find((r) => r.name === row)?.cpu?.serverUsPerOk;
  if (measured !== undefined) console.log(`  (${row}: ${measured} µs per answer by the process's own CPU time over the same slices)`);
}
const byKind = (symbols: ReturnType<typeof perAnswer>) => {
  const kinds = new Map<string, number>();
  for (const { kind, us } of symbols.values()) kinds.set(kind, (kinds.get(kind) ?? 0) + us);
  return kinds;
};
const [apiKinds, bareKinds] = [byKind(api), byKind(bare)];
console.log('\nby kind of code');
for (const kind of [...new Set([...apiKinds.keys(), ...bareKinds.keys()])].sort((a, b) => (apiKinds.get(b) ?? 0) - (apiKinds.get(a) ?? 0))) {
  const [a, b] = [apiKinds.get(kind) ?? 0, bareKinds.get(kind) ?? 0];
  console.log(`${kind.padEnd(60)}${fixed(a)}  ${fixed(b)}  ${fixed(a - b)}`);
}
console.log(`\nthe ${topArg} symbols that cost get-hot the most more than the bare process`);
const names = new Set([...api.keys(), ...bare.keys()]);
const differences = [...names].map((name) => ({ name, a: api.get(name)?.us ?? 0, b: bare.get(name)?.us ?? 0 })).sort((x, y) => y.a - y.b - (x.a - x.b));
for (const { name, a, b } of differences.slice(0, Number(topArg))) console.log(`${name.slice(0, 59).padEnd(60)}${fixed(a)}  ${fixed(b)}  ${fixed(a - b)}`);
