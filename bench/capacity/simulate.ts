import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { LRUCache } from 'lru-cache';
import { MemoryCache } from '../../src/documents/memory-cache.ts';
import type { WholeDocument } from '../../src/documents/schemas.ts';
import { mix32, ZipfSampler } from './zipf.ts';

// The hit ratios of the two cache layers, simulated: the service's own
// MemoryCache (one per pod) and a byte-bounded LRU standing in for Redis,
// fed with a seeded Zipf stream of document ranks (rank 1 the most read).

export type SizeClass = { bytes: number; share: number };

/** The documents: how many, how reads spread over them, and each one's size (fixed by its rank, independent of popularity). */
export class Catalog {
  readonly count: number;
  readonly exponent: number;
  private readonly classes: SizeClass[];
  private readonly thresholds: number[];

  constructor(count: number, exponent: number, sizes: SizeClass[]) {
    this.count = count;
    this.exponent = exponent;
    const total = sizes.reduce((sum, size) => sum + size.share, 0);
    this.classes = sizes.map((size) => ({ bytes: size.bytes, share: size.share / total }));
    let cumulative = 0;
    this.thresholds = this.classes.map((size) => (cumulative += size.share) * 2 ** 32);
  }

  /** Index of the rank's size class in `sizes`. */
  classOf(rank: number): number {
    const u = mix32(rank);
    for (let i = 0; i < this.thresholds.length - 1; i++) if (u < this.thresholds[i]!) return i;
    return this.thresholds.length - 1;
  }

  sizeOf(rank: number): number {
    return this.classes[this.classOf(rank)]!.bytes;
  }

  /** Share of reads by size: sizes do not depend on rank, so it is the share of documents. */
  get sizes(): readonly SizeClass[] {
    return this.classes;
  }
}

/** Batch means: the mean of per-batch ratios, and the half-width of its 95% confidence interval (Student t). */
export type Estimate = { mean: number; halfWidth: number; batches: number; requestsPerBatch: number };

// Student t quantiles (0.975) by degrees of freedom, for the batch counts used here.
const T975: Record<number, number> = { 4: 2.776, 9: 2.262, 14: 2.145, 19: 2.093, 29: 2.045 };

function estimate(ratios: number[], requestsPerBatch: number): Estimate {
  const n = ratios.length;
  const mean = ratios.reduce((sum, value) => sum + value, 0) / n;
  const variance = ratios.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (n - 1);
  const t = T975[n - 1] ?? 1.96;
  return { mean, halfWidth: t * Math.sqrt(variance / n), batches: n, requestsPerBatch };
}

/** Ranks grouped in quarter octaves: the memory hit ratio of each group feeds the Redis stage. */
const bucketOf = (rank: number) => Math.floor(Math.log2(rank) * 4);

export type MemoryRun = {
  memoryBytes: number;
  pods: number;
  routing: 'random' | 'by-id';
  hitRatio: Estimate;
  /** Share of the bytes read that memory served. */
  byteHitRatio: number;
  /** Mean over pods at the end of the run. */
  entriesPerPod: number;
  bytesPerPod: number;
  /** Per rank bucket: requests and memory hits (all pods). */
  buckets: Counts[];
  /** Per size class (the catalog's order). */
  bySize: Counts[];
};

export type Counts = { requests: number; hits: number };

export const ratioOf = (counts: Counts | undefined) => (counts && counts.requests > 0 ? counts.hits / counts.requests : 0);

const METADATA: WholeDocument['metadata'] = {
  id: 'simulated',
  status: 'ACTIVE',
  contentType: 'application/json',
  size: 1,
  checksum: '0'.repeat(64),
  createdAt: '2026-01-01T00:00:00.000Z',
};

export type MemoryOptions = {
  memoryBytes: number;
  /** Larger documents are never cached (they stream from S3). */
  cacheableMaxBytes: number;
  /** Pods behind the load balancer; every request goes to one of them. */
  pods: number;
  /** random: the load balancer picks any pod (round robin, least outstanding); by-id: a hash of the id picks the pod. */
  routing: 'random' | 'by-id';
  seed: number;
  /** Bound of the warm-up's filling phase, requests per pod. */
  maxWarmupPerPod: number;
  batchPerPod: number;
  batches: number;
};

/**
 * Every pod a real MemoryCache; a miss is filled as the service does after
 * reading Redis or the store. By-id routing gives each pod the requests of
 * its own ids only: it is simulated as pod 0 of `pods`, with the requests of
 * the other pods drawn and dropped.
 */
