import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { measuresOf, type Harness, type PhaseSpec } from './harness.ts';
import { cpuMs } from './cpu.ts';
import { cacheFigures, rps, summarize, type ScenarioReport } from './report.ts';
import { SCENARIOS, type ScenarioName } from './scenarios.ts';
import { move, putHotDocument, type ExtraApi } from './service.ts';
import { PerfProfiler } from './perf-profiler.ts';
import { log, settings } from './settings.ts';

// The scenarios in the order a run measures them, one function each. To add
// one: its name and requests in scenarios.ts (what the load process sends),
// its function and a line in RUN_ORDER here (when and how long), and its
// target, if any, in report.ts. `make bench SCENARIOS=<name>` runs it alone.

/** Slices of the interleaved ceiling / get-hot measurement. */
const INTERLEAVED_SLICES = 5;

type Step = {
  /** The scenarios this function measures: it runs when one of them is selected. */
  covers: ScenarioName[];
  run: (bench: Harness, selected: ReadonlySet<ScenarioName>) => Promise<void>;
};

/** Documents created with PUT before a scenario (its prepare phase, not measured); createdIds are those the API stored. */
function putDocuments(bench: Harness, count: number, idPrefix: string, seconds = 30) {
  return bench.load.run({ ...bench.base, scenario: 'put-documents', phase: 'prepare', origin: bench.apiOrigin, seconds, count, idPrefix });
}

/**
 * The ceiling and GET of one hot document, interleaved: the hot GET's ratio
 * to the ceiling is the target that needs the most precision. Either runs
 * alone when only it is selected (get-hot then has no ratio). With them,
 * ceiling-same-response: the ceiling's process answering get-hot's exact
 * headers and body, taken from a real answer of the API just before.
 */
async function ceilingAndGetHot(bench: Harness, selected: ReadonlySet<ScenarioName>) {
  const pair: Parameters<Harness['interleaved']>[0] = [];
  let other: ExtraApi | undefined;
  if (selected.has('ceiling')) pair.push({ name: 'ceiling', spec: { ...bench.base, scenario: 'ceiling', origin: bench.ceilingOrigin } });
  if (selected.has('get-hot') || selected.has('ceiling-same-response')) {
    const hotId = `hot-${bench.runTag}`;
    await putHotDocument(bench.apiOrigin, hotId);
    if (selected.has('ceiling-same-response')) {
      await sameResponse(bench, `${bench.apiOrigin}/documents/${hotId}`);
      pair.push({ name: 'ceiling-same-response', spec: { ...bench.base, scenario: 'ceiling-same-response', origin: bench.ceilingOrigin } });
    }
    if (selected.has('get-hot')) pair.push({ name: 'get-hot', spec: { ...bench.base, scenario: 'get-hot', origin: bench.apiOrigin, hotId } });
    if (selected.has('get-hot') && (settings.apiEntryB || settings.apiNodeArgsB)) {
      other = await bench.startApi({}, settings.apiEntryB, settings.apiNodeArgsB);
      bench.measureAgainst('get-hot-b', other.pid);
      await fetch(`${other.origin}/documents/${hotId}`).then((answer) => answer.arrayBuffer());
      pair.push({ name: 'get-hot-b', spec: { ...bench.base, scenario: 'get-hot', origin: other.origin, hotId } });
    }
  }
  const measured = await bench.interleaved(pair, INTERLEAVED_SLICES, settings.seconds).finally(() => other?.stop());
  const ceiling = measured.find((entry) => entry.report.name === 'ceiling');
  const hot = measured.find((entry) => entry.report.name === 'get-hot');
  if (hot) hot.report.cache = cacheFigures(hot.result);
  for (const entry of measured) {
    if (ceiling && entry !== ceiling) {
      const ratio = {
        ratio: Math.round((entry.report.requestsPerSecond! / ceiling.report.requestsPerSecond!) * 1000) / 1000,
        slices: entry.sliceRps.map((value, i) => Math.round((value / ceiling.sliceRps[i]!) * 1000) / 1000),
      };
      bench.interleavedRatios.set(entry.report.name, ratio);
      entry.report.notes.push(`ratio per slice ${ratio.slices.join(', ')}`);
    }
    entry.report.notes.unshift(`req/s per slice ${entry.sliceRps.join(', ')}`);
  }
  const b = measured.find((entry) => entry.report.name === 'get-hot-b');
  if (hot && b) {
    const cpu = (hot.report.cpu?.serverUsPerOk ?? 0) / (b.report.cpu?.serverUsPerOk || 1);
    hot.report.notes.push(`CPU per answer ${hot.report.cpu?.serverUsPerOk} µs, get-hot-b's ${b.report.cpu?.serverUsPerOk} µs`);
    hot.report.notes.push(`to get-hot-b (${settings.apiEntryB ?? settings.apiEntry} ${(settings.apiNodeArgsB ?? settings.apiNodeArgs).join(' ')}): CPU per request × ${cpu.toFixed(3)}, req/s × ${(hot.report.requestsPerSecond! / b.report.requestsPerSecond!).toFixed(3)}`);
  }
  const same = measured.find((entry) => entry.report.name === 'ceiling-same-response');
  if (hot && same) {
    const slices = hot.sliceRps.map((value, i) => Math.round((value / same.sliceRps[i]!) * 1000) / 1000);
    hot.report.notes.push(`to ceiling-same-response ${Math.round((hot.report.requestsPerSecond! / same.report.requestsPerSecond!) * 1000) / 1000} (per slice ${slices.join(', ')})`);
  }
}

