// The process-memory cache (src/documents/memory-cache.ts, lru-cache since
// issue 11, item 13) against the hand-written CLOCK it replaced, kept below
// as it was so that the comparison can be re-run: `node bench/memory-cache.ts`
// (about 1½ minutes; not part of `make bench`). Both are bounded at the same
// bytes with the same per-entry overhead and driven by the same Zipf stream
// of ids, as the API drives its cache (a get, and a set on a miss).
// Reported per variant: the hit ratio, the time of a get+set step over the
// stream, the time of a hit alone, and the longest single set while every
// entry is hot (the pause the issue asked to bound).
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { MemoryCache } from '../src/documents/memory-cache.ts';
import type { WholeDocument } from '../src/documents/schemas.ts';
import { ZipfSampler } from './capacity/zipf.ts';

const MAX_BYTES = 64 * 1024 * 1024;
const ENTRY_OVERHEAD_BYTES = 256; // what MemoryCache adds to each entry
const DOCUMENT_BYTES = 1024;
const IDS = 400_000; // ~5 times what fits (64 MiB / 1.25 KiB ≈ 52k entries)
const STEPS = 2_000_000;
const ROUNDS = 5;

type Cache = { get(key: string): WholeDocument | undefined; set(key: string, document: WholeDocument): void };

/** The cache as it was before lru-cache (commit 7179d81): CLOCK over a Map, at most 32 second chances per insert. */
class ClockCache {
  private readonly entries = new Map<string, { document: WholeDocument; used: boolean }>();
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
    if (size > this.maxBytes / 8) return;
    const previous = this.entries.get(key);
    if (previous) this.bytes -= previous.document.content.length + ENTRY_OVERHEAD_BYTES;
    this.entries.delete(key);
    this.entries.set(key, { document, used: false });
    this.bytes += size;
    let chances = 32;
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
}

const variants: Record<string, () => Cache> = {
  'MemoryCache (lru-cache 11, maxSize, sizeCalculation)': () => new MemoryCache(MAX_BYTES),
  'hand-written CLOCK it replaced': () => new ClockCache(MAX_BYTES),
};

const content = Buffer.alloc(DOCUMENT_BYTES, 1);
const documentOf = (key: string): WholeDocument => ({
  metadata: { id: key, status: 'ACTIVE', contentType: 'application/octet-stream', size: DOCUMENT_BYTES, checksum: '0'.repeat(64), createdAt: '2026-12-01T00:00:00.000Z' },
  content,
});
const keys = Array.from({ length: IDS + 1 }, (_, i) => `public/doc-${i}`);

function stream(seed: number): Uint32Array {
  const zipf = new ZipfSampler(IDS, 1.0, xoroshiro128plus(seed));
  return Uint32Array.from({ length: STEPS }, () => zipf.next());
}

function run(cache: Cache, ranks: Uint32Array) {
  let hits = 0;
  const started = process.hrtime.bigint();
  for (const rank of ranks) {
    const key = keys[rank]!;
    if (cache.get(key)) hits++;
    else cache.set(key, documentOf(key));
  }
  const stepNs = Number(process.hrtime.bigint() - started) / ranks.length;

  // A hit alone: the hottest id, read STEPS times.
  const hot = keys[1]!;
  const hitStarted = process.hrtime.bigint();
  for (let i = 0; i < STEPS; i++) cache.get(hot);
  const hitNs = Number(process.hrtime.bigint() - hitStarted) / STEPS;

  // Every entry hot (read once since the last sweep), then inserts of new ids: the longest one.
  for (let rank = 1; rank <= IDS; rank++) cache.get(keys[rank]!);
  let longestSetUs = 0;
  for (let i = 0; i < 1000; i++) {
    const key = `public/new-${i}`;
    const document = documentOf(key);
    const setStarted = process.hrtime.bigint();
    cache.set(key, document);
    longestSetUs = Math.max(longestSetUs, Number(process.hrtime.bigint() - setStarted) / 1000);
  }
  return { hitRatio: hits / ranks.length, stepNs, hitNs, longestSetUs };
}

const results = new Map<string, ReturnType<typeof run>[]>();
for (let round = 0; round < ROUNDS; round++) {
  const ranks = stream(round + 1);
  // Alternate the order of the variants from round to round.
  const names = Object.keys(variants);
  for (const name of round % 2 === 0 ? names : names.reverse()) {
    const figures = run(variants[name]!(), ranks);
    results.set(name, [...(results.get(name) ?? []), figures]);
  }
}

const median = (values: number[]) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)]!;
console.log(`${ROUNDS} rounds of ${STEPS} steps, Zipf s=1.0 over ${IDS} ids of ${DOCUMENT_BYTES} B, ${MAX_BYTES / 2 ** 20} MiB; medians (min-max)`);
console.log('| cache | hit ratio | get+set step, ns | hit alone, ns | longest set with every entry hot, µs |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, runs] of results) {
  const cell = (pick: (r: ReturnType<typeof run>) => number, digits: number) => {
    const values = runs.map(pick);
    return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})`;
  };
  console.log(`| ${name} | ${cell((r) => r.hitRatio, 4)} | ${cell((r) => r.stepNs, 0)} | ${cell((r) => r.hitNs, 1)} | ${cell((r) => r.longestSetUs, 0)} |`);
}
