import { frameName, moduleOf, readProfiles } from './profiles.ts';

// `node bench/heap-summary.ts <dir> [top] [prefix] [answers]`: the bytes
// allocated in the .heapprofile files of <dir> (BENCH_API_PROFILE with
// BENCH_API_PROFILE_HEAP=1) whose names start with prefix, by allocating
// function and by module; with the number of answers of those slices, in
// bytes per answer. Samples are of every allocation, collected ones
// included, so these are allocation rates, not what stays.

type Node = { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; id: number; children: Node[] };
type Sample = { size: number; nodeId: number };
type Profile = { head: Node; samples: Sample[] };

const [dir = '.', topArg = '30', prefix = '', answersArg] = process.argv.slice(2);
const top = Number(topArg);
const answers = answersArg ? Number(answersArg) : undefined;
const byFunction = new Map<string, number>();
const byModule = new Map<string, number>();
const byStack = new Map<string, number>();
let total = 0;

const frame = (node: Node) => frameName(node.callFrame);

for (const profile of readProfiles<Profile>(dir, prefix, '.heapprofile')) {
  const walk = (node: Node, stack: string[]) => {
    const here = [...stack, frame(node)];
    // selfSize: the sampled bytes allocated in this frame (with this stack).
    if (node.selfSize > 0) {
      total += node.selfSize;
      const fn = frame(node);
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + node.selfSize);
      const module = moduleOf(node.callFrame.url, node.callFrame.functionName);
      byModule.set(module, (byModule.get(module) ?? 0) + node.selfSize);
      const own = here.slice(-4).reverse().join(' < ');
      byStack.set(own, (byStack.get(own) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head, []);
}

const figure = (bytes: number) => (answers ? `${(bytes / answers).toFixed(0).padStart(6)} B/answer` : `${(bytes / 1e6).toFixed(1).padStart(7)} MB`);
const print = (title: string, table: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [key, bytes] of [...table].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${figure(bytes)} ${((bytes / total) * 100).toFixed(1).padStart(5)} %  ${key}`);
};
console.log(`allocated ${figure(total)}`);
print('by module', byModule);
print('by function', byFunction);
print('by stack (innermost last 4 frames, innermost first)', byStack);