/** "to <label>: CPU per request × …, req/s × …": a row against the one it was measured with, in alternating slices. */
function noteAgainst(report: ScenarioReport, base: ScenarioReport, label: string) {
  const cpu = (report.cpu?.serverUsPerOk ?? 0) / (base.cpu?.serverUsPerOk || 1);
  const throughput = (report.requestsPerSecond ?? 0) / (base.requestsPerSecond || 1);
  report.notes.push(`to ${label}: CPU per request × ${cpu.toFixed(3)}, req/s × ${throughput.toFixed(3)}`);
}

/** Hands the ceiling's process the headers and body of one real answer of `url`, for GET /same. */
async function sameResponse(bench: Harness, url: string) {
  const answer = await fetch(url);
  const body = Buffer.from(await answer.arrayBuffer());
  // Those Node writes by itself, on every answer, in either process.
  const own = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);
  const headers = Object.fromEntries([...answer.headers].filter(([name]) => !own.has(name)));
  const handed = await fetch(`${bench.ceilingOrigin}/same`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ headers, body: body.toString('base64') }),
  });
  if (!handed.ok) throw new Error(`the ceiling refused the same response: ${handed.status}`);
  log(`ceiling-same-response: ${body.length} bytes with ${Object.keys(headers).join(', ')}`);
}

/** POST /documents small, each with its own Idempotency-Key. Its documents, never read yet, are the pool of get-cold. */
async function postDocumentsSmall(bench: Harness) {
  const { result, warmup } = await bench.measured('post-documents-small', { ...bench.base, scenario: 'post-documents-small', origin: bench.apiOrigin });
  bench.coldPool.push(...warmup.createdIds, ...result.createdIds);
}

/**
 * GET with the cache cold: every id read once, after its Redis key (if any)
 * is deleted. An in-process cache filled on write would turn reads into
 * hits: Cache-Status is counted, and the latency of misses only is kept.
 */
