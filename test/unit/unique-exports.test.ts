import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { SRC, sourceFiles } from '../support/source-files.ts';
import { relative } from 'node:path';

// One name, one meaning: a name exported by two modules of src/ (two
// `Outcome`s, two `Claim`s) reads as one thing and is two. A name a module
// shares is imported from the one that declares it, never declared again.


const DECLARATION =
  /^export\s+(?:declare\s+)?(?:default\s+)?(?:abstract\s+)?(?:async\s+)?(?:type|interface|const|let|var|class|function\*?|enum)\s+([A-Za-z_$][\w$]*)/gm;

/** The names a module declares and exports (a TypeBox schema and its type share a name: one declaration). */
export function exportedNames(source: string): Set<string> {
  return new Set([...source.matchAll(DECLARATION)].map((match) => match[1]!));
}

/** Each name declared by more than one module, with those modules. */
export function declaredTwice(modules: Map<string, string>): Record<string, string[]> {
  const where = new Map<string, string[]>();
  for (const [module, source] of modules) {
    for (const name of exportedNames(source)) where.set(name, [...(where.get(name) ?? []), module]);
  }
  return Object.fromEntries([...where].filter(([, modules]) => modules.length > 1));
}

describe('names exported by the modules of src/', () => {
  it('are each declared by one module', () => {
    const modules = new Map(sourceFiles(SRC).map((file) => [relative(SRC, file), readFileSync(file, 'utf8')]));
    const names = [...modules.values()].reduce((count, source) => count + exportedNames(source).size, 0);
    expect(names).toBeGreaterThan(200); // the scan found the exports at all
    expect(declaredTwice(modules)).toEqual({});
  });

  it('the check finds a name two modules declare, whatever kind of declaration', () => {
    const modules = new Map([
      ['a.ts', "export type Outcome = 'applied' | 'busy';\nexport const Order = Type.Object({});\nexport type Order = Static<typeof Order>;"],
      ['b.ts', 'export interface Outcome<T> { ok: T }\nexport async function run() {}'],
      ['c.ts', "export class Outcome {}\nconst run = 1;\nexport { run };\n// export type Order = 'not code';"],
    ]);
    expect(declaredTwice(modules)).toEqual({ Outcome: ['a.ts', 'b.ts', 'c.ts'] });
  });
});
