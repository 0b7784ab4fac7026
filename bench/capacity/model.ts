import { readFileSync } from 'node:fs';
import {
  ALB,
  CLOUDFRONT,
  cloudFrontEgressUsd,
  DYNAMODB,
  EC2,
  EKS,
  ELASTICACHE,
  HOURS_PER_MONTH,
  internetEgressUsd,
  MESSAGING,
  NLB,
  REDIS_MAX_NODES_PER_CLUSTER,
  REDIS_USABLE_MEMORY_SHARE,
  S3,
  SECONDS_PER_MONTH,
  TRANSFER,
} from './aws.ts';
import { Catalog, ratioOf, simulateMemory, simulateRedis, type MemoryRun, type RedisRun, type SizeClass } from './simulate.ts';
import { FLUSH_MS as RATE_LIMIT_FLUSH_MS } from '../../src/http/batched-window-counter.ts';
import { RATE_LIMIT_WINDOW_MS } from '../../src/http/rate-limit.ts';
import { OUTBOX_SHARDS } from '../../src/outbox/outbox-store.ts';

// From the per-pod figures `make bench` measured and the parameters, the
// deployment for the targets: every tier's demand, its sizing and its cost.

export type Parameters = {
  targets: {
    documentReadsPerSecond: number;
    documentWritesPerSecond: number;
    documentDeletesPerSecond: number;
    documentListingsPerSecond: number;
    ordersPerSecond: number;
    orderReadsPerSecond: number;
    growth: number;
  };
  documents: {
    count: number;
    zipfExponent: number;
    sizes: SizeClass[];
    cacheableMaxBytes: number;
    inlineMaxBytes: number;
    metadataBytes: number;
    /** What an item holds for the listing: tenant, listPk, listSk. */
    listingAttributeBytes: number;
    writesWithIdempotencyKey: number;
  };
  /** GET /documents: pages of pageItems; a `listing` index entry (keys only) is about indexEntryBytes; the CPU of a page when the bench has no list-documents row. */
  listing: { pageItems: number; indexEntryBytes: number; assumedCpuMsPerPage: number };
  /** DOCUMENT_EVENTS (on by default): document.created and document.deleted through the outbox; what the event's attributes add to an item. */
  events: { enabled: boolean; itemAttributeBytes: number };
  orders: { itemBytes: number; withIdempotencyKey: number };
  api: {
    vcpuPerPod: number;
    targetCpuUtilization: number;
    memoryCacheBytes: number;
    podBaseMemoryMiB: number;
    maxInFlightRequests: number;
    nodeType: string;
    reservedVcpuPerNode: number;
    availabilityZones: number;
    responseHeaderBytes: number;
    requestBytes: number;
    cpuMsPerKiBSent: number;
    consumerCpuMsPerEvent: number;
    podIpsPerAz: number;
  };
  redis: { nodeType: string; replicasPerShard: number; minUsableGiB: number; planningUtilization: number; ttlSeconds: number; keyOverheadBytes: number };
  rateLimit: { enabled: boolean; largestTenantShare: number };
  loadBalancer: { requestsPerConnection: number; connectionSeconds: number };
  /**
   * Issue 21: documents in S3 at least redirectMinBytes large (DOCUMENT_REDIRECT_MIN_BYTES) are read
   * through a CloudFront signed link (a 307 from a plain GET, or GET …/link); followShare of those reads
   * follow it. The pods answer each such read with the link (linkResponseBytes, headers included).
   * Hit ratio: cacheLocations independent caches in front of the origin, an object unrequested for
   * retentionSeconds evicted (both assumed; CloudFront publishes neither).
   * A link's API CPU: memoHitCpuMsPerLink when the pod's memo already holds the document's URL
   * for the current expiry bucket (get-link's figure when the bench has it), uncachedCpuMsPerLink
   * otherwise (a GetItem for where the object is, and a signature); linkTtlSeconds is
   * DOCUMENT_LINK_TTL_SECONDS; the memo holds linkMemoMaxEntries URLs and linkMemoMaxBytes, an entry
   * counted as linkMemoEntryBytes (src/documents/links.ts: (URL + key) × 2 + 128; 1,754 B for a
   * CloudFront URL of a tenant/uuid/ulid key, measured with CloudFrontLinkSigner).
   */
  cdn: {
    enabled: boolean;
    redirectMinBytes: number;
    followShare: number;
    linkResponseBytes: number;
    memoHitCpuMsPerLink: number;
    uncachedCpuMsPerLink: number;
    linkTtlSeconds: number;
    linkMemoMaxEntries: number;
    linkMemoMaxBytes: number;
    linkMemoEntryBytes: number;
    cacheLocations: number;
    retentionSeconds: number;
  };
  /** The alternative to ALBs: an NLB (TCP) in front of an ingress tier of proxies that terminate TLS. */
  ingress: { requestsPerVcpuPerSecond: number; planningUtilization: number };
  /** Both egress price lists (EC2 and CloudFront) × this: 1 is the list price; committed use pays less. */
  transfer: { priceFactor: number };
  /** A burst of `factor` × the target: how fast the HPA, the Cluster Autoscaler and a new pod absorb it. */
  burst: {
    factor: number;
    metricsResolutionSeconds: number;
    hpaSyncSeconds: number;
    hpaMaxGrowth: number;
    autoscalerDecisionSeconds: number;
    nodeLaunchSeconds: number;
    imagePullSeconds: number;
    assumedPodStartSeconds: number;
    dynamodbBurstSeconds: number;
  };
  dynamodb: { planningUtilization: number };
  hotKeys: { documentReadsPerSecond: number; documentBytes: number; orderRetriesPerSecond: number };
  simulation: {
    seed: number;
    memory: { batches: number; batchPerPod: number; maxWarmupPerPod: number };
    redis: { batches: number; batchRequests: number; sampledEntries: number; seeds: number };
    memorySweepMiB: number[];
    podSweep: number[];
    byIdPodSweep: number[];
    redisSweepGiB: number[];
  };
};

/** The figures of bench/results/latest.json the model uses. */
export type BenchFigures = {
  date: string;
  commit: string;
  cpuModel: string;
  hotMsPerRead: number;
  /** get-hot's req/s over the ceiling's in the same slices (issue 21's target: 0.75). */
  hotRatioToCeiling: number;
  coldMsPerRead: number;
  /** A read answered from Redis (memory miss): `get-warm`, or the cold figure as an upper bound when the run has none. */
  warmMsPerRead: number;
  warmMeasured: boolean;
  msPerOrder: number;
  msPerDocumentWrite: number;
  /** A listing page of 100 (`list-documents`), or the parameters' assumption when the run has none. */
  msPerListingPage: number;
  listingMeasured: boolean;
  /** The list-documents row was merged into latest.json from a run of its own: that run's results file, and whether on a slower host. */
  listingRun: MergedRun | undefined;
  /** post-documents-events-on against -off of the same run: CPU per request and req/s, when the run has them. */
  eventsRatios: { cpu: number; throughput: number } | undefined;
  burstRate: number;
  burstP95Ms: number;
  /** A direct link whose URL the pod has memoised (`get-link`: one hot document), or the parameters' assumption when the run has none. */
  memoHitMsPerLink: number;
  linkMeasured: boolean;
  /** What a key and the rate limit add to a request's API CPU: the hot read's, times `get-hot-api-key` over `get-hot-auth-off` less one. */
  authMsPerRequest: number;
  authRun: MergedRun | undefined;
};

