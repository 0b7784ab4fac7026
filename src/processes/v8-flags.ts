import { setFlagsFromString } from 'node:v8';

// Both settings are about the bytes of large documents. Every 64 KiB a
// socket reads is a new buffer outside the V8 heap (two, with the HTTP
// parser's copy), garbage as soon as it has been passed on, yet freed only
// when V8 collects the object that holds it (bench/README.md, "Large
// documents: what the garbage collector costs a stream").

/**
 * Node flags every process of the service starts with: the image sets them
 * in NODE_OPTIONS, and `make dev`, the tests and the benchmarks start the
 * entry points with them (a test keeps the Dockerfile in step).
 *
 * A small young generation (4 MiB semi-spaces; V8's default grows to
 * 32 MiB): with the default, one 100 MB upload grew the API's resident
 * memory by 83 MiB, with 4 MiB by 38-41 MiB. With 1 MiB the hot GET lost
 * 16 % of its throughput.
 */
export const RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/**
 * Set at run time: NODE_OPTIONS refuses both, so every entry point sets them
 * as it starts (runProcess, runtime.ts). V8 reads them when it allocates and when it
 * sizes the heap after a collection, so they hold from then on (a test
 * checks they do).
 *
 * - `--scavenger-max-new-space-capacity-mb=4`: a young collection once
 *   about 8 MiB of such buffers wait (with the semi-space size given,
 *   nothing else changes). Streaming allocates almost no JavaScript
 *   objects, so without it no young collection came during a download: the
 *   buffers piled up until V8's external-memory limit started a full
 *   mark-compact, two to five per 64 MiB, and the API spent 6-8 ms of CPU
 *   per MB downloaded instead of 2.5-3.5.
 * - `--heap-growing-percent=100`: the next full collection once the old
 *   generation has doubled since the last. V8 otherwise picks the growth
 *   from how fast it collects, and for this process it picked 1.1: about
 *   12 MB above a live heap of 35-40 MB. V8 starts marking whenever the old
 *   generation is within four young generations (16 MiB) of its limit, so
 *   that limit kept it marking: in about half of the fresh API processes
 *   measured, downloads ran through back-to-back mark-compacts, 3-6 per
 *   64 MiB, for up to four downloads in a row, at 6-10 ms of CPU per MB.
 *   With the doubling, none in 24 downloads by 6 fresh processes, at
 *   2.2-3.6 ms per MB. The cost is a bounded one: up to one more live heap
 *   (35-40 MB) of old garbage between collections.
 */
export const STREAMING_V8_FLAGS: readonly string[] = ['--scavenger-max-new-space-capacity-mb=4', '--heap-growing-percent=100'];

/** STREAMING_V8_FLAGS but those given on the command line (`node --heap-growing-percent=0 …`): those win, for comparisons (bench/streaming-gc.ts). */
export function streamingV8FlagsFor(execArgv: readonly string[]): string[] {
  return STREAMING_V8_FLAGS.filter((flag) => {
    const name = flag.slice(0, flag.indexOf('='));
    return !execArgv.some((arg) => arg === name || arg.startsWith(`${name}=`));
  });
}

export function applyStreamingV8Flags(): void {
  for (const flag of streamingV8FlagsFor(process.execArgv)) setFlagsFromString(flag);
}
