import { frameName, moduleOf, readProfiles } from './profiles.ts';

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

for (const profile of readProfiles<Profile>(dir, prefix, '.cpuprofile')) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  // Self time: each sample's time delta goes to the node it hit.
  profile.samples.forEach((id, i) => {
    const node = nodes.get(id)!;
    const micros = profile.timeDeltas[i] ?? 0;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)') {
      idle += micros;
      return;
    }
    busy += micros;
    const fn = frameName(node.callFrame);
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
