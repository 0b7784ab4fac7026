/**
 * Node flags every process of the service runs with: the image sets them in
 * NODE_OPTIONS, and `make dev`, the tests and the benchmarks start the entry
 * points with them (a test keeps the Dockerfile in step).
 *
 * A small young generation (semi-space): a large body arrives as thousands
 * of 64 KiB socket reads that are garbage as soon as they are copied on, and
 * their memory, outside the V8 heap, is returned only when the young
 * generation is collected. With V8's default (up to 32 MiB, grown under
 * allocation) that happens rarely, and the API's resident memory grew by
 * 83 MiB during one 100 MB upload; with 4 MiB, by 38-41 MiB (bench/README.md,
 * "Large documents", where the cost on the hot paths is measured too).
 */
export const RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
