import { readdirSync, readFileSync } from 'node:fs';

// `node bench/profile-summary.ts <dir> [top] [prefix]`: the self time of the
// .cpuprofile files in <dir> (BENCH_API_PROFILE's, or --cpu-prof's) whose
// names start with prefix (e.g. get-hot-), added up by function and by
// module, as shares of the busy time ((idle) left out).

type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[] };

const [dir = '.', topArg = '30', prefix = ''] = process.argv.slice(2);
const top = Number(topArg);
const byFunction = new Map<string, number>();
const byModule = new Map<string, number>();
let busy = 0;
let idle = 0;

/** node_modules/<package>, src/<file>, node:<module>, or V8's own entries ((garbage collector), (program)). */
function moduleOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const packaged = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packaged) return packaged[1]!;
  const own = /\/(dist|src|bench)\/(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url.replace(/^node:/, 'node:');
}

for (const file of readdirSync(dir).filter((name) => name.startsWith(prefix) && name.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as Profile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  // Self time: each sample's time delta goes to the node it hit.
  profile.samples.forEach((id, i) => {
    const node = nodes.get(id)!;
    const micros = profile.timeDeltas[i] ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += micros;
      return;
    }
    busy += micros;
    const fn = `${functionName || '(anonymous)'} ${moduleOf(url, functionName)}${url ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + micros);
    const module = moduleOf(url, functionName);
    byModule.set(module, (byModule.get(module) ?? 0) + micros);
  });
}

const print = (title: string, table: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [key, micros] of [...table].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((micros / busy) * 100).toFixed(1).padStart(5)} %  ${key}`);
  }
};
console.log(`busy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s`);
print('self time by module', byModule);
print('self time by function', byFunction);
