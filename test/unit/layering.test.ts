import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { SRC, sourceFiles } from '../support/source-files.ts';
import { dirname, relative, resolve } from 'node:path';

// The tree reads one way: processes → app → domains → adapters. No two
// folders of src/ may import each other, directly or round a longer loop,
// and no import goes up the layers below.
// Each folder of src/ is one node; each file at the top of src/ (app.ts,
// config.ts, errors.ts, …) is a node of its own. Type-only imports count:
// a folder that needs another's types depends on it all the same.


/** Relative specifiers a module imports or re-exports, statically or dynamically, types included. */
function relativeImports(source: string): string[] {
  const pattern = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.[^'"]+)['"]|\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/gm;
  return [...source.matchAll(pattern)].map((match) => match[1] ?? match[2] ?? '');
}

/** The node of a file: its top folder under src/, or the file itself at the top. */
function nodeOf(file: string): string {
  const [first, ...rest] = relative(SRC, file).split('/');
  return rest.length > 0 ? `${first}/` : first!;
}

type Edge = { from: string; to: string; via: string };

function folderGraph(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    for (const specifier of relativeImports(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), specifier);
      if (!target.startsWith(`${SRC}/`)) continue;
      const [from, to] = [nodeOf(file), nodeOf(target)];
      if (from !== to) edges.push({ from, to, via: `${relative(SRC, file)} → ${relative(SRC, target)}` });
    }
  }
  return edges;
}

/** Every cycle's nodes (strongly connected components of more than one node, Tarjan), each with the imports that close it. */
export function cycles(edges: Edge[]): { nodes: string[]; imports: string[] }[] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    for (const to of next.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (stack.includes(to)) {
        low.set(node, Math.min(low.get(node)!, index.get(to)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      for (let member = stack.pop()!; ; member = stack.pop()!) {
        component.push(member);
        if (member === node) break;
      }
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const node of new Set(edges.flatMap((edge) => [edge.from, edge.to]))) if (!index.has(node)) visit(node);
  return found.map((nodes) => ({
    nodes,
    imports: edges.filter((edge) => nodes.includes(edge.from) && nodes.includes(edge.to)).map((edge) => edge.via),
  }));
}

/**
 * The layers, top first. A node may import its own layer (no cycle, above)
 * and any below, never one above. A node of src/ in none fails the test:
 * a new folder takes its place here.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['processes/', 'local/'],
  ['app.ts'],
  ['documents/', 'orders/', 'idempotency/', 'outbox/', 'consumer/', 'health/', 'bootstrap/'],
  ['http/'],
  ['adapters/'],
  ['telemetry/'],
  ['config.ts', 'errors.ts', 'metrics.ts', 'cached.ts', 'background-loop.ts'],
];

/** The imports that go up a layer (or from or to a node in no layer). */
export function upward(edges: Edge[], layers: readonly (readonly string[])[]): string[] {
  const rank = (node: string) => layers.findIndex((layer) => layer.includes(node));
  return edges.filter(({ from, to }) => rank(from) < 0 || rank(to) < 0 || rank(to) < rank(from)).map((edge) => edge.via);
}

describe('the layers of src/', () => {
  it('place every folder and top-level file', () => {
    const nodes = new Set(sourceFiles(SRC).map(nodeOf));
    expect([...nodes].filter((node) => !LAYERS.flat().includes(node))).toEqual([]);
  });

  it('are imported downwards only: processes → app → domains → http → adapters → telemetry → config', () => {
    expect(upward(folderGraph(), LAYERS)).toEqual([]);
  });

  it('the check names an import that goes up', () => {
    const edge = (from: string, to: string) => ({ from, to, via: `${from}x.ts → ${to}y.ts` });
    const layers = [['processes/'], ['app.ts'], ['orders/', 'outbox/'], ['adapters/']];
    expect(upward([edge('processes/', 'adapters/'), edge('orders/', 'outbox/'), edge('adapters/', 'orders/'), edge('orders/', 'processes/')], layers)).toEqual([
      'adapters/x.ts → orders/y.ts',
      'orders/x.ts → processes/y.ts',
    ]);
    expect(upward([edge('new/', 'adapters/')], layers)).toEqual(['new/x.ts → adapters/y.ts']);
  });
});

describe('imports between the folders of src/', () => {
  it('form no cycle', () => {
    const edges = folderGraph();
    expect(edges.length).toBeGreaterThan(20); // the scan found the imports at all
    expect(cycles(edges)).toEqual([]);
  });

  it('the check finds a cycle, direct or round a loop, and names the imports that close it', () => {
    const edge = (from: string, to: string) => ({ from, to, via: `${from}x.ts → ${to}y.ts` });
    expect(cycles([edge('orders/', 'outbox/'), edge('outbox/', 'orders/'), edge('orders/', 'adapters/')])).toEqual([
      { nodes: ['orders/', 'outbox/'], imports: ['orders/x.ts → outbox/y.ts', 'outbox/x.ts → orders/y.ts'] },
    ]);
    expect(cycles([edge('a/', 'b/'), edge('b/', 'c/'), edge('c/', 'a/')])[0]?.nodes).toEqual(['a/', 'b/', 'c/']);
    expect(cycles([edge('app.ts', 'orders/'), edge('orders/', 'errors.ts')])).toEqual([]);
  });
});