export function simulateMemory(catalog: Catalog, options: MemoryOptions): MemoryRun {
  const rng = xoroshiro128plus(options.seed);
  const zipf = new ZipfSampler(catalog.count, catalog.exponent, rng);
  const simulatedPods = options.routing === 'random' ? options.pods : 1;
  const caches = Array.from({ length: simulatedPods }, () => new MemoryCache(options.memoryBytes));
  const content = Buffer.alloc(options.cacheableMaxBytes);
  const documents = new Map<number, WholeDocument>();
  const documentOf = (size: number) => {
    let document = documents.get(size);
    if (!document) documents.set(size, (document = { metadata: { ...METADATA, size }, content: content.subarray(0, size) }));
    return document;
  };
  const buckets: Counts[] = [];
  const bySize: Counts[] = catalog.sizes.map(() => ({ requests: 0, hits: 0 }));
  let readBytes = 0;
  let hitBytes = 0;

  const step = (count: boolean): boolean | undefined => {
    const rank = zipf.next();
    let cache: MemoryCache;
    if (options.routing === 'random') cache = caches[simulatedPods === 1 ? 0 : uniformInt(rng, 0, simulatedPods - 1)]!;
    else if (mix32(rank ^ 0x5bd1e995) % options.pods === 0) cache = caches[0]!;
    else return undefined;
    const key = String(rank);
    const sizeClass = catalog.classOf(rank);
    const size = catalog.sizes[sizeClass]!.bytes;
    const hit = cache.get(key) !== undefined;
    if (!hit && size <= options.cacheableMaxBytes) cache.set(key, documentOf(size));
    if (count) {
      const bucket = bucketOf(rank);
      while (buckets.length <= bucket) buckets.push({ requests: 0, hits: 0 });
      buckets[bucket]!.requests++;
      bySize[sizeClass]!.requests++;
      readBytes += size;
      if (hit) {
        buckets[bucket]!.hits++;
        bySize[sizeClass]!.hits++;
        hitBytes += size;
      }
    }
    return hit;
  };

  const perRound = options.routing === 'random' ? simulatedPods : 1;
  // Warm-up: until every cache is full, then five times its entries again per pod.
  const full = () => caches.every((cache) => cache.size.bytes >= options.memoryBytes * 0.95);
  let warmup = 0;
  while (!full() && warmup < options.maxWarmupPerPod * perRound) if (step(false) !== undefined) warmup++;
  const settle = 5 * Math.max(...caches.map((cache) => cache.size.entries)) * perRound;
  for (let done = 0; done < settle; ) if (step(false) !== undefined) done++;
  const ratios: number[] = [];
  for (let batch = 0; batch < options.batches; batch++) {
    let hits = 0;
    for (let done = 0; done < options.batchPerPod * perRound; ) {
      const hit = step(true);
      if (hit === undefined) continue;
      done++;
      if (hit) hits++;
    }
    ratios.push(hits / (options.batchPerPod * perRound));
  }
  const sizes = caches.map((cache) => cache.size);
  return {
    memoryBytes: options.memoryBytes,
    pods: options.pods,
    routing: options.routing,
    hitRatio: estimate(ratios, options.batchPerPod * perRound),
    byteHitRatio: readBytes ? hitBytes / readBytes : 0,
    entriesPerPod: sizes.reduce((sum, size) => sum + size.entries, 0) / sizes.length,
    bytesPerPod: sizes.reduce((sum, size) => sum + size.bytes, 0) / sizes.length,
    buckets,
    bySize,
  };
}

export type RedisRun = {
  usableBytes: number;
  /** Of the requests that reach Redis (memory misses of cacheable documents). */
  hitRatio: Estimate;
  byteHitRatio: number;
  /** Mean value size of the requests that reach Redis, bytes. */
  meanRequestBytes: number;
  /** Keys held at the end, at full scale. */
  entries: number;
  /** Per size class (the catalog's order). */
  bySize: Counts[];
  /** Share of document ids simulated, and how many that is. */
  sampleRate: number;
  sampledDocuments: number;
};

export type RedisOptions = {
  usableBytes: number;
  cacheableMaxBytes: number;
  /** Bytes one key takes beyond its content: metadata JSON, key, Redis's own per-key and expiry overhead. */
  entryOverheadBytes: number;
  /** Keys the sampled cache should hold: enough for the sample to behave like the whole. */
  sampledEntries: number;
  seed: number;
  batches: number;
  batchRequests: number;
};

