import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { RUNTIME_FLAGS } from '../../src/processes/v8-flags.ts';

// What src/processes/v8-flags.ts says of the flags it sets at run time, checked in
// a process of its own: streaming allocates buffers outside the V8 heap and
// almost no JavaScript objects. Without the flag no young collection comes
// and only full mark-compacts free them; set at run time, young collections
// do (bench/README.md has what that is worth to a download).
const child = `
  import { PerformanceObserver, constants } from 'node:perf_hooks';
  const { applyStreamingV8Flags } = await import(${JSON.stringify(new URL('../../src/processes/v8-flags.ts', import.meta.url).href)});
  if (process.argv[1] === 'apply') applyStreamingV8Flags();
  const collections = { minor: 0, major: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) collections.minor++;
      if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) collections.major++;
    }
  }).observe({ entryTypes: ['gc'] });
  // 256 MiB passing through as 64 KiB reads, each dropped once passed on.
  let read;
  for (let i = 0; i < 4096; i++) { read = Buffer.allocUnsafeSlow(65536); read[0] = i; }
  await new Promise((resolve) => setTimeout(resolve, 200));
  console.log(JSON.stringify(collections));
`;

async function collectionsWhileStreaming(mode: 'apply' | 'default'): Promise<{ minor: number; major: number }> {
  const { stdout } = await promisify(execFile)(process.execPath, [...RUNTIME_FLAGS, '--input-type=module', '-e', child, mode], { timeout: 30_000 });
  return JSON.parse(stdout) as { minor: number; major: number };
}

// After each full collection V8 prints the factor it lets the old generation
// grow by before the next (--trace-gc-verbose): set at run time, it is the
// doubling asked for, whatever V8 would have picked.
const growingChild = `
  const { applyStreamingV8Flags } = await import(${JSON.stringify(new URL('../../src/processes/v8-flags.ts', import.meta.url).href)});
  applyStreamingV8Flags();
  const kept = [];
  for (let i = 0; i < 20; i++) {
    kept.push(new Array(50_000).fill(i));
    if (kept.length > 5) kept.shift();
    globalThis.gc();
  }
`;

describe('the V8 flags every entry point sets as it starts', () => {
  it('let the old generation double between full collections, when set at run time', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [...RUNTIME_FLAGS, '--expose-gc', '--trace-gc-verbose', '--input-type=module', '-e', growingChild],
      { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const factors = [...stdout.matchAll(/\[HeapController\] factor ([\d.]+)/g)].map((match) => Number(match[1]));
    expect(factors.length).toBeGreaterThanOrEqual(10);
    expect(new Set(factors)).toEqual(new Set([2]));
  });

  it('takes effect when set at run time: streamed buffers bring young collections', async () => {
    const applied = await collectionsWhileStreaming('apply');
    expect(applied.minor).toBeGreaterThanOrEqual(5);
  });

  it('is needed: without it the same bytes bring full collections only', async () => {
    const without = await collectionsWhileStreaming('default');
    expect(without.minor).toBe(0);
    expect(without.major).toBeGreaterThanOrEqual(1);
  });
});