/** Where a row merged into latest.json from a run of its own was measured. */
export type MergedRun = { file: string; slowerHost: boolean };

type BenchScenario = {
  name: string;
  skipped?: string;
  cpu?: { serverMsPerOk: number | null; serverUsPerOk?: number | null };
  requestsPerSecond?: number;
  ratioToCeiling?: number | null;
  latencyMs?: { p95: number };
  notes?: string[];
};
type BenchResults = { date: string; revision: { commit: string | null }; machine: { cpuModel: string }; scenarios: BenchScenario[] };

/** A row merged from a run of its own says so in a note: "measured <date> at <commit> by … (results/<file>), on a slower host …". */
function runOf(row: BenchScenario): MergedRun | undefined {
  const merged = row.notes?.find((note) => note.startsWith('measured '));
  const file = merged && /\((results\/[^)]+)\)/.exec(merged)?.[1];
  return file ? { file, slowerHost: merged.includes('slower host') } : undefined;
}

/** CPU per answer in ms, from the µs figure where the run has one: three decimals of a ms are 3 % of a cached read. */
function msPerOk(row: BenchScenario): number {
  return row.cpu?.serverUsPerOk ? Math.round(row.cpu.serverUsPerOk * 100) / 100_000 : row.cpu!.serverMsPerOk!;
}

export function readBench(path: string, parameters: Parameters): BenchFigures {
  const results = JSON.parse(readFileSync(path, 'utf8')) as BenchResults;
  const scenario = (name: string) => {
    const found = results.scenarios.find((entry) => entry.name === name && !entry.skipped);
    if (!found?.cpu?.serverMsPerOk) throw new Error(`${path} has no measured ${name}: run make bench`);
    return found;
  };
  const burst = scenario('orders-burst');
  const hot = scenario('get-hot');
  if (!hot.ratioToCeiling) throw new Error(`${path} has no ratio of get-hot to the ceiling: run make bench`);
  const measured = (name: string) => results.scenarios.find((entry) => entry.name === name && !entry.skipped && entry.cpu?.serverMsPerOk);
  const warm = measured('get-warm');
  const listing = measured('list-documents');
  const link = measured('get-link');
  const [eventsOff, eventsOn] = [measured('post-documents-events-off'), measured('post-documents-events-on')];
  const ratio = (on: number, off: number) => Math.round((on / off) * 1000) / 1000;
  const listingRun = listing && runOf(listing);
  return {
    date: results.date,
    commit: results.revision.commit ?? 'unknown',
    cpuModel: results.machine.cpuModel,
    hotMsPerRead: msPerOk(hot),
    hotRatioToCeiling: hot.ratioToCeiling,
    coldMsPerRead: msPerOk(scenario('get-cold')),
    warmMsPerRead: warm ? msPerOk(warm) : msPerOk(scenario('get-cold')),
    warmMeasured: warm !== undefined,
    msPerOrder: msPerOk(scenario('post-orders')),
    msPerDocumentWrite: msPerOk(scenario('post-documents-small')),
    msPerListingPage: listing ? msPerOk(listing) : parameters.listing.assumedCpuMsPerPage,
    listingMeasured: listing !== undefined,
    listingRun,
    eventsRatios:
      eventsOff && eventsOn
        ? { cpu: ratio(msPerOk(eventsOn), msPerOk(eventsOff)), throughput: ratio(eventsOn.requestsPerSecond!, eventsOff.requestsPerSecond!) }
        : undefined,
    burstRate: burst.requestsPerSecond!,
    burstP95Ms: burst.latencyMs!.p95,
    memoHitMsPerLink: link ? msPerOk(link) : parameters.cdn.memoHitCpuMsPerLink,
    linkMeasured: link !== undefined,
    // A ratio of two rows of one run, applied to this file's hot read: the rows may come from a run of their own on another host.
    authMsPerRequest: msPerOk(hot) * Math.max(0, msPerOk(scenario('get-hot-api-key')) / msPerOk(scenario('get-hot-auth-off')) - 1),
    authRun: runOf(scenario('get-hot-api-key')),
  };
}

/**
 * The figures with get-hot at another ratio to the ceiling: its CPU per answer
 * goes as 1 / req/s, since get-hot and the ceiling each keep one core busy in the bench.
 */
export function hotReadAt<T extends Pick<BenchFigures, 'hotMsPerRead' | 'hotRatioToCeiling'>>(bench: T, ratioToCeiling: number): T {
  return { ...bench, hotMsPerRead: (bench.hotMsPerRead * bench.hotRatioToCeiling) / ratioToCeiling };
}

// ------------------------------------------------------------ hit ratios

export type MemoryRuns = {
  catalog: Catalog;
  memory: MemoryRun;
  memorySweep: MemoryRun[];
  podSweep: MemoryRun[];
  byIdSweep: MemoryRun[];
  seconds: number;
};

export type HitRatios = MemoryRuns & {
  /** One per seed (a different sample of ids each): their spread is the sampling error. */
  redisRuns: RedisRun[];
  redis: RedisRun;
  redisSweep: RedisRun[];
};

/** The process-memory layer: the configured size, then the sweeps over size, pod count and routing. */
export function simulateMemoryRuns(parameters: Parameters): MemoryRuns {
  const started = performance.now();
  const { documents, simulation } = parameters;
  const catalog = new Catalog(documents.count, documents.zipfExponent, documents.sizes);
  const memoryAt = (memoryBytes: number, pods: number, routing: 'random' | 'by-id') =>
    simulateMemory(catalog, { memoryBytes, cacheableMaxBytes: documents.cacheableMaxBytes, pods, routing, seed: simulation.seed, ...simulation.memory });
  const configured = parameters.api.memoryCacheBytes;
  const memory = memoryAt(configured, 1, 'random');
  const memorySweep = simulation.memorySweepMiB.map((size) => (size * 2 ** 20 === configured ? memory : memoryAt(size * 2 ** 20, 1, 'random')));
  const podSweep = simulation.podSweep.map((pods) => (pods === 1 ? memory : memoryAt(configured, pods, 'random')));
  const byIdSweep = simulation.byIdPodSweep.map((pods) => memoryAt(configured, pods, 'by-id'));
  return { catalog, memory, memorySweep, podSweep, byIdSweep, seconds: (performance.now() - started) / 1000 };
}