/**
 * Redis as one byte-bounded LRU (ElastiCache's volatile-lru on keys that all
 * carry a TTL; Redis approximates LRU by sampling). Its requests are the
 * memory misses of every pod: with hundreds of pods their superposition is
 * close to independent draws, at each document's read rate times its memory
 * miss ratio from the memory run.
 *
 * Holding millions of keys would take gigabytes and minutes, so the stream is
 * sampled by key (SHARDS: C. Waldspurger et al., FAST '15): one rank in
 * 1/rate, evenly spread over the popularity curve, against a cache of rate ×
 * the memory; the hit ratio of the sample estimates the whole. The rate is
 * chosen so that the sampled cache holds `sampledEntries` keys.
 */
export function simulateRedis(catalog: Catalog, memory: MemoryRun, options: RedisOptions): RedisRun {
  const rng = xoroshiro128plus(options.seed);
  const missRatioOf = (rank: number) => {
    const bucket = memory.buckets[bucketOf(rank)];
    return bucket && bucket.requests > 0 ? 1 - bucket.hits / bucket.requests : 1;
  };
  const meanEntryBytes =
    catalog.sizes.filter((size) => size.bytes <= options.cacheableMaxBytes).reduce((sum, size) => sum + size.share * size.bytes, 0) +
    options.entryOverheadBytes;
  // Enough keys to fill the sampled memory, and never fewer ids than that in all.
  const sampleRate = Math.min(1, Math.max((options.sampledEntries * meanEntryBytes) / options.usableBytes, options.sampledEntries / catalog.count));
  const stride = 1 / sampleRate;
  const ranks: number[] = [];
  const cumulative: number[] = [];
  let total = 0;
  for (let position = 1 + (mix32(options.seed) / 2 ** 32) * (stride - 1); position <= catalog.count; position += stride) {
    const rank = Math.floor(position);
    if (catalog.sizeOf(rank) > options.cacheableMaxBytes) continue;
    total += Math.exp(-catalog.exponent * Math.log(rank)) * missRatioOf(rank);
    ranks.push(rank);
    cumulative.push(total);
  }
  const weights = Float64Array.from(cumulative);
  const draw = () => {
    const u = uniformFloat64(rng) * total;
    let low = 0;
    let high = weights.length - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (weights[middle]! < u) low = middle + 1;
      else high = middle;
    }
    return ranks[low]!;
  };

  const lru = new LRUCache<number, true>({
    maxSize: Math.max(1, Math.floor(options.usableBytes * sampleRate)),
    sizeCalculation: (_value, rank) => catalog.sizeOf(rank) + options.entryOverheadBytes,
  });
  let readBytes = 0;
  let hitBytes = 0;
  const bySize: Counts[] = catalog.sizes.map(() => ({ requests: 0, hits: 0 }));
  const request = (count: boolean): boolean => {
    const rank = draw();
    const hit = lru.get(rank) !== undefined;
    if (!hit) lru.set(rank, true);
    if (count) {
      const sizeClass = catalog.classOf(rank);
      const size = catalog.sizes[sizeClass]!.bytes;
      readBytes += size;
      bySize[sizeClass]!.requests++;
      if (hit) {
        hitBytes += size;
        bySize[sizeClass]!.hits++;
      }
    }
    return hit;
  };

  // Warm-up: until full (or as long as the measurement), then as many requests again.
  const budget = options.batchRequests * options.batches;
  let warmup = 0;
  while (lru.calculatedSize < lru.maxSize * 0.98 && warmup < budget) {
    request(false);
    warmup++;
  }
  for (let i = 0; i < warmup; i++) request(false);
  const ratios: number[] = [];
  for (let batch = 0; batch < options.batches; batch++) {
    let hits = 0;
    for (let i = 0; i < options.batchRequests; i++) if (request(true)) hits++;
    ratios.push(hits / options.batchRequests);
  }
  return {
    usableBytes: options.usableBytes,
    hitRatio: estimate(ratios, options.batchRequests),
    byteHitRatio: readBytes ? hitBytes / readBytes : 0,
    meanRequestBytes: readBytes / budget,
    entries: Math.round(lru.size / sampleRate),
    bySize,
    sampleRate,
    sampledDocuments: ranks.length,
  };
}
