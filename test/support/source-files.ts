import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The service's source tree, for the tests that read it as text. */
export const SRC = resolve(import.meta.dirname, '../../src');

/** Every .ts file below `dir` (declaration files aside). */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}