/** The Redis layer at `usableBytes` (several samples of ids), and the sweep over its size. */
export function simulateHitRatios(parameters: Parameters, memoryRuns: MemoryRuns, usableBytes: number, sweep = true): HitRatios {
  const started = performance.now();
  const { documents, simulation } = parameters;
  const { catalog, memory } = memoryRuns;
  const redisAt = (bytes: number, seed: number) =>
    simulateRedis(catalog, memory, {
      usableBytes: bytes,
      cacheableMaxBytes: documents.cacheableMaxBytes,
      entryOverheadBytes: documents.metadataBytes + parameters.redis.keyOverheadBytes,
      seed,
      ...simulation.redis,
    });
  // A first pass that only sizes the shards takes one sample; the reported one takes all.
  const redisRuns = Array.from({ length: sweep ? simulation.redis.seeds : 1 }, (_, i) => redisAt(usableBytes, simulation.seed + 100 + i));
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const redis: RedisRun = {
    ...redisRuns[0]!,
    hitRatio: { ...redisRuns[0]!.hitRatio, mean: mean(redisRuns.map((run) => run.hitRatio.mean)) },
    byteHitRatio: mean(redisRuns.map((run) => run.byteHitRatio)),
    meanRequestBytes: mean(redisRuns.map((run) => run.meanRequestBytes)),
    entries: Math.round(mean(redisRuns.map((run) => run.entries))),
    bySize: catalog.sizes.map((_, i) => ({
      requests: redisRuns.reduce((sum, run) => sum + run.bySize[i]!.requests, 0),
      hits: redisRuns.reduce((sum, run) => sum + run.bySize[i]!.hits, 0),
    })),
  };
  const redisSweep = sweep ? simulation.redisSweepGiB.map((gib) => redisAt(gib * 2 ** 30, simulation.seed + 100)) : [];
  return { ...memoryRuns, redisRuns, redis, redisSweep, seconds: memoryRuns.seconds + (performance.now() - started) / 1000 };
}

// ------------------------------------------------------------ the model

const ceil = Math.ceil;

/** Zipf normaliser: the sum of k^-s for k = 1..n (integral approximation past 10^6 terms). */
function harmonic(n: number, s: number): number {
  const exact = Math.min(n, 1_000_000);
  let sum = 0;
  for (let k = 1; k <= exact; k++) sum += k ** -s;
  if (n > exact) {
    const integral = (x: number) => (s === 1 ? Math.log(x) : x ** (1 - s) / (1 - s));
    sum += integral(n + 0.5) - integral(exact + 0.5);
  }
  return sum;
}

/**
 * The share of requests a CDN answers from cache (the rest are origin fetches), for a Zipf
 * popularity (exponent s over n documents, readsPerSecond in all) spread evenly over `locations`
 * independent caches that keep an object until it goes `retentionSeconds` unrequested: Che's
 * approximation, where a request hits when the same object was asked at the same cache within
 * the retention, probability 1 - exp(-λT/L) for an object read λ times a second. Immutable
 * content (a document's key names one upload): nothing is invalidated, only evicted.
 */
export function cdnHitRatio(readsPerSecond: number, n: number, s: number, locations: number, retentionSeconds: number): number {
  const norm = harmonic(n, s);
  const a = (readsPerSecond * retentionSeconds) / (locations * norm);
  return zipfSum(n, (k) => k ** -s * (1 - Math.exp(-a * k ** -s))) / norm;
}

/**
 * Σ term(k) for k = 1..n, exact for the first million terms; past them the terms of a Zipf
 * catalogue change slowly, so the tail is integrated over ln k (Simpson: term(x) dx with x = e^u).
 */
function zipfSum(n: number, term: (k: number) => number): number {
  const exact = Math.min(n, 1_000_000);
  let sum = 0;
  for (let k = 1; k <= exact; k++) sum += term(k);
  if (n > exact) {
    const [from, to] = [Math.log(exact + 0.5), Math.log(n + 0.5)];
    const steps = 2000;
    const h = (to - from) / steps;
    const f = (u: number) => term(Math.exp(u)) * Math.exp(u);
    let integral = f(from) + f(to);
    for (let i = 1; i < steps; i++) integral += f(from + i * h) * (i % 2 ? 4 : 2);
    sum += (integral * h) / 3;
  }
  return sum;
}

/** The expiry bucket of a link (seconds): src/documents/links.ts's expiryBucketMs, min(60 s, TTL / 5). */
export function linkBucketSeconds(ttlSeconds: number): number {
  return Math.min(60, ttlSeconds / 5);
}

/**
 * The share of a pod's link requests its memo of signed URLs answers, within one expiry bucket:
 * `n` requests (real, not necessarily whole) drawn from `documents` linked documents of Zipf
 * popularity (exponent s, p_j = j^-s / H), each document's first request in the bucket signed, the
 * others memo hits. Expected distinct documents E[D] = Σ_j (1 - (1 - p_j)^n), hit = 1 - E[D] / n.
 * The memo holds `maxEntries` URLs: within a bucket its entries are all more recent than the past
 * buckets', so while E[D] ≤ maxEntries none is evicted; above, the bound is the hit ratio of a memo
 * that keeps the maxEntries most popular documents (the best any cache of that size does under
 * independent requests): every request for a document past that rank is a miss.
 */
export function linkMemoHitRatio(documents: number, s: number, n: number, maxEntries = Infinity) {
  if (n <= 0 || documents <= 0) return { hit: 0, distinct: 0, capped: false };
  const norm = harmonic(documents, s);
  // 1 - (1 - p)^n without the rounding of 1 - p for small p.
  const seen = (j: number) => -Math.expm1(n * Math.log1p(-(j ** -s) / norm));
  const distinct = zipfSum(documents, seen);
  const top = Math.min(documents, maxEntries);
  const distinctOfTop = top === documents ? distinct : zipfSum(top, seen);
  const shareOfTop = harmonic(top, s) / norm;
  if (distinct <= maxEntries) return { hit: 1 - distinct / n, distinct, capped: false };
  return { hit: 1 - (distinctOfTop + n * (1 - shareOfTop)) / n, distinct, capped: true };
}

/** Whether reads of a document this large go through a link: only content in S3 (above inlineMaxBytes) has one, from DOCUMENT_REDIRECT_MIN_BYTES on. */
function isLinked(bytes: number, p: Pick<Parameters, 'cdn'> & { documents: Pick<Parameters['documents'], 'inlineMaxBytes'> }): boolean {
  return p.cdn.enabled && bytes > p.documents.inlineMaxBytes && bytes >= p.cdn.redirectMinBytes;
}

