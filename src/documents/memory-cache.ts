import type { StoredDocument } from './document-store.ts';

const ENTRY_OVERHEAD_BYTES = 256;

/**
 * Hot documents in process memory, least recently used first out, bounded in
 * bytes. Documents never change, so an entry is only ever wrong after a
 * delete: `DocumentCache` invalidates it from Redis pub/sub.
 */
export class MemoryCache {
  private readonly entries = new Map<string, StoredDocument>();
  private bytes = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get(key: string): StoredDocument | undefined {
    const document = this.entries.get(key);
    if (document) {
      // Re-insert: Map order is the recency order.
      this.entries.delete(key);
      this.entries.set(key, document);
    }
    return document;
  }

  set(key: string, document: StoredDocument): void {
    const size = document.content.length + ENTRY_OVERHEAD_BYTES;
    if (size > this.maxBytes / 8) return; // a few big documents must not flush all the hot small ones
    this.delete(key);
    this.entries.set(key, document);
    this.bytes += size;
    for (const [oldest, evicted] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= evicted.content.length + ENTRY_OVERHEAD_BYTES;
    }
  }

  delete(key: string): void {
    const document = this.entries.get(key);
    if (!document) return;
    this.entries.delete(key);
    this.bytes -= document.content.length + ENTRY_OVERHEAD_BYTES;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}
