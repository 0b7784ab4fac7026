import { readdirSync, readFileSync } from 'node:fs';

// What bench/profile-summary.ts and bench/heap-summary.ts share: reading the
// profiles of a directory, and naming a frame by its function and module.

/** The files of `dir` whose names start with `prefix` and end with `extension` (.cpuprofile, .heapprofile), parsed one at a time. */
export function* readProfiles<Profile>(dir: string, prefix: string, extension: string): Generator<Profile> {
  for (const file of readdirSync(dir).filter((name) => name.startsWith(prefix) && name.endsWith(extension))) {
    yield JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as Profile;
  }
}

/** node_modules/<package>, src/<file>, node:<module>, or V8's own entries ((garbage collector), (program)). */
export function moduleOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const packaged = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packaged) return packaged[1]!;
  const own = /\/(dist|src|bench)\/(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url;
}

/** `<function> <module>:<line>` (no line for frames without a url). */
export function frameName({ functionName, url, lineNumber }: { functionName: string; url: string; lineNumber: number }): string {
  return `${functionName || '(anonymous)'} ${moduleOf(url, functionName)}${url ? `:${lineNumber + 1}` : ''}`;
}