/** Which reads go through a link to CloudFront, what they cost there, and what the pods still send. */
export function cdnTier(
  classes: ReadonlyArray<{ bytes: number; reads: number }>,
  p: Pick<Parameters, 'cdn'> & { documents: Pick<Parameters['documents'], 'inlineMaxBytes'>; api: Pick<Parameters['api'], 'responseHeaderBytes'>; transfer: Parameters['transfer'] },
  hitRatio: number,
  newDocumentsPerSecond = 0,
) {
  const { cdn } = p;
  const totalReads = classes.reduce((sum, entry) => sum + entry.reads, 0);
  const perClass = classes.map((entry) => {
    const linked = isLinked(entry.bytes, p);
    const viaLink = linked ? entry.reads * cdn.followShare : 0;
    // A new document's first read at each cache is a miss whatever its popularity (sizes are drawn like the reads').
    const compulsory = linked && totalReads > 0 ? newDocumentsPerSecond * (entry.reads / totalReads) * cdn.cacheLocations : 0;
    return { bytes: entry.bytes, viaLink, compulsory, originFetches: viaLink * (1 - hitRatio) + compulsory, bytesOut: viaLink * (entry.bytes + p.api.responseHeaderBytes) };
  });
  const compulsoryFetches = perClass.reduce((sum, entry) => sum + entry.compulsory, 0);
  const viaLink = perClass.reduce((sum, entry) => sum + entry.viaLink, 0);
  const bytesPerSecond = perClass.reduce((sum, entry) => sum + entry.bytesOut, 0);
  const gbPerMonth = (bytesPerSecond * SECONDS_PER_MONTH) / 1e9;
  const requestsPerMonth = viaLink * SECONDS_PER_MONTH;
  return {
    perClass,
    viaLink,
    originFetches: perClass.reduce((sum, entry) => sum + entry.originFetches, 0),
    compulsoryFetches,
    hitRatio,
    bytesPerSecond,
    gbPerMonth,
    egressUsd: cloudFrontEgressUsd(gbPerMonth) * p.transfer.priceFactor,
    requestsUsd: (requestsPerMonth / 10_000) * CLOUDFRONT.httpsUsdPer10kRequests,
  };
}

/** How many ALBs: one per published reservable LCU ceiling, and one per 1,000 targets (pods as IP targets). */
export function albCount(lcus: number, targets: number) {
  const byLcu = Math.ceil(lcus / ALB.reservedLcuPerLoadBalancer);
  const byTargets = Math.ceil(targets / ALB.targetsPerLoadBalancer);
  return { byLcu, byTargets, count: Math.max(1, byLcu, byTargets) };
}

export type Limit = { what: string; demand: number; limit: number; unit: string; fix: string };

export type Deployment = ReturnType<typeof sizeDeployment>;

