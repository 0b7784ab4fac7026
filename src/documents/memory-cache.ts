import { LRUCache } from 'lru-cache';
import type { WholeDocument } from './schemas.ts';

const ENTRY_OVERHEAD_BYTES = 256;

const sizeOf = (document: WholeDocument) => document.content.length + ENTRY_OVERHEAD_BYTES;

/**
 * Hot documents in process memory, bounded in bytes: an LRU (lru-cache),
 * each entry counted as its content plus a fixed overhead. A document over
 * an eighth of the budget is not kept, so that a few big ones cannot flush
 * all the hot small ones. Documents never change, so an entry is only ever
 * wrong after a delete: `DocumentCache` invalidates it from Redis pub/sub.
 *
 * lru-cache replaced a hand-written CLOCK whose inserts cost 5 times as
 * much for the same hit ratio (`node bench/memory-cache.ts`, bench/README).
 */
export class MemoryCache {
  /** None with a budget of 0: MEMORY_CACHE_MAX_BYTES=0 turns the cache off (lru-cache wants a bound). */
  private readonly lru: LRUCache<string, WholeDocument> | undefined;

  /**
   * `ttlMs`: an entry is forgotten this long after it was set, however hot,
   * so that a copy does not outlive its source for good (the content of a
   * tenant whose KMS key was disabled, docs/encryption-and-retention.md).
   * `clock`: milliseconds, for tests.
   */
  constructor(maxBytes: number, options: { ttlMs?: number; clock?: () => number } = {}) {
    const { ttlMs, clock } = options;
    this.lru =
      maxBytes > 0
        ? new LRUCache({
            maxSize: maxBytes,
            maxEntrySize: Math.max(1, Math.floor(maxBytes / 8)),
            sizeCalculation: sizeOf,
            ...(ttlMs ? { ttl: ttlMs } : {}),
            // lru-cache reads its clock at most once per millisecond by default; a test's clock, at every call.
            ...(clock ? { perf: { now: clock }, ttlResolution: 0 } : {}),
          })
        : undefined;
  }

  get(key: string): WholeDocument | undefined {
    return this.lru?.get(key);
  }

  set(key: string, document: WholeDocument): void {
    this.lru?.set(key, document);
  }

  delete(key: string): void {
    this.lru?.delete(key);
  }

  clear(): void {
    this.lru?.clear();
  }

  /** What it holds: the capacity simulator (bench/capacity) reads it to know a cache is full. */
  get size(): { entries: number; bytes: number } {
    return { entries: this.lru?.size ?? 0, bytes: this.lru?.calculatedSize ?? 0 };
  }
}