async function getCold(bench: Harness) {
  const coldPool = bench.coldPool;
  const redis = new Redis(bench.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const topUp = async (count: number) => {
      log(`get-cold: creating ${count} more never-read documents with PUT`);
      const created = await putDocuments(bench, count, `cold-${bench.runTag}`);
      log(`get-cold: ${created.createdIds.length} created in ${created.seconds} s (${rps(created)} req/s, ${created.non2xx} non-2xx)`);
      return created.createdIds;
    };
    // The warm-up reads at most this many (it ends early when they are used up).
    const warmupPool = 6000;
    if (coldPool.length < warmupPool) coldPool.push(...(await topUp(warmupPool - coldPool.length)));
    await evict(redis, coldPool);
    let measuredIds: string[] = [];
    const { report, result, warmup } = await bench.measured(
      'get-cold',
      { ...bench.base, scenario: 'get-cold', origin: bench.apiOrigin },
      {
        seconds: settings.coldSeconds,
        warmup: { ids: coldPool.slice(0, warmupPool) },
        before: async (warm) => {
          const remaining = coldPool.slice(warm.idsSent);
          // Enough ids for the whole measured window at the warm-up's pace,
          // with a margin: the warm-up runs slower than the measured window.
          const wanted = Math.ceil((rps(warm) || 1000) * settings.coldSeconds * 1.5);
          if (remaining.length < wanted) {
            const created = await topUp(Math.min(wanted - remaining.length, 100_000));
            await evict(redis, created);
            remaining.push(...created);
          }
          measuredIds = remaining.slice(0, wanted);
          return { ids: measuredIds };
        },
      },
    );
    report.cache = cacheFigures(result);
    report.missLatencyMs = result.missLatency!;
    report.warmup = { ...summarize(warmup) };
    if (result.idsSent >= measuredIds.length && result.seconds < settings.coldSeconds * 0.9) {
      report.notes.push(`pool of ${measuredIds.length} ids ran out after ${result.seconds} s`);
    }
    if ((report.cache.missRatio ?? 0) < 0.99) {
      report.notes.push(`only ${Math.round((report.cache.missRatio ?? 0) * 100)}% misses: not a cold-cache figure (see cache counts)`);
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * GET answered from Redis: every id read once, after a first read put it in
 * Redis and in the API's memory, and the memory was emptied. The API empties
 * its memory whenever its invalidation subscription drops (deletes announced
 * meanwhile would be missed), so dropping that connection (CLIENT KILL TYPE
 * pubsub) is the service's own way to get there. The Redis hits are counted
 * from the API's /metrics.
 */
async function getWarm(bench: Harness) {
  const redis = new Redis(bench.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    // Enough for a warm-up and a measured window at a few thousand reads/s; the
    // PUTs cost the emulators ~1 ms each, so the pool is not larger than that.
    const wanted = Math.ceil(4000 * (settings.warmupSeconds + settings.coldSeconds) * 1.2);
    log(`get-warm: creating ${wanted} documents with PUT and reading each once`);
    const created = await putDocuments(bench, wanted, `warm-${bench.runTag}`, 60);
    const ids = created.createdIds;
    await bench.load.run({ ...bench.base, scenario: 'get-warm', phase: 'prepare', origin: bench.apiOrigin, seconds: 60, ids });
    await redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    // Subscribed again: from then on the memory is live, and empty.
    for (const until = Date.now() + 10_000; ; ) {
      const [, subscribers] = (await redis.pubsub('NUMSUB', 'documents:invalidated')) as [string, number];
      if (Number(subscribers) > 0) break;
      if (Date.now() > until) throw new Error('get-warm: the API did not subscribe again after CLIENT KILL');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const redisHits = async () => {
      const text = await (await fetch(`${bench.apiOrigin}/metrics`)).text();
      const line = text.split('\n').find((entry) => entry.startsWith('document_cache_lookups_total{') && entry.includes('layer="redis"') && entry.includes('result="hit"'));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    };
    let before = 0;
    let measuredIds: string[] = [];
    const { report, result } = await bench.measured(
      'get-warm',
      { ...bench.base, scenario: 'get-warm', origin: bench.apiOrigin },
      {
        seconds: settings.coldSeconds,
        // The warm-up reads its share of the pool at most (it ends when they are used up).
        warmup: { ids: ids.slice(0, Math.ceil((ids.length * settings.warmupSeconds) / (settings.warmupSeconds + settings.coldSeconds))) },
        before: async (warm) => {
          before = await redisHits();
          measuredIds = ids.slice(Math.min(warm.idsSent, ids.length));
          return { ids: measuredIds };
        },
      },
    );
    // The counter also counts the answers still in flight when the window closed (up to one per connection).
    const fromRedis = Math.min(result.ok, (await redisHits()) - before);
    report.cache = { hits: fromRedis, misses: result.ok - fromRedis, missRatio: result.ok ? Math.round(((result.ok - fromRedis) / result.ok) * 1000) / 1000 : null };
    if (result.idsSent >= measuredIds.length && result.seconds < settings.coldSeconds * 0.9) {
      report.notes.push(`pool of ${measuredIds.length} ids ran out after ${result.seconds} s`);
    }
    if (fromRedis < result.ok * 0.99) report.notes.push(`only ${fromRedis} of ${result.ok} answers came from Redis: not a Redis-hit figure`);
  } finally {
    redis.disconnect();
  }
}

/** Above INLINE_CONTENT_MAX_BYTES (16 KiB by default): stored in S3, so it has a direct link (inline ones answer 409). */
const LINKED_DOCUMENT_BYTES = 20 * 1024;

/**
 * GET /documents/{id}/link of one document in S3: its location read once and
 * its URL signed once per expiry bucket, then both from the API's memory.
 * One PUT prepares it, checked to have a link.
 */
async function getLink(bench: Harness) {
  const id = `link-${bench.runTag}`;
  const put = await fetch(`${bench.apiOrigin}/documents/${id}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(LINKED_DOCUMENT_BYTES, 7) });
  if (put.status !== 201) throw new Error(`PUT of the linked document answered ${put.status}: ${await put.text()}`);
  const link = await fetch(`${bench.apiOrigin}/documents/${id}/link`);
  if (link.status !== 200) throw new Error(`GET of its link answered ${link.status}: ${await link.text()}`);
  const { report } = await bench.measured('get-link', { ...bench.base, scenario: 'get-link', origin: bench.apiOrigin, hotId: id });
  report.notes.push(`DynamoDB calls per link: ${callsOf(report)}`);
}

/** A row's DynamoDB calls per 2xx answer, for its notes. */
const callsOf = (report: ScenarioReport) =>
  Object.entries(report.dynamodbCallsPerOk ?? {})
    .map(([operation, calls]) => `${operation} ${calls}`)
    .join(', ') || 'none';

/** The documents list-documents walks, and its pages: 5 walks' worth of pages of 100. */
const LISTED_DOCUMENTS = 500;
const LISTING_PAGE = 100;

/**
 * GET /documents in walks of pages: the first page, then the next ones by
 * their cursors, up to LISTED_DOCUMENTS / LISTING_PAGE pages, then a new
 * walk. The bench's API has no authentication, so every document of the run
 * is the tenant `public`'s; the newest LISTED_DOCUMENTS, the ones a walk
 * reaches, are created for it just before (and checked to be what a walk
 * lists), so every page is one of a known set whatever ran earlier.
 */
async function listDocuments(bench: Harness) {
  log(`list-documents: creating ${LISTED_DOCUMENTS} documents with PUT`);
  const ours = new Set<string>();
  // A loaded API sheds some of them (503 OVERLOADED): asked again, a few times.
  for (let attempt = 0; attempt < 5 && ours.size < LISTED_DOCUMENTS; attempt++) {
    const created = await putDocuments(bench, LISTED_DOCUMENTS - ours.size, `list-${bench.runTag}-${attempt}`);
    for (const id of created.createdIds) ours.add(id);
  }
  const pages = LISTED_DOCUMENTS / LISTING_PAGE;
  const walked: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < pages; page++) {
    const answer = await fetch(`${bench.apiOrigin}/documents?limit=${LISTING_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (answer.status !== 200) throw new Error(`list-documents: GET /documents answered ${answer.status}: ${await answer.text()}`);
    const body = (await answer.json()) as { items: { id: string }[]; next?: string };
    walked.push(...body.items.map((item) => item.id));
    cursor = body.next;
    if (!cursor) break;
  }
  const known = walked.filter((id) => ours.has(id)).length;
  const spec = { ...bench.base, scenario: 'list-documents' as const, origin: bench.apiOrigin, limit: LISTING_PAGE, pages };
  const { report, result } = await bench.measured('list-documents', spec);
  const itemsPerPage = result.listedPages ? Math.round((result.listedItems / result.listedPages) * 10) / 10 : 0;
  report.listing = { documents: LISTED_DOCUMENTS, pageSize: LISTING_PAGE, pagesPerWalk: pages, pages: result.listedPages, itemsPerPage };
  report.notes.push(`${itemsPerPage} items per page, walks of ${pages} pages`, `DynamoDB calls per page: ${callsOf(report)}`);
  if (known < LISTED_DOCUMENTS || walked.length !== LISTED_DOCUMENTS) {
    report.notes.push(`not the prepared set: ${ours.size} of ${LISTED_DOCUMENTS} created, a walk listed ${walked.length} documents, ${known} of them the prepared ones`);
  }
  if (itemsPerPage < LISTING_PAGE) report.notes.push(`pages of fewer than ${LISTING_PAGE} items`);
}

/** Deletes every Redis key naming one of these ids (whatever the key layout: `doc:tenant:id`, …). */
async function evict(redis: Redis, ids: string[]) {
  if (ids.length === 0) return;
  const wanted = new Set(ids);
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    const doomed = keys.filter((key) => key.split(/[:#{}]/).some((part) => wanted.has(part)));
    if (doomed.length) deleted += await redis.del(...doomed);
  } while (cursor !== '0');
  if (deleted) log(`get-cold: deleted ${deleted} Redis keys of pool documents`);
}

/** POST /orders, closed loop, every payload unique. */
async function postOrders(bench: Harness) {
  const missing = await bench.ordersUnavailable();
  if (missing) return bench.skip('post-orders', missing);
  await bench.measured('post-orders', { ...bench.base, scenario: 'post-orders', origin: bench.apiOrigin });
}

/** POST /orders at a fixed rate, spread over staggered waves (bench/README.md says why). */
async function ordersBurst(bench: Harness) {
  const missing = await bench.ordersUnavailable();
  if (missing) return bench.skip('orders-burst', missing);
  const spec = {
    ...bench.base,
    scenario: 'orders-burst' as const,
    origin: bench.apiOrigin,
    connections: settings.burstConnections,
    rate: settings.burstRate,
    waves: settings.burstWaves,
  };
  const { report, result } = await bench.measured('orders-burst', spec, { seconds: settings.burstSeconds });
  report.targetRate = result.targetRate!;
  if (report.requestsPerSecond! < result.targetRate! * 0.97) {
    report.notes.push(`fell behind: ${report.requestsPerSecond} of ${result.targetRate} req/s`);
  }
}

const TRACING_VARIANTS = [
  { suffix: 'untraced', ratio: undefined },
  { suffix: 'traced-1pct', ratio: '0.01' },
  { suffix: 'traced-all', ratio: '1' },
] as const;

/**
 * The cost of tracing: the hot GET and POST /orders against three API
 * processes of one build, tracing off (the run's API: no endpoint, so no
 * SDK), on at ratio 0.01 and on at 1.0 (parentbased_traceidratio; spans
 * batched to a sink that discards them), in alternating slices so that the
 * machine's noise weighs on the three alike. The rows' notes give each
 * traced variant's CPU per request and req/s against the untraced one.
 */
async function tracingCost(bench: Harness, selected: ReadonlySet<ScenarioName>) {
  const sink = await bench.startOtlpSink();
  const started = await Promise.all(
    TRACING_VARIANTS.map(async ({ suffix, ratio }) => {
      if (ratio === undefined) return { suffix, origin: bench.apiOrigin, stop: async () => {} };
      const api = await bench.startApi({ OTEL_EXPORTER_OTLP_ENDPOINT: sink, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: ratio });
      for (const scenario of ['get-hot', 'post-orders']) bench.measureAgainst(`${scenario}-${suffix}`, api.pid);
      return { suffix, ...api };
    }),
  );
  try {
    const compare = async (scenario: 'get-hot' | 'post-orders', extra: Partial<PhaseSpec>) => {
      const entries = started
        .map(({ suffix, origin }) => ({ name: `${scenario}-${suffix}` as ScenarioName, spec: { ...bench.base, scenario, origin, ...extra } }))
        .filter((entry) => selected.has(entry.name));
      if (entries.length === 0) return;
      const measured = await bench.interleaved(entries, INTERLEAVED_SLICES, settings.seconds);
      const untraced = measured.find((entry) => entry.report.name === `${scenario}-untraced`)?.report;
      for (const { report, result, sliceRps } of measured) {
        report.notes.unshift(`req/s per slice ${sliceRps.join(', ')}`);
        if (scenario === 'get-hot') report.cache = cacheFigures(result);
        if (untraced && report !== untraced) noteAgainst(report, untraced, 'untraced');
      }
    };
    if (TRACING_VARIANTS.some(({ suffix }) => selected.has(`get-hot-${suffix}` as ScenarioName))) {
      const hotId = `hot-traced-${bench.runTag}`;
      // Into each traced or untraced API's memory.
      await putHotDocument(bench.apiOrigin, hotId, started.map(({ origin }) => origin));
      await compare('get-hot', { hotId });
    }
    const missing = await bench.ordersUnavailable();
    if (missing) for (const { suffix } of TRACING_VARIANTS) bench.skip(`post-orders-${suffix}`, missing);
    else await compare('post-orders', {});
  } finally {
    await Promise.all(started.map((api) => api.stop()));
  }
}

const EVENTS_VARIANTS = [
  { suffix: 'events-off', value: 'off' },
  { suffix: 'events-on', value: 'on' },
] as const;

/**
 * The cost of document events: post-documents-small against two API
 * processes of one build, started together, DOCUMENT_EVENTS=off and on, in
 * alternating slices (as the tracing rows), so that the machine's noise
 * weighs on both alike. With events on, a create also writes its event
 * pending on the item, and after the answer publishes it to SNS and marks
 * it published (an UpdateItem): work after the answer, counted in the
 * API's CPU all the same. The events-on row's notes give its CPU per request
 * and req/s against events off.
 */
async function documentEventsCost(bench: Harness, selected: ReadonlySet<ScenarioName>) {
  const started = await Promise.all(
    EVENTS_VARIANTS.map(async ({ suffix, value }) => {
      const api = await bench.startApi({ DOCUMENT_EVENTS: value });
      bench.measureAgainst(`post-documents-${suffix}`, api.pid);
      return { suffix, ...api };
    }),
  );
  try {
    const entries = started
      .map(({ suffix, origin }) => ({ name: `post-documents-${suffix}` as ScenarioName, spec: { ...bench.base, scenario: 'post-documents-small' as const, origin } }))
      .filter((entry) => selected.has(entry.name));
    const measured = await bench.interleaved(entries, INTERLEAVED_SLICES, settings.seconds);
    const off = measured.find((entry) => entry.report.name === 'post-documents-events-off')?.report;
    for (const { report, sliceRps } of measured) {
      report.notes.unshift(`req/s per slice ${sliceRps.join(', ')}`);
      report.notes.push(`DynamoDB calls per request: ${callsOf(report)}`);
      if (off && report !== off) noteAgainst(report, off, 'events off');
    }
  } finally {
    await Promise.all(started.map((api) => api.stop()));
  }
}

/** The key of get-hot-api-key's API, whose tenant is `public`, the tenant of every request without authentication: one document serves both rows. */
const BENCH_KEY = `bench-${randomUUID()}`;

/**
 * What authentication and the rate limit cost a hot read, which every
 * production read pays: get-hot against two API processes of one build,
 * started together, AUTH_MODE=none and api-key, in alternating slices (as
 * the events rows). With a key, each request's key is hashed and compared,
 * and its tenant counted by the rate limit (far from its limit here:
 * RATE_LIMIT_PER_MINUTE of the run, so counts go to Redis in batches). The
 * api-key row's notes give its CPU per request and req/s against auth off,
 * and the rate limit's Redis calls per request (redis-server's count of
 * script calls over both rows, warm-ups included; the auth-off API makes
 * none, its reads are memory hits).
 */
async function authCost(bench: Harness, selected: ReadonlySet<ScenarioName>) {
  const hash = createHash('sha256').update(BENCH_KEY).digest('hex');
  const headers = { authorization: `Bearer ${BENCH_KEY}` };
  const [off, keyed] = await Promise.all([bench.startApi({}), bench.startApi({ AUTH_MODE: 'api-key', API_KEYS: `public:${hash}` })]);
  bench.measureAgainst('get-hot-auth-off', off.pid);
  bench.measureAgainst('get-hot-api-key', keyed.pid);
  const redis = new Redis(bench.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    const hotId = `hot-auth-${bench.runTag}`;
    await putHotDocument(bench.apiOrigin, hotId, [off.origin, { origin: keyed.origin, headers }]);
    const entries = [
      { name: 'get-hot-auth-off' as const, spec: { ...bench.base, scenario: 'get-hot' as const, origin: off.origin, hotId } },
      { name: 'get-hot-api-key' as const, spec: { ...bench.base, scenario: 'get-hot' as const, origin: keyed.origin, hotId, headers } },
    ].filter((entry) => selected.has(entry.name));
    await redis.connect();
    const scriptCallsBefore = await scriptCalls(redis);
    const measured = await bench.interleaved(entries, INTERLEAVED_SLICES, settings.seconds);
    const redisCalls = (await scriptCalls(redis)) - scriptCallsBefore;
    const unauthenticated = measured.find((entry) => entry.report.name === 'get-hot-auth-off')?.report;
    for (const { report, result, sliceRps, warmup } of measured) {
      report.notes.unshift(`req/s per slice ${sliceRps.join(', ')}`);
      report.cache = cacheFigures(result);
      if (report.name !== 'get-hot-api-key') continue;
      report.notes.push(`rate limit: ${(redisCalls / (warmup.responses + result.responses)).toFixed(4)} Redis calls per request (${redisCalls} for ${warmup.responses + result.responses} requests, warm-up included)`);
      if (unauthenticated) noteAgainst(report, unauthenticated, 'auth off');
    }
  } finally {
    redis.disconnect();
    await Promise.all([off.stop(), keyed.stop()]);
  }
}

/** Script calls redis-server has answered (EVALSHA, then EVAL): the service's only scripts are its window counts. */
async function scriptCalls(redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats');
  return [...stats.matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

const MiB = 1024 * 1024;
const TRANSFER_BYTES = 64 * MiB;
const TRANSFER_ROUNDS = 3;
const CONCURRENT_TRANSFERS = 10;

/**
 * A 64 MiB document up and down through the API, against the same bytes
 * moved to and from the same S3 emulator by the SDK alone (the ceiling), in
 * alternating rounds; then ten such uploads at once, for the API's peak
 * resident memory (VmHWM, reset before). Against a fresh API process.
 */
async function transfers(bench: Harness) {
  const { s3Endpoint, bucket, partSize, partsInFlight } = bench.transfers;
  // An API process of its own: its memory is the transfers', not what earlier scenarios left.
  const api = await bench.startApi({});
  bench.measureAgainst('transfer', api.pid);
  try {
    await measureTransfers(bench, api, { s3Endpoint, bucket, partSize, partsInFlight });
  } finally {
    await api.stop();
  }
}

async function measureTransfers(bench: Harness, api: ExtraApi, { s3Endpoint, bucket, partSize, partsInFlight }: Harness['transfers']) {
  const MB = TRANSFER_BYTES / 1e6;
  const ceilingJob = (round: number) => ({ endpoint: s3Endpoint, bucket, key: `bench-ceiling/${bench.runTag}/${round}`, size: TRANSFER_BYTES, partSize, partsInFlight });
  const apiJob = (round: number | 'warm-up') => ({ origin: api.origin, ids: [`transfer-${bench.runTag}-${round}`], size: TRANSFER_BYTES });
  let failed = 0;
  // Uploads first, then downloads, each direction after one transfer through
  // the API that is not counted: what is measured is a warm process moving
  // bytes in one direction, not its JIT warming up or the collection of the
  // other direction's garbage (the ceiling's processes start fresh each time).
  const direction = async (kind: 'upload' | 'download') => {
    log(`transfer-64mb: ${kind}s, ${TRANSFER_ROUNDS} rounds after a warm-up`);
    const sums = { ceilingMs: 0, ms: 0, cpuMs: 0 };
    failed += 1 - (await move({ kind, ...apiJob('warm-up') })).ok;
    for (let round = 0; round < TRANSFER_ROUNDS; round++) {
      sums.ceilingMs += (await move({ kind: `ceiling-${kind}`, ...ceilingJob(round) })).ms;
      const moved = await bench.withCpu(() => move({ kind, ...apiJob(round) }));
      sums.ms += moved.value.ms;
      sums.cpuMs += moved.cpu.server;
      failed += 1 - moved.value.ok;
    }
    return sums;
  };
  const up = await direction('upload');
  const down = await direction('download');
  const rate = (ms: number) => Math.round((MB * TRANSFER_ROUNDS) / (ms / 1000) * 10) / 10;
  const perMB = (ms: number) => Math.round((ms / (MB * TRANSFER_ROUNDS)) * 1000) / 1000;

  log(`transfer-64mb: ${CONCURRENT_TRANSFERS} uploads at once`);
  writeFileSync(`/proc/${api.pid}/clear_refs`, '5');
  const ids = Array.from({ length: CONCURRENT_TRANSFERS }, (_, i) => `transfer-${bench.runTag}-concurrent-${i}`);
  const concurrent = await move({ kind: 'upload', origin: api.origin, ids, size: TRANSFER_BYTES });
  const peakRssMiB = Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${api.pid}/status`, 'utf8'))?.[1]) / 1024);

  const figures = (sums: { ceilingMs: number; ms: number; cpuMs: number }) => ({ MBps: rate(sums.ms), ceilingMBps: rate(sums.ceilingMs), apiCpuMsPerMB: perMB(sums.cpuMs) });
  const upload = figures(up);
  const download = figures(down);
  const ratio = (figures: { MBps: number; ceilingMBps: number }) => Math.round((figures.MBps / figures.ceilingMBps) * 1000) / 1000;
  bench.reports.push({
    name: 'transfer-64mb',
    measures: measuresOf('transfer-64mb'),
    transfer: {
      upload: { ...upload, ratio: ratio(upload) },
      download: { ...download, ratio: ratio(download) },
      concurrent: { uploads: CONCURRENT_TRANSFERS, ok: concurrent.ok, peakRssMiB, MBps: Math.round(((MB * CONCURRENT_TRANSFERS) / (concurrent.ms / 1000)) * 10) / 10 },
    },
    notes: failed > 0 ? [`${failed} transfers failed`] : [],
  });
}

const RESUMABLE_PATCH_BYTES = 8 * MiB;
const COMPLETION_ROUNDS = 4;
/** The completions compared: the same last append (64 KiB after a tail of 960 KiB), after no part, or after 205 of them. */
const COMPLETION_TAIL = 960 * 1024;
const COMPLETION_LAST = 64 * 1024;

/**
 * Resumable uploads against one-request ones, through a fresh API process:
 * the same 64 MiB as a tus upload in 8 MiB appends and as one PUT, in
 * alternating rounds (MB/s, API CPU per MB); then the CPU of the append that
 * completes an upload, for a small upload and a large one whose appends
 * before it left the same tail, so that only their size differs.
 */
async function resumableUploads(bench: Harness) {
  // BENCH_API_PROFILE_PERF: perf's samples of each completion (`node bench/completion-timeline.ts <dir>`).
  const perf = settings.apiProfilePerf;
  const api = await bench.startApi({}, undefined, perf ? [...settings.apiNodeArgs, '--perf-basic-prof'] : undefined);
  bench.measureAgainst('transfer', api.pid);
  try {
    await measureResumable(bench, api, perf ? new PerfProfiler(api.pid, settings.apiProfileDir!) : undefined);
  } finally {
    await api.stop();
  }
}

/** Waits until a process has been idle (under 5 ms of CPU in 300 ms) for a moment, 10 s at most. */
async function quiet(pid: number) {
  for (let tries = 0; tries < 33; tries++) {
    const before = cpuMs(pid);
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (cpuMs(pid) - before < 5) return;
  }
}

async function measureResumable(bench: Harness, api: ExtraApi, profiler: PerfProfiler | undefined) {
  const MB = TRANSFER_BYTES / 1e6;
  const oneRequest = (round: number | 'warm-up') => ({ kind: 'upload', origin: api.origin, ids: [`resumable-${bench.runTag}-put-${round}`], size: TRANSFER_BYTES });
  const resumable = { kind: 'resumable', origin: api.origin, size: TRANSFER_BYTES, patchSize: RESUMABLE_PATCH_BYTES };
  // As tus-js-client sends by default (chunkSize Infinity): the whole document in one append.
  const oneAppend = { ...resumable, patchSize: TRANSFER_BYTES };
  let failed = 1 - (await move(oneRequest('warm-up'))).ok + 1 - (await move(resumable)).ok;
  log(`resumable-64mb: ${TRANSFER_ROUNDS} rounds of one PUT, one resumable upload in ${RESUMABLE_PATCH_BYTES / MiB} MiB appends and one in a single append`);
  const sums = { put: { ms: 0, cpuMs: 0 }, resumable: { ms: 0, cpuMs: 0 }, oneAppend: { ms: 0, cpuMs: 0 } };
  for (let round = 0; round < TRANSFER_ROUNDS; round++) {
    for (const [name, job] of [['put', oneRequest(round)], ['resumable', resumable], ['oneAppend', oneAppend]] as const) {
      const moved = await bench.withCpu(() => move(job));
      sums[name].ms += moved.value.ms;
      sums[name].cpuMs += moved.cpu.server;
      failed += 1 - moved.value.ok;
    }
  }
  const figures = ({ ms, cpuMs }: { ms: number; cpuMs: number }) => ({
    MBps: Math.round(((MB * TRANSFER_ROUNDS) / (ms / 1000)) * 10) / 10,
    apiCpuMsPerMB: Math.round((cpuMs / (MB * TRANSFER_ROUNDS)) * 1000) / 1000,
  });
  const put = figures(sums.put);
  const upload = figures(sums.resumable);
  const single = figures(sums.oneAppend);

  log(`resumable-64mb: the append that completes an upload, ${COMPLETION_ROUNDS} rounds of 1 MiB and of 1026 MiB`);
  // An idle API still spends CPU (Redis and lease heartbeats, event-loop sampling), taken off each completion for
  // the time it lasted: the emulator completes a multipart upload in time that grows with its bytes (it concatenates
  // them in memory; S3 does not), and the API waits meanwhile. A small completion's idle rate is the quiet one; a
  // large one's is measured under the load it is taken off in: while the SDK alone completes the same parts.
  await quiet(api.pid);
  const idleStart = { cpu: cpuMs(api.pid), at: performance.now() };
  // Long enough that the clock ticks of /proc (10 ms) err by about 1 ms/s.
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  const idleMsPerSecond = (cpuMs(api.pid) - idleStart.cpu) / ((performance.now() - idleStart.at) / 1000);
  const { s3Endpoint: endpoint, bucket, partSize, partsInFlight } = bench.transfers;
  const idleRates: number[] = [];
  const wallAndCpu = async <T>(work: () => Promise<T>) => {
    const at = performance.now();
    const { value, cpu } = await bench.withCpu(work);
    return { value, cpu: cpu.server, ms: performance.now() - at };
  };
  const idleWhileEmulatorCompletes = async (size: number) => {
    // One key for every round: each completion replaces the last object, so the emulator holds one more at most.
    const key = `bench-idle/${bench.runTag}`;
    const uploaded = await move({ kind: 'ceiling-parts', endpoint, bucket, key, size, partSize, partsInFlight });
    await quiet(api.pid);
    const timed = await wallAndCpu(() => move({ kind: 'ceiling-complete', endpoint, bucket, key, uploadId: uploaded.uploadId, parts: uploaded.parts }));
    failed += 2 - uploaded.ok - timed.value.ok;
    const rate = timed.cpu / (timed.ms / 1000);
    idleRates.push(rate);
    return rate;
  };
  const completion = async (parts: number) => {
    const size = parts * partSize + COMPLETION_TAIL + COMPLETION_LAST;
    let cpu = 0;
    let idle = 0;
    for (let round = 0; round < COMPLETION_ROUNDS; round++) {
      const pieces = [...(parts > 0 ? [parts * partSize] : []), COMPLETION_TAIL];
      const prepared = await move({ kind: 'resumable-prepare', origin: api.origin, size, pieces });
      const idleRate = parts > 0 ? await idleWhileEmulatorCompletes(size) : idleMsPerSecond;
      // What the appends before left to collect is theirs, not the completion's.
      await quiet(api.pid);
      await profiler?.start();
      const finished = await wallAndCpu(() => move({ kind: 'resumable-finish', origin: api.origin, location: prepared.location, offset: prepared.offset, size }));
      await profiler?.stop(parts > 0 ? 'completion-large' : 'completion-small');
      cpu += finished.cpu;
      idle += (idleRate * finished.ms) / 1000;
      failed += 2 - prepared.ok - finished.value.ok;
    }
    const round = (ms: number) => Math.round((ms / COMPLETION_ROUNDS) * 10) / 10;
    return { bytes: size, cpuMs: round(cpu - idle), rawCpuMs: round(cpu), idleCpuMs: round(idle) };
  };
  const small = await completion(0);
  const large = await completion(205);
  bench.reports.push({
    name: 'resumable-64mb',
    measures: measuresOf('resumable-64mb'),
    resumable: {
      oneRequest: put,
      resumable: upload,
      oneAppend: { ...single, ratio: Math.round((single.MBps / put.MBps) * 1000) / 1000 },
      ratio: Math.round((upload.MBps / put.MBps) * 1000) / 1000,
      cpuRatio: Math.round((put.apiCpuMsPerMB / upload.apiCpuMsPerMB) * 1000) / 1000,
      completion: {
        small,
        large,
        idleMsPerSecond: Math.round(idleMsPerSecond * 10) / 10,
        idleMsPerSecondWhileEmulatorCompletes: idleRates.map((rate) => Math.round(rate * 10) / 10),
        ratio: Math.round((large.cpuMs / Math.max(small.cpuMs, 0.1)) * 100) / 100,
      },
    },
    notes: failed > 0 ? [`${failed} transfers failed`] : [],
  });
}

/** The ceiling again, to see the machine's drift during the run. */
async function ceilingEnd(bench: Harness) {
  await bench.measured('ceiling-end', { ...bench.base, scenario: 'ceiling', origin: bench.ceilingOrigin }, { warmup: { seconds: 1 } });
}

const RUN_ORDER: Step[] = [
  { covers: ['ceiling', 'ceiling-same-response', 'get-hot'], run: ceilingAndGetHot },
  { covers: ['post-documents-small'], run: postDocumentsSmall },
  { covers: ['get-cold'], run: getCold },
  { covers: ['get-warm'], run: getWarm },
  { covers: ['list-documents'], run: listDocuments },
  { covers: ['get-link'], run: getLink },
  { covers: ['post-orders'], run: postOrders },
  { covers: ['orders-burst'], run: ordersBurst },
  { covers: ['transfer-64mb'], run: transfers },
  { covers: ['resumable-64mb'], run: resumableUploads },
  {
    covers: TRACING_VARIANTS.flatMap(({ suffix }) => [`get-hot-${suffix}`, `post-orders-${suffix}`] as ScenarioName[]),
    run: tracingCost,
  },
  { covers: EVENTS_VARIANTS.map(({ suffix }) => `post-documents-${suffix}` as ScenarioName), run: documentEventsCost },
  { covers: ['get-hot-auth-off', 'get-hot-api-key'], run: authCost },
  { covers: ['ceiling'], run: ceilingEnd },
];

/** Names that select several scenarios at once. */
const GROUPS: Record<string, ScenarioName[]> = {
  documents: ['get-hot', 'post-documents-small', 'get-cold', 'get-warm', 'list-documents', 'get-link', 'transfer-64mb', 'resumable-64mb'],
  orders: ['post-orders', 'orders-burst'],
  tracing: TRACING_VARIANTS.flatMap(({ suffix }) => [`get-hot-${suffix}`, `post-orders-${suffix}`] as ScenarioName[]),
  events: EVENTS_VARIANTS.map(({ suffix }) => `post-documents-${suffix}` as ScenarioName),
  auth: ['get-hot-auth-off', 'get-hot-api-key'],
};

const reportedNames = SCENARIOS.filter((scenario) => scenario.reported).map((scenario) => scenario.name);

/** The scenarios named (or grouped) in BENCH_ONLY / SCENARIOS; none named: all. An unknown name is an error. */
export function selectScenarios(names: string[]): Set<ScenarioName> {
  if (names.length === 0) return new Set(reportedNames);
  const selected = new Set<ScenarioName>();
  for (const name of names) {
    const scenarios = GROUPS[name] ?? reportedNames.filter((known) => known === name);
    if (scenarios.length === 0) {
      throw new Error(`unknown scenario "${name}": the scenarios are ${reportedNames.join(', ')}; the groups ${Object.keys(GROUPS).join(', ')}`);
    }
    for (const scenario of scenarios) selected.add(scenario);
  }
  return selected;
}

export async function runScenarios(bench: Harness, selected: ReadonlySet<ScenarioName>) {
  for (const step of RUN_ORDER) {
    if (step.covers.some((name) => selected.has(name))) await step.run(bench, selected);
  }
}