/** Everything at `scale` × the targets (1 for the targets, `growth` for the bottleneck question). */
export function sizeDeployment(parameters: Parameters, bench: BenchFigures, hits: HitRatios, scale: number) {
  const { documents, api, redis: redisParameters, orders: orderParameters } = parameters;
  const reads = parameters.targets.documentReadsPerSecond * scale;
  const writes = parameters.targets.documentWritesPerSecond * scale;
  const deletes = parameters.targets.documentDeletesPerSecond * scale;
  const listings = parameters.targets.documentListingsPerSecond * scale;
  const { listing, events } = parameters;
  const orders = parameters.targets.ordersPerSecond * scale;
  const orderReads = parameters.targets.orderReadsPerSecond * scale;
  const sizes = hits.catalog.sizes;
  const meanSize = sizes.reduce((sum, size) => sum + size.share * size.bytes, 0);

  // ---- read path, by layer and size class
  const classes = sizes.map((size, i) => {
    const classReads = reads * size.share;
    const cacheable = size.bytes <= documents.cacheableMaxBytes;
    const memoryHits = cacheable ? classReads * ratioOf(hits.memory.bySize[i]) : 0;
    const redisGets = cacheable ? classReads - memoryHits : 0;
    const redisHits = redisGets * ratioOf(hits.redis.bySize[i]);
    return { bytes: size.bytes, reads: classReads, cacheable, memoryHits, redisGets, redisHits, redisMisses: redisGets - redisHits, uncacheable: cacheable ? 0 : classReads };
  });
  const sum = (pick: (entry: (typeof classes)[number]) => number) => classes.reduce((total, entry) => total + pick(entry), 0);
  const memoryHits = sum((entry) => entry.memoryHits);
  const redisGets = sum((entry) => entry.redisGets);
  const redisHits = sum((entry) => entry.redisHits);
  const redisMisses = sum((entry) => entry.redisMisses);
  const uncacheableReads = sum((entry) => entry.uncacheable);
  const cdnHit = parameters.cdn.enabled
    ? cdnHitRatio(reads, documents.count, documents.zipfExponent, parameters.cdn.cacheLocations, parameters.cdn.retentionSeconds)
    : 0;
  const cdn = cdnTier(classes, parameters, cdnHit, writes);
  /** The share of a class's reads answered with a link rather than the bytes. */
  const linkShareOf = (i: number) => (classes[i]!.reads > 0 ? cdn.perClass[i]!.viaLink / classes[i]!.reads : 0);
  // A key lives ttlSeconds from its fill and hits do not extend it: each held key costs one refill per TTL at most.
  const ttlRefills = Math.min(redisHits, hits.redis.entries / redisParameters.ttlSeconds);
  const refillShare = redisHits > 0 ? ttlRefills / redisHits : 0;
  /** Reads that reach the table (and S3 for content above the inline size), per class. */
  const storeReadsOf = (entry: (typeof classes)[number]) => entry.redisMisses + entry.redisHits * refillShare + entry.uncacheable;
  const storeReads = sum(storeReadsOf);

  const requests = reads + writes + deletes + listings + orders + orderReads;
  // ---- API CPU: ms per request as measured (1 KiB hot, 256 B cold); bytes above 1 KiB at an assumed cost per KiB
  const perKiB = (bytes: number) => Math.max(0, bytes / 1024 - 1) * api.cpuMsPerKiBSent;
  // Everything but the links; a read answered with a link costs the link's CPU (lookup and signature) instead of sending the bytes.
  const otherCpuMs =
    classes.reduce(
      (total, entry, i) =>
        total +
        (1 - linkShareOf(i)) *
          (entry.memoryHits * (bench.hotMsPerRead + perKiB(entry.bytes)) +
            entry.redisHits * (1 - refillShare) * (bench.warmMsPerRead + perKiB(entry.bytes)) +
            (entry.reads - entry.memoryHits - entry.redisHits * (1 - refillShare)) * (bench.coldMsPerRead + perKiB(entry.bytes))),
      0,
    ) +
    writes * (bench.msPerDocumentWrite + perKiB(meanSize)) +
    deletes * bench.coldMsPerRead +
    listings * bench.msPerListingPage +
    orders * bench.msPerOrder +
    orderReads * bench.coldMsPerRead +
    // Every request has a key and is counted by the rate limit (AUTH_MODE=api-key), links included.
    (parameters.rateLimit.enabled ? requests * bench.authMsPerRequest : 0);
  const podsAt = (cpuMs: number) => Math.max(api.availabilityZones * 2, ceil(cpuMs / 1000 / (api.vcpuPerPod * api.targetCpuUtilization)));
  // A link: a memo hit when the pod signed the document's URL earlier in the same expiry bucket, else
  // the uncached price. The hit ratio depends on the links per pod, so on the pods, which depend on
  // the link's CPU: size once with every link uncached (more pods, fewer links each: a lower hit
  // ratio), take the hit ratio there, and size again with it. Sizes are independent of popularity,
  // so the linked documents' popularity is Zipf over them alone.
  const cdnParameters = parameters.cdn;
  const linkedShare = sizes.reduce((total, size) => total + (isLinked(size.bytes, parameters) ? size.share : 0), 0);
  const linkedDocuments = Math.round(documents.count * linkedShare);
  const bucketSeconds = linkBucketSeconds(cdnParameters.linkTtlSeconds);
  const firstPassPods = podsAt(otherCpuMs + cdn.viaLink * cdnParameters.uncachedCpuMsPerLink);
  const linksPerPodPerBucket = (cdn.viaLink / firstPassPods) * bucketSeconds;
  const memoEntries = Math.min(cdnParameters.linkMemoMaxEntries, Math.floor(cdnParameters.linkMemoMaxBytes / cdnParameters.linkMemoEntryBytes));
  const memo = linkMemoHitRatio(linkedDocuments, documents.zipfExponent, linksPerPodPerBucket, memoEntries);
  const linkMs = memo.hit * bench.memoHitMsPerLink + (1 - memo.hit) * cdnParameters.uncachedCpuMsPerLink;
  const link = { linkedDocuments, bucketSeconds, firstPassPods, memoEntries, linksPerPodPerBucket, ...memo, linkMs, linkCores: (cdn.viaLink * linkMs) / 1000 };
  const cpuMs = otherCpuMs + cdn.viaLink * linkMs;
  const apiCores = cpuMs / 1000;
  const podsForCpu = ceil(apiCores / (api.vcpuPerPod * api.targetCpuUtilization));
  const apiPods = podsAt(cpuMs);
  const perPodRps = requests / apiPods;
  // A page's JSON: about the metadata of each of its items.
  const listingPageBytes = listing.pageItems * documents.metadataBytes;
  const meanResponseBytes = (reads * meanSize + (writes + orders) * 300 + listings * listingPageBytes) / requests + api.responseHeaderBytes;
  const podMemoryMiB = api.podBaseMemoryMiB + (api.memoryCacheBytes * 1.25) / 2 ** 20 + (api.maxInFlightRequests * meanResponseBytes) / 2 ** 20;
  const consumerCores = (orders * api.consumerCpuMsPerEvent) / 1000;
  const consumerPods = Math.max(2, ceil(consumerCores / api.targetCpuUtilization));
  const relayPods = 2;
  const node = EC2[api.nodeType]!;
  const podsPerNode = Math.floor((node.vcpu - api.reservedVcpuPerNode) / api.vcpuPerPod);
  const nodes = ceil((apiPods + consumerPods + relayPods) / podsPerNode);
  const nodeGroups = ceil(nodes / EKS.nodesPerNodeGroup);

  // ---- Redis
  const cacheNode = ELASTICACHE[redisParameters.nodeType]!;
  // The rate limit's counts (BatchedWindowCounter): the largest tenant's, spread over every pod, go in one
  // INCRBY per pod every flush interval, but for each pod's first interval of a window (its pace, counted
  // one by one); the other tenants' are counted one call per request, an upper bound (some are batched too).
  const largestTenantRequests = requests * parameters.rateLimit.largestTenantShare;
  const hotTenantOps = parameters.rateLimit.enabled
    ? Math.min(largestTenantRequests, apiPods * (1000 / RATE_LIMIT_FLUSH_MS) + largestTenantRequests * (RATE_LIMIT_FLUSH_MS / RATE_LIMIT_WINDOW_MS))
    : 0;
  const rateLimitOps = parameters.rateLimit.enabled ? requests - largestTenantRequests + hotTenantOps : 0;
  const fills = redisMisses + ttlRefills;
  const redisOps = redisGets + fills + rateLimitOps + deletes * 2;
  const valueBytes = (bytes: number) => bytes + documents.metadataBytes;
  const fillBytesPerSecond = sum((entry) => (entry.redisMisses + entry.redisHits * refillShare) * valueBytes(entry.bytes));
  const redisBytesPerSecond = sum((entry) => entry.redisHits * valueBytes(entry.bytes)) + fillBytesPerSecond + rateLimitOps * 100;
  const usablePerNodeGiB = cacheNode.memoryGiB * REDIS_USABLE_MEMORY_SHARE;
  const shardsForOps = ceil(redisOps / (cacheNode.opsPerSecond * redisParameters.planningUtilization));
  const shardsForNetwork = ceil((redisBytesPerSecond * 8) / (cacheNode.baselineGbps * 1e9 * redisParameters.planningUtilization));
  const shardsForMemory = ceil(redisParameters.minUsableGiB / usablePerNodeGiB);
  const shards = Math.max(shardsForOps, shardsForNetwork, shardsForMemory, 1);
  const redisNodes = shards * (1 + redisParameters.replicasPerShard);

  // ---- DynamoDB (GetItem is strongly consistent: one RCU per 4 KB of item)
  const readUnits = (bytes: number) => ceil(bytes / DYNAMODB.readUnitBytes);
  const writeUnits = (bytes: number) => ceil(bytes / DYNAMODB.writeUnitBytes);
  // Content up to the inline size sits in the item; above it the item holds the S3 key. Every item is
  // in the listing (tenant, listPk, listSk); with events on, it keeps its event's state too.
  const itemBytes = (size: number) =>
    documents.metadataBytes + documents.listingAttributeBytes + (events.enabled ? events.itemAttributeBytes : 0) + (size <= documents.inlineMaxBytes ? size : 60);
  const readRcu = sum((entry) => storeReadsOf(entry) * readUnits(itemBytes(entry.bytes)));
  const rcuPerStoreRead = storeReads > 0 ? readRcu / storeReads : 0;
  /** The put of a create's item, over the size mix. */
  const itemWcuPerCreate = sizes.reduce((total, size) => total + size.share * writeUnits(itemBytes(size.bytes)), 0);
  // The sparse `listing` index (keys only, under 1 KB an entry): in with each create, out with each delete.
  const listingWcuPerCreate = writeUnits(listing.indexEntryBytes);
  const listingWcuPerDelete = writeUnits(listing.indexEntryBytes);
  // Events: the `outbox` index entry in and out; the mark that the event is published is an UpdateItem of
  // the document's item, charged on the whole item (content inline included): as much as the put again.
  const eventWcuPerCreate = events.enabled ? 2 + itemWcuPerCreate : 0;
  // Events: the deletion event's own item (put), its outbox entry in and out, and its mark.
  const eventWcuPerDelete = events.enabled ? 1 + 2 + 1 : 0;
  const tombstoneWcu = writeUnits(itemBytes(1));
  const documentWcu = writes * (itemWcuPerCreate + listingWcuPerCreate + eventWcuPerCreate) + deletes * (tombstoneWcu + listingWcuPerDelete + eventWcuPerDelete);
  const eventWcu = writes * eventWcuPerCreate + deletes * eventWcuPerDelete;
  // A listing page: a Query of the index (eventually consistent: half a unit per 4 KB of the entries read),
  // then a consistent BatchGetItem of its items, each charged on its whole size though only the metadata is returned.
  const queryRcuPerPage = ceil((listing.pageItems * listing.indexEntryBytes) / DYNAMODB.readUnitBytes) * DYNAMODB.eventuallyConsistentShare;
  const batchRcuPerPage = listing.pageItems * sizes.reduce((total, size) => total + size.share * readUnits(itemBytes(size.bytes)), 0);
  const listingRcu = listings * (queryRcuPerPage + batchRcuPerPage);
  const documentRcu = readRcu + listingRcu;
  const idempotencyWcu = (writes * documents.writesWithIdempotencyKey + orders * orderParameters.withIdempotencyKey) * 2;
  // Dedup claim, order insert, markPublished; the outbox index takes the insert and the removal.
  const orderWcu = orders * (1 + 2 * writeUnits(orderParameters.itemBytes));
  const orderRcu = orderReads;
  const outboxGsiWcu = orders * 2;
  const outboxPerShardWcu = outboxGsiWcu / OUTBOX_SHARDS.length;
  const documentOutboxPerShardWcu = events.enabled ? ((writes + deletes) * 2) / OUTBOX_SHARDS.length : 0;
  // One tenant's listing is one partition key of the index: its creates and deletes all write there.
  const listingWcuOfLargestTenant = (writes * listingWcuPerCreate + deletes * listingWcuPerDelete) * parameters.rateLimit.largestTenantShare;
  const consumerWcu = orders * 3;
  const tables = [
    { name: 'documents (+ listing, outbox GSIs)', rcu: documentRcu, wcu: documentWcu, storageGb: (documents.count * sizes.reduce((total, size) => total + size.share * itemBytes(size.bytes), 0)) / 1e9 },
    { name: 'orders (+ outbox GSI)', rcu: orderRcu, wcu: orderWcu + outboxGsiWcu, storageGb: 0 },
    { name: 'idempotency-keys', rcu: 0, wcu: idempotencyWcu, storageGb: 0 },
    { name: 'order-consumer', rcu: 0, wcu: consumerWcu, storageGb: 0 },
  ].map((table) => ({
    ...table,
    partitions: Math.max(1, ceil(table.rcu / DYNAMODB.partitionRcu), ceil(table.wcu / DYNAMODB.partitionWcu), ceil(table.storageGb / DYNAMODB.partitionGb)),
    quotaNeeded: Math.max(table.rcu, table.wcu) > DYNAMODB.onDemandTableQuota,
    onDemandUsd: (table.rcu * DYNAMODB.onDemandUsdPerMillionReads + table.wcu * DYNAMODB.onDemandUsdPerMillionWrites) * (SECONDS_PER_MONTH / 1e6),
    provisionedUsd:
      ((table.rcu * DYNAMODB.provisionedUsdPerRcuHour + table.wcu * DYNAMODB.provisionedUsdPerWcuHour) / parameters.dynamodb.planningUtilization) * HOURS_PER_MONTH,
    storageUsd: table.storageGb * DYNAMODB.storageUsdPerGbMonth,
  }));

  // ---- S3 (content above the inline size)
  // A read through a link needs the item (its S3 key), not the content: the content comes from CloudFront, which fetches on a miss.
  const s3Gets = classes.reduce((total, entry, i) => total + (entry.bytes > documents.inlineMaxBytes ? storeReadsOf(entry) * (1 - linkShareOf(i)) : 0), 0) + cdn.originFetches;
  const s3Puts = writes * sizes.filter((size) => size.bytes > documents.inlineMaxBytes).reduce((total, size) => total + size.share, 0);
  const s3StorageGb = (documents.count * sizes.filter((size) => size.bytes > documents.inlineMaxBytes).reduce((total, size) => total + size.share * size.bytes, 0)) / 1e9;
  const zipfNorm = harmonic(documents.count, documents.zipfExponent);
  // The most read document too large to cache: the first rank whose size class is above the limit.
  let hottestUncacheableRank = 0;
  for (let rank = 1; rank <= Math.min(documents.count, 10_000_000); rank++) {
    if (hits.catalog.sizeOf(rank) > documents.cacheableMaxBytes) {
      hottestUncacheableRank = rank;
      break;
    }
  }
  const hottestUncacheableRps = hottestUncacheableRank ? (reads * hottestUncacheableRank ** -documents.zipfExponent) / zipfNorm : 0;
  const hottestRps = reads / zipfNorm;

  // ---- SNS, SQS (document events go to subscribers of other systems: no SQS of ours)
  const documentEventPublishes = events.enabled ? writes + deletes : 0;
  const snsPublishes = orders + documentEventPublishes;
  const sqsRequests = orders * 1.2; // SNS delivery, receive and delete batches of 10, some empty receives

  // ---- load balancer
  const responseBytesPerSecond =
    classes.reduce((total, entry, i) => total + (entry.reads - cdn.perClass[i]!.viaLink) * (entry.bytes + api.responseHeaderBytes) + cdn.perClass[i]!.viaLink * parameters.cdn.linkResponseBytes, 0) + (writes + orders + deletes + orderReads) * (300 + api.responseHeaderBytes) + listings * (listingPageBytes + api.responseHeaderBytes);
  const requestBytesPerSecond = requests * api.requestBytes + writes * meanSize;
  const processedGbPerHour = ((responseBytesPerSecond + requestBytesPerSecond) * 3600) / 1e9;
  const newConnections = requests / parameters.loadBalancer.requestsPerConnection;
  const activeConnections = newConnections * parameters.loadBalancer.connectionSeconds;
  const lcus = Math.max(processedGbPerHour / ALB.gbPerHourPerLcu, newConnections / ALB.newConnectionsPerLcu, activeConnections / ALB.activeConnectionsPerLcu);
  const albs = albCount(lcus, apiPods);
  const albUsd = (albs.count * ALB.usdPerHour + lcus * ALB.usdPerLcuHour) * HOURS_PER_MONTH;
  // The alternative: an NLB passes TCP to proxies (TLS, HTTP routing) sized by CPU and by network.
  const nlcus = Math.max(processedGbPerHour / NLB.gbPerHourPerNlcu, newConnections / NLB.newConnectionsPerNlcu, activeConnections / NLB.activeConnectionsPerNlcu);
  const ingressVcpu = requests / (parameters.ingress.requestsPerVcpuPerSecond * parameters.ingress.planningUtilization);
  const ingressNodesForCpu = ceil(ingressVcpu / (node.vcpu - api.reservedVcpuPerNode));
  const ingressNodesForNetwork = ceil(((responseBytesPerSecond + requestBytesPerSecond) * 8) / (node.baselineGbps * 1e9 * parameters.ingress.planningUtilization));
  const ingressNodes = Math.max(api.availabilityZones, ingressNodesForCpu, ingressNodesForNetwork);
  const nlbCount = Math.max(1, ceil(ingressNodes / (NLB.targetsPerAz * api.availabilityZones)));
  const nlbUsd = (nlbCount * NLB.usdPerHour + nlcus * NLB.usdPerNlcuHour) * HOURS_PER_MONTH;
  const ingressUsd = ingressNodes * node.usdPerHour * HOURS_PER_MONTH;

  // ---- transfer
  const internetGbPerMonth = (responseBytesPerSecond * SECONDS_PER_MONTH) / 1e9;
  const crossAzShare = (api.availabilityZones - 1) / api.availabilityZones;
  const crossAzBytesPerSecond = redisBytesPerSecond * crossAzShare + fillBytesPerSecond * redisParameters.replicasPerShard;
  const crossAzGbPerMonth = (crossAzBytesPerSecond * SECONDS_PER_MONTH) / 1e9;

  // ---- cost, per month
  const dynamoOnDemand = tables.reduce((sum, table) => sum + table.onDemandUsd + table.storageUsd, 0);
  const dynamoProvisioned = tables.reduce((sum, table) => sum + table.provisionedUsd + table.storageUsd, 0);
  const cost = [
    { item: `EKS cluster and ${nodes} × ${node.name} nodes`, usd: EKS.usdPerClusterHour * HOURS_PER_MONTH + nodes * node.usdPerHour * HOURS_PER_MONTH },
    { item: `ElastiCache ${redisNodes} × ${cacheNode.name}`, usd: redisNodes * cacheNode.usdPerHour * HOURS_PER_MONTH },
    { item: 'DynamoDB, provisioned at the planning utilisation (on-demand below)', usd: dynamoProvisioned },
    { item: 'S3 requests and storage', usd: ((s3Gets * S3.usdPerThousandGets + s3Puts * S3.usdPerThousandPuts) / 1000) * SECONDS_PER_MONTH + s3StorageGb * S3.storageUsdPerGbMonth },
    { item: 'SNS publishes, SQS requests', usd: ((snsPublishes * MESSAGING.snsUsdPerMillionPublishes + sqsRequests * MESSAGING.sqsUsdPerMillionRequests) / 1e6) * SECONDS_PER_MONTH },
    { item: `${albs.count} Application Load Balancer${albs.count === 1 ? '' : 's'}, ${Math.round(lcus).toLocaleString('en-US')} LCU`, usd: albUsd },
    { item: 'Internet egress from the pods (through the load balancers)', usd: internetEgressUsd(internetGbPerMonth) * parameters.transfer.priceFactor },
    ...(parameters.cdn.enabled ? [{ item: 'CloudFront: data out (its tiers) and HTTPS requests', usd: cdn.egressUsd + cdn.requestsUsd }] : []),
    { item: 'Cross-AZ transfer (pods ↔ Redis, replication)', usd: crossAzGbPerMonth * TRANSFER.crossAzUsdPerGbEachWay * 2 },
  ];

  // ---- limits: demand against what one thing can take
  const limits: Limit[] = [
    {
      what: `outbox GSI: writes per shard key (${OUTBOX_SHARDS.length} shards, sort key rising with time)`,
      demand: outboxPerShardWcu,
      limit: DYNAMODB.partitionWcu,
      unit: 'WCU/s',
      fix: `OUTBOX_SHARDS ≥ ${ceil(outboxGsiWcu / (DYNAMODB.partitionWcu * parameters.dynamodb.planningUtilization))} (src/outbox/outbox-store.ts), or publish without the index (DynamoDB Streams)`,
    },
    {
      what: `documents outbox GSI: writes per shard key (${OUTBOX_SHARDS.length} shards, document events in and out)`,
      demand: documentOutboxPerShardWcu,
      limit: DYNAMODB.partitionWcu,
      unit: 'WCU/s',
      fix: `OUTBOX_SHARDS ≥ ${ceil((documentOutboxPerShardWcu * OUTBOX_SHARDS.length) / (DYNAMODB.partitionWcu * parameters.dynamodb.planningUtilization))} (the same shards as orders), or DOCUMENT_EVENTS=off where nobody subscribes`,
    },
    {
      what: "listing GSI: the largest tenant's creates and deletes, one partition key",
      demand: listingWcuOfLargestTenant,
      limit: DYNAMODB.partitionWcu,
      unit: 'WCU/s',
      fix: "spread a tenant's listing over several keys (listPk = tenant#n, n from the id) and merge n Query pages per page; a throttled index throttles the table's writes",
    },
    {
      what: 'rate limit: the largest tenant\'s counter, one Redis key on one shard',
      demand: hotTenantOps,
      limit: cacheNode.opsPerSecond * redisParameters.planningUtilization,
      unit: 'ops/s',
      fix: 'send the batches less often (a longer flush interval), or shard the counter key per pod',
    },
    { what: 'Redis cluster size', demand: redisNodes, limit: REDIS_MAX_NODES_PER_CLUSTER, unit: 'nodes', fix: 'bigger nodes, replica reads, or several clusters split by tenant' },
    { what: 'API pod IPs (VPC CNI, one /20 private subnet per AZ)', demand: apiPods + consumerPods + relayPods + nodes, limit: api.podIpsPerAz * api.availabilityZones, unit: 'IPs', fix: 'larger subnets or a secondary CIDR for pods (custom networking), prefix delegation' },
    { what: 'EKS managed nodes', demand: nodes, limit: EKS.nodesPerNodeGroup * EKS.nodeGroupsPerCluster, unit: 'nodes', fix: 'bigger instances; more clusters' },
    { what: 'SNS publishes, order events and document changes (us-east-1 quota; eu-west-1 is 9,000)', demand: snsPublishes, limit: MESSAGING.snsPublishQuotaUsEast1, unit: 'msg/s', fix: 'quota increase, or several topics by tenant' },
    { what: 'S3 GETs of the hottest uncacheable document (one prefix)', demand: hottestUncacheableRps, limit: S3.getsPerPrefix, unit: 'GET/s', fix: 'cache large documents too (by range, or a CDN in front), raise the cacheable size' },
    { what: 'DynamoDB documents table, on-demand table quota', demand: Math.max(documentRcu, documentWcu), limit: DYNAMODB.onDemandTableQuota, unit: 'units/s', fix: 'quota increase (adjustable) and pre-warming' },
  ];

  return {
    scale,
    rates: { reads, writes, deletes, listings, orders, orderReads, requests },
    reads: { classes, memoryHits, redisGets, redisHits, redisMisses, ttlRefills, storeReads, uncacheableReads, meanSize },
    api: { cpuMs, apiCores, podsForCpu, apiPods, link, perPodRps, podMemoryMiB, consumerPods, relayPods, node, podsPerNode, nodes, nodeGroups },
    redis: { cacheNode, redisOps, rateLimitOps, redisBytesPerSecond, shardsForOps, shardsForNetwork, shardsForMemory, shards, redisNodes, usablePerNodeGiB, usableGiB: shards * usablePerNodeGiB, hotTenantOps },
    dynamodb: {
      tables,
      rcuPerStoreRead,
      outboxPerShardWcu,
      documentOutboxPerShardWcu,
      documentWrites: { itemWcuPerCreate, listingWcuPerCreate, eventWcuPerCreate, tombstoneWcu, listingWcuPerDelete, eventWcuPerDelete, eventWcu, documentWcu },
      listing: { queryRcuPerPage, batchRcuPerPage, listingRcu, readRcu },
      onDemand: dynamoOnDemand,
      provisioned: dynamoProvisioned,
    },
    s3: { s3Gets, s3Puts, s3StorageGb, hottestUncacheableRank, hottestUncacheableRps, hottestRps },
    messaging: { snsPublishes, documentEventPublishes, sqsRequests },
    lb: { processedGbPerHour, newConnections, activeConnections, lcus, albs, albUsd, nlcus, nlbCount, nlbUsd, ingressVcpu, ingressNodesForCpu, ingressNodesForNetwork, ingressNodes, ingressUsd },
    cdn,
    transfer: { internetGbPerMonth, crossAzGbPerMonth, responseBytesPerSecond, crossAzBytesPerSecond },
    cost,
    totalUsd: cost.reduce((sum, line) => sum + line.usd, 0),
    limits,
  };
}

