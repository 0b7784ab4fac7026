import type { WholeDocument } from './schemas.ts';

const ENTRY_OVERHEAD_BYTES = 256;
/** Flagged entries one insert may move to the back before it evicts regardless. */
export const SECOND_CHANCES = 32;

type Entry = { document: WholeDocument; used: boolean };

/**
 * Hot documents in process memory, bounded in bytes. Eviction is "second
 * chance" (CLOCK): a hit only flags its entry, and the eviction sweep moves
 * flagged entries to the back once; that is LRU's behaviour for hot sets
 * without re-inserting into the map on every hit. One sweep gives at most
 * SECOND_CHANCES entries their second chance, then evicts the oldest
 * whatever its flag: with every entry hot, an insert would otherwise rotate
 * the whole map (an O(n) pause with 64 MiB of small documents). Documents
 * never change, so an entry is only ever wrong after a delete:
 * `DocumentCache` invalidates it from Redis pub/sub.
 */
export class MemoryCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get(key: string): WholeDocument | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    entry.used = true;
    return entry.document;
  }

  set(key: string, document: WholeDocument): void {
    const size = document.content.length + ENTRY_OVERHEAD_BYTES;
    if (size > this.maxBytes / 8) return; // a few big documents must not flush all the hot small ones
    this.delete(key);
    this.entries.set(key, { document, used: false });
    this.bytes += size;
    let chances = SECOND_CHANCES;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      if (entry.used && oldest !== key && chances > 0) {
        chances -= 1;
        entry.used = false;
        this.entries.set(oldest, entry);
      } else {
        this.bytes -= entry.document.content.length + ENTRY_OVERHEAD_BYTES;
      }
    }
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.document.content.length + ENTRY_OVERHEAD_BYTES;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}