/** What the image test measured (test/image/containers.test.ts, TIME_TO_SERVE_FILE): container start to the first 200 of /health/ready. */
export type TimeToServe = { date: string; image: string; cpuModel: string; cores: number; samples: Array<{ fromStartMs: number }>; medianFromStartMs: number };

/**
 * A burst of `factor` × the target. Reads: the fleet at 100% CPU serves 1/planned-utilisation ×
 * the target; the rest is refused (503 + Retry-After, src/http/load-shedding.ts) until new pods are
 * ready. Each wave of pods takes the metrics' resolution and the HPA's sync to be decided, then a node
 * (the Cluster Autoscaler's decision, then EC2's launch and join), the image pull and the pod's start; the HPA counts pods not yet ready at 0% CPU when
 * it scales up (Kubernetes HPA docs, "Algorithm details"), so it grows the fleet by 100%/planned per
 * wave at most (and by the policy's cap, 100% per 15 s by default), not per sync.
 */
export function burstPlan(p: Parameters, d: Deployment, bench: BenchFigures, podStartSeconds: number) {
  const { burst: b, api } = p;
  const u = api.targetCpuUtilization;
  const growth = Math.min(b.hpaMaxGrowth, 1 / u);
  const waveSeconds = b.metricsResolutionSeconds + b.hpaSyncSeconds + b.autoscalerDecisionSeconds + b.nodeLaunchSeconds + b.imagePullSeconds + podStartSeconds;
  const pods0 = d.api.apiPods;
  const waves: Array<{ from: number; to: number; pods: number; capacity: number; refused: number }> = [];
  let pods = pods0;
  for (let k = 0; k < 12; k++) {
    const capacity = (pods / pods0) / u;
    const refused = Math.max(0, 1 - capacity / b.factor);
    const done = pods >= b.factor * pods0;
    waves.push({ from: k * waveSeconds, to: done ? Infinity : (k + 1) * waveSeconds, pods: Math.round(pods), capacity, refused });
    if (done) break;
    pods = Math.min(pods * growth, b.factor * pods0);
  }
  const burstRequests = d.rates.requests * b.factor;
  const refusedRequests = waves.filter((w) => Number.isFinite(w.to)).reduce((sum, w) => sum + w.refused * burstRequests * (w.to - w.from), 0);
  const allServedAt = waves.find((w) => w.refused === 0)?.from ?? Infinity;
  const restoredAt = waves.at(-1)!.from;

  // Orders: the CPU of factor × orders against the fleet's headroom, and what the stores behind do.
  const extraOrderCores = ((b.factor - 1) * d.rates.orders * bench.msPerOrder) / 1000;
  const headroomCores = pods0 * api.vcpuPerPod * (1 - u);
  const orders = d.dynamodb.tables[1]!;
  const provisionedWcu = orders.wcu / p.dynamodb.planningUtilization;
  const burstWcu = orders.wcu * b.factor;
  // DynamoDB keeps up to 300 s of unused provisioned capacity for bursts (developer guide, "burst capacity").
  const bankedSeconds = burstWcu > provisionedWcu ? (b.dynamodbBurstSeconds * (provisionedWcu - orders.wcu)) / (burstWcu - provisionedWcu) : Infinity;
  const publishes = d.rates.orders * b.factor + d.messaging.documentEventPublishes;
  const outboxGrowth = Math.max(0, publishes - MESSAGING.snsPublishQuotaUsEast1);
  const consumerCapacity = (d.api.consumerPods * 1000) / api.consumerCpuMsPerEvent;
  const queueGrowth = Math.max(0, d.rates.orders * b.factor - consumerCapacity);
  const nodeUsd = d.api.nodes * d.api.node.usdPerHour * HOURS_PER_MONTH;
  return {
    podStartSeconds,
    growth,
    waveSeconds,
    waves,
    refusedRequests,
    allServedAt,
    restoredAt,
    orders: { extraOrderCores, headroomCores, provisionedWcu, burstWcu, bankedSeconds, publishes, outboxGrowth, consumerCapacity, queueGrowth },
    // The idle share of the nodes at the planned utilisation, and what serving the burst from warm pods (at 100% CPU) would add.
    headroomUsd: nodeUsd * (1 - u),
    warmForBurstUsd: nodeUsd * Math.max(0, b.factor * u - 1),
  };
}
