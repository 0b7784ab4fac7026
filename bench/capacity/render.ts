import { ALB, CLOUDFRONT, DYNAMODB, EC2, ELASTICACHE, MESSAGING, NLB, PRICE_REGION, PRICES_AS_OF, REDIS_OPS_NOTE, S3, TRANSFER } from './aws.ts';
import type { Sensitivity } from './capacity.ts';
import type { BenchFigures, burstPlan, Deployment, HitRatios, Limit, Parameters, TimeToServe } from './model.ts';
import type { Estimate } from './simulate.ts';
import { FLUSH_MS } from '../../src/http/batched-window-counter.ts';

// docs/capacity.md, and the summary `make capacity` prints. Everything here
// is a pure function of the model's output, so the file is reproducible.

const n = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
// CPU figures come from µs with two decimals: four significant digits of a ms.
const ms = (value: number) => `${Number(value.toPrecision(4))} ms`;
const usd = (value: number) => `$${n(value)}`;
const pct = (ratio: number, digits = 1) => `${(ratio * 100).toFixed(digits)}%`;
const ci = (estimate: Estimate) => `${pct(estimate.mean)} ± ${(estimate.halfWidth * 100).toFixed(2)}`;
const gbps = (bytesPerSecond: number) => `${n((bytesPerSecond * 8) / 1e9, 1)} Gbit/s`;
const bytes = (value: number) =>
  value >= 2 ** 30 ? `${n(value / 2 ** 30, value % 2 ** 30 ? 1 : 0)} GiB` : value >= 2 ** 20 ? `${n(value / 2 ** 20)} MiB` : value >= 1024 ? `${n(value / 1024)} KiB` : `${n(value)} B`;

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

/** `1 pod`, `2 pods`. */
const plural = (count: number, noun: string) => `${count.toLocaleString('en-US')} ${noun}${count === 1 ? '' : 's'}`;

export function deploymentRows(d: Deployment, hits: HitRatios): string[][] {
  const r = d.reads;
  return [
    ['API pods', `**${n(d.api.apiPods)}** pods × 1 vCPU, memory request ${n(d.api.podMemoryMiB)} MiB, limit ${n(Math.ceil((d.api.podMemoryMiB * 1.5) / 64) * 64)} MiB`, `${n(d.api.apiCores)} cores busy (${n(d.rates.requests)} req/s, ${n(d.api.perPodRps)} per pod)`],
    ['Nodes', `**${n(d.api.nodes)}** × ${d.api.node.name} (${d.api.podsPerNode} pods each), ${d.api.nodeGroups} node group(s)`, `plus ${d.api.consumerPods} consumer and ${d.api.relayPods} relay pods`],
    ['Process memory', `hit ratio **${ci(hits.memory.hitRatio)}**`, `${n(r.memoryHits)} reads/s answered from memory`],
    [
      'Redis',
      `**${n(d.redis.shards)}** shards × ${d.redis.cacheNode.name} + ${d.redis.redisNodes - d.redis.shards} replicas (${n(d.redis.usableGiB)} GiB usable; per node ${n(d.redis.cacheNode.opsPerSecond)} ops/s, ${d.redis.cacheNode.baselineGbps} Gbit/s baseline)`,
      `hit ratio **${pct(hits.redis.hitRatio.mean)}** of ${n(r.redisGets)} GET/s; ${n(d.redis.redisOps)} ops/s, ${gbps(d.redis.redisBytesPerSecond)}; bound by ${
        d.redis.shards === d.redis.shardsForNetwork ? 'network' : d.redis.shards === d.redis.shardsForOps ? 'ops/s' : 'memory'
      } (ops ${d.redis.shardsForOps}, network ${d.redis.shardsForNetwork}, memory ${d.redis.shardsForMemory} shards)`,
    ],
    ...d.dynamodb.tables.map((t) => [
      `DynamoDB ${t.name}`,
      `${n(t.rcu)} RCU/s, ${n(t.wcu)} WCU/s, **${n(t.partitions)}** partitions`,
      t.quotaNeeded ? `over the 40,000 on-demand table quota: ask for ${n(Math.max(t.rcu, t.wcu) * 1.5)}; pre-warm` : 'within the default quota',
    ]),
    ['S3', `${n(d.s3.s3Gets)} GET/s, ${n(d.s3.s3Puts)} PUT/s`, `keys are tenant/id/upload: one prefix per document; hottest uncacheable document ${n(d.s3.hottestUncacheableRps)} GET/s`],
    [
      'SNS, SQS',
      `${n(d.messaging.snsPublishes)} publishes/s (${n(d.rates.orders)} order events, ${n(d.messaging.documentEventPublishes)} document changes), ${n(d.messaging.sqsRequests)} SQS requests/s`, `SNS quota ${n(MESSAGING.snsPublishQuotaUsEast1)}/s in us-east-1, ${n(MESSAGING.snsPublishQuotaEuWest1)}/s in eu-west-1`],
    [
      'Load balancers',
      `**${d.lb.albs.count}** ALBs, ${n(d.lb.lcus)} LCU`,
      `${n(d.lb.processedGbPerHour)} GB/h processed, ${n(d.lb.newConnections)} new connections/s; ${d.lb.albs.byLcu} by LCU (${n(ALB.reservedLcuPerLoadBalancer)} reservable per ALB), ${d.lb.albs.byTargets} by targets (${n(ALB.targetsPerLoadBalancer)} per ALB)`,
    ],
    ...(d.cdn.viaLink > 0
      ? [['CloudFront', `${n(d.cdn.viaLink)} reads/s, ${gbps(d.cdn.bytesPerSecond)}`, `hit ratio ${pct(1 - d.cdn.originFetches / d.cdn.viaLink, 2)}: ${n(d.cdn.originFetches, 1)} origin fetches/s from S3; ${n(d.cdn.gbPerMonth / 1e6, 1)} PB/month`]]
      : []),
    ['Internet egress from the pods', `${gbps(d.transfer.responseBytesPerSecond)}`, `${n(d.transfer.internetGbPerMonth / 1e6, 1)} PB/month`],
    ['Cross-AZ', `${gbps(d.transfer.crossAzBytesPerSecond)}`, 'pods ↔ Redis primaries in other AZs, replication'],
  ];
}

/** What the documents table's line is made of: the writes of a create and of a delete, and the reads of a listing page. */
function documentsLine(p: Parameters, bench: BenchFigures, d: Deployment): string {
  const w = d.dynamodb.documentWrites;
  const l = d.dynamodb.listing;
  const documents = d.dynamodb.tables[0]!;
  const perCreate = w.itemWcuPerCreate + w.listingWcuPerCreate + w.eventWcuPerCreate;
  const itemWcu = (content: number) => Math.ceil((p.documents.metadataBytes + p.documents.listingAttributeBytes + p.events.itemAttributeBytes + content) / DYNAMODB.writeUnitBytes);
  const eventCores = bench.eventsRatios ? (d.rates.writes * bench.msPerDocumentWrite * (bench.eventsRatios.cpu - 1)) / 1000 : 0;
  const events = p.events.enabled
    ? `With document events on, a create also takes its \`outbox\` index entry in and out (2 WCU) and the mark that its event is published, an UpdateItem of the document's item, which is charged on the whole item, inline content included: as much as the put again, ${n(w.itemWcuPerCreate, 2)} WCU on average, ${itemWcu(1024)} for a 1 KiB document and up to ${itemWcu(p.documents.inlineMaxBytes)} for ${bytes(p.documents.inlineMaxBytes)} inline. ` +
      `So a create costs ${n(perCreate, 2)} WCU, ${n(w.eventWcuPerCreate, 2)} of them for its event; a delete ${n(w.tombstoneWcu + w.listingWcuPerDelete + w.eventWcuPerDelete)}: the tombstone (${w.tombstoneWcu}), the listing entry out (${w.listingWcuPerDelete}), the deletion event's own item (1), its outbox entry in and out (2) and its mark (1). ` +
      `Events take ${n(w.eventWcu)} of the table's ${n(documents.wcu)} WCU/s, and ${n(d.messaging.documentEventPublishes)} SNS publishes/s to the document-changes topic (one per create and per delete; its subscribers are other systems, so no SQS of ours).` +
      (bench.eventsRatios
        ? ` In the API, events on cost × ${bench.eventsRatios.cpu} CPU per create against events off, at × ${bench.eventsRatios.throughput} the req/s (\`post-documents-events-on\` against \`-off\`, one run, interleaved): the mark's UpdateItem and the event's share of a PublishBatch, which carries the events of concurrent creates, ten at most (\`bench/README.md\`). ` +
          `The write figure above comes from the run of ${bench.date.slice(0, 10)}; if its API had events off (or predates them, issue 24), events add ${n(eventCores, 1)} API cores at the target (${plural(Math.ceil(eventCores / (p.api.vcpuPerPod * p.api.targetCpuUtilization)), 'pod')} of ${n(d.api.apiPods)}).`
        : '')
    : 'Document events are off: no outbox entries, marks or publications.';
  return (
    `**The documents table's line.** A create puts its item (${n(w.itemWcuPerCreate, 2)} WCU on average over the size mix: its metadata, ${p.documents.listingAttributeBytes} B of listing keys${p.events.enabled ? ` and ${p.events.itemAttributeBytes} B of event state` : ''}, and its content up to ${bytes(p.documents.inlineMaxBytes)} inline, else its S3 key) and an entry in the sparse \`listing\` index (${w.listingWcuPerCreate} WCU: keys only, about ${p.listing.indexEntryBytes} B). ${events} ` +
    `A listing page reads its ${p.listing.pageItems} keys from the index (a Query, eventually consistent: ${n(p.listing.pageItems)} × ${p.listing.indexEntryBytes} B is ${n(l.queryRcuPerPage, 1)} RCU) and then its items with a consistent BatchGetItem: only their metadata comes back, but each item is charged on its whole size, 1 RCU per 4 KB, inline content included: ${n(l.batchRcuPerPage)} RCU a page over the size mix. ` +
    `${n(p.targets.documentListingsPerSecond)} pages/s take ${n(l.listingRcu)} of the table's ${n(documents.rcu)} RCU/s and ${n((p.targets.documentListingsPerSecond * bench.msPerListingPage) / 1000, 1)} API cores. ` +
    'That second read is the price of never listing a document whose DELETE answered (the index is eventually consistent): metadata projected into the index would make a page one Query of a few RCU, and could list a document just deleted.'
  );
}

function limitRows(limits: Limit[]): string[][] {
  return [...limits]
    .sort((a, b) => b.demand / b.limit - a.demand / a.limit)
    .map((limit) => [limit.what, `${n(limit.demand)} ${limit.unit}`, `${n(limit.limit)}`, pct(limit.demand / limit.limit, 0), limit.demand > limit.limit ? `**over**: ${limit.fix}` : limit.fix]);
}

export type Extras = { before: Deployment; sensitivity: Sensitivity; timeToServe: TimeToServe | undefined; burst: ReturnType<typeof burstPlan> };

export function renderMarkdown(parameters: Parameters, bench: BenchFigures, hits: HitRatios, base: Deployment, grown: Deployment, extras: Extras): string {
  const p = parameters;
  const mib = 2 ** 20;
  const over = (d: Deployment) => [...d.limits].filter((limit) => limit.demand > limit.limit).sort((a, b) => b.demand / b.limit - a.demand / a.limit);
  const firstAtGrowth = [...grown.limits].sort((a, b) => b.demand / b.limit - a.demand / a.limit).find((limit) => !over(base).some((known) => known.what === limit.what));
  const hotPods = base.api.apiPods;
  const hotBytes = p.hotKeys.documentBytes + p.api.responseHeaderBytes;
  const retryRps = p.hotKeys.orderRetriesPerSecond;
  const tenantCap = 60_000 / 60;
  const lines: string[] = [];
  const add = (...text: string[]) => lines.push(...text, '');

  add('# Capacity: 10 million document reads and 5,000 orders per second');
  add(
    '**For** whoever plans a deployment at scale or its budget: how many API pods, nodes, Redis shards and DynamoDB units 10 million document reads and 5,000 orders per second take, what that costs a month, and what breaks first. A first deployment is in [deploy.md](deploy.md).',
  );
  add(
    `Generated by \`make capacity\` (\`bench/capacity/\`) from the per-pod figures of \`make bench\` (\`bench/results/latest.json\`: run of ${bench.date}, commit \`${bench.commit}\`, ${bench.cpuModel}) and the parameters in \`bench/capacity/parameters.json\`. Do not edit it by hand: a test re-generates it and fails when it differs. Prices are ${PRICE_REGION} list prices as of ${PRICES_AS_OF} (sources at the end).`,
  );

  add('## Inputs');
  add(
    table(
      ['input', 'value', 'from'],
      [
        ['document reads', `${n(p.targets.documentReadsPerSecond)}/s`, 'target (issue 13)'],
        ['orders', `${n(p.targets.ordersPerSecond)}/s`, 'target (issue 13)'],
        ['document writes, deletes, order reads', `${n(p.targets.documentWritesPerSecond)}/s, ${n(p.targets.documentDeletesPerSecond)}/s, ${n(p.targets.orderReadsPerSecond)}/s`, 'parameters (assumed)'],
        ['document listings', `${n(p.targets.documentListingsPerSecond)} pages/s of ${n(p.listing.pageItems)} items`, 'parameters (assumed)'],
        [
          'document events',
          p.events.enabled ? 'on: document.created and document.deleted published through the outbox' : 'off',
          '`DOCUMENT_EVENTS` (on by default), parameters',
        ],
        ['documents', `${n(p.documents.count)}, reads Zipf with exponent ${p.documents.zipfExponent}`, 'parameters (assumed)'],
        ['sizes (share of documents)', p.documents.sizes.map((size) => `${bytes(size.bytes)} ${pct(size.share, 2)}`).join(', '), `parameters (assumed); mean ${bytes(base.reads.meanSize)}`],
        ['cacheable up to', bytes(p.documents.cacheableMaxBytes), 'larger documents stream from S3, never cached'],
        ['API CPU per hot read (memory hit, 1 KiB)', ms(bench.hotMsPerRead), 'measured: `get-hot` (no authentication)'],
        ['API CPU per read missing both caches', ms(bench.coldMsPerRead), 'measured: `get-cold` (Redis GET, DynamoDB GetItem, Redis fill)'],
        ['API CPU per read from Redis', ms(bench.warmMsPerRead), bench.warmMeasured ? 'measured: `get-warm`' : 'assumed: the cold figure, an upper bound (`get-warm` measures it; this latest.json predates it)'],
        ['API CPU per order', ms(bench.msPerOrder), 'measured: `post-orders`'],
        ['API CPU per document write', ms(bench.msPerDocumentWrite), 'measured: `post-documents-small`'],
        [
          'API CPU per direct link',
          `${n(base.api.link.linkMs, 3)} ms: ${pct(base.api.link.hit)} memo hits at ${ms(bench.memoHitMsPerLink)}, the rest at ${p.cdn.uncachedCpuMsPerLink} ms`,
          `memo hit ${linkSources(bench).memoHit}; uncached ${linkSources(bench).uncached}; hit ratio per pod and expiry bucket (The CDN tier)`,
        ],
        [
          'API CPU per listing page',
          ms(bench.msPerListingPage),
          !bench.listingMeasured
            ? 'assumed (`list-documents` measures it; this latest.json has no such row)'
            : `measured: \`list-documents\` (pages of 100 small documents)${
                bench.listingRun ? `, in a run of its own (\`bench/${bench.listingRun.file}\`)${bench.listingRun.slowerHost ? ' on a slower host than the figures above: an upper bound' : ''}` : ''
              }`,
        ],
        [
          'API CPU of a key and the rate limit, per request',
          p.rateLimit.enabled ? ms(bench.authMsPerRequest) : 'none: AUTH_MODE=none',
          `measured: the hot read's CPU × (\`get-hot-api-key\` over \`get-hot-auth-off\` − 1), two rows of one run${
            bench.authRun ? ` (\`bench/${bench.authRun.file}\`)` : ''
          }; added to every request`,
        ],
        ['API CPU per KiB sent above 1 KiB', `${p.api.cpuMsPerKiBSent} ms`, 'assumed (≈ 2 GB/s per core for large writes)'],
        ['consumer CPU per event', `${p.api.consumerCpuMsPerEvent} ms`, 'assumed: three DynamoDB writes at the lean client\'s measured 0.22-0.24 ms each'],
        ['pods', `${p.api.vcpuPerPod} vCPU, planned at ${pct(p.api.targetCpuUtilization, 0)} CPU`, `${p.api.availabilityZones} AZs: losing one puts the others at ${pct(p.api.targetCpuUtilization * 1.5, 0)}`],
        ['process memory cache per pod', bytes(p.api.memoryCacheBytes), '`MEMORY_CACHE_MAX_BYTES` (default)'],
        ['one order burst pod', `${n(bench.burstRate)} orders/s at p95 ${bench.burstP95Ms} ms`, 'measured: `orders-burst`'],
      ],
    ),
  );
  const node = EC2[p.api.nodeType]!;
  add(
    `The node type is a parameter (\`api.nodeType\`): ${node.name}, ${node.processor}, ${node.arch}. The benchmark machine is x86_64 (${bench.cpuModel}). A vCPU of the node type is taken as equal to one core of the benchmark machine: an assumption to check with one pod on the real node type${
      node.vcpuIsCore ? '' : ` (an ${node.name} vCPU is a hyperthread, half a core: expect fewer requests per vCPU)`
    }; the image is built for both architectures, and the node group runs this type (docs/deploy.md, "Nodes").`,
  );

  add('## The deployment at the targets');
  add(table(['tier', 'size', 'demand and notes'], deploymentRows(base, hits)));
  add(documentsLine(p, bench, base));

  add(`## Monthly cost (${PRICE_REGION} list prices of ${PRICES_AS_OF}, 730 hours)`);
  add(table(['item', 'per month'], [...base.cost.map((line) => [line.item, usd(line.usd)]), ['**total**', `**${usd(base.totalUsd)}**`]]));
  add(
    `DynamoDB on-demand instead of provisioned: ${usd(base.dynamodb.onDemand)} a month (provisioned, planned at ${pct(p.dynamodb.planningUtilization, 0)} use, ${usd(base.dynamodb.provisioned)}). ` +
      'Bytes dominate: egress (from the pods and from CloudFront), the load balancers\' processed bytes and the cross-AZ traffic to Redis grow with the bytes served, not with the service\'s work. The CDN below takes the large documents\' bytes off the pods and the ALBs; compression and a committed-use price cut the rest; reserved instances and savings plans cut the compute lines by 30-60%.',
  );

  // One block each: a table needs the blank line before it.
  for (const block of [...cdnSection(p, bench, base, extras), ...loadBalancerSection(p, base), ...beforeAfterSection(p, base, extras), ...burstSection(p, bench, base, extras)]) add(block);

  add('## Hit ratios, simulated');
  add(
    `The hit ratios are not guessed: \`bench/capacity/simulate.ts\` drives the service's own \`MemoryCache\` (\`src/documents/memory-cache.ts\`, imported, not copied) with a Zipf stream of document ranks (exponent ${p.documents.zipfExponent} over ${n(p.documents.count)} documents, each rank's size drawn once from the size distribution), from a seeded PRNG (pure-rand xoroshiro128+, seed ${p.simulation.seed}), so every run gives the same figures. ` +
      `After a warm-up (until the cache is full, then five times its entry count again), the ratio is measured over ${hits.memory.hitRatio.batches} batches of ${n(hits.memory.hitRatio.requestsPerBatch)} requests; the figure after ± is the half-width of the 95% confidence interval of the batch means. That interval, a few tenths of a point, is how we know the run is long enough.`,
  );
  add(
    'The load balancer spreads requests over pods without looking at the id (round robin, least outstanding requests), so each pod sees an independent sample of the same stream: its hit ratio does not depend on how many pods there are, and adding pods adds no cache capacity, since every pod holds the same hot set. Routing by a hash of the id (an ingress with consistent hashing; the ALB cannot do it) gives each pod its own ids, and N pods act as one cache of N × the size:',
  );
  add(
    table(
      ['memory per pod', 'routing', 'pods', 'memory hit ratio', 'byte hit ratio', 'entries per pod'],
      [
        ...hits.memorySweep.map((run) => [bytes(run.memoryBytes), 'any pod', 'any', ci(run.hitRatio), pct(run.byteHitRatio), n(run.entriesPerPod)]),
        ...hits.podSweep.filter((run) => run.pods > 1).map((run) => [bytes(run.memoryBytes), 'any pod (simulated)', String(run.pods), ci(run.hitRatio), pct(run.byteHitRatio), n(run.entriesPerPod)]),
        ...hits.byIdSweep.map((run) => [bytes(run.memoryBytes), 'by id hash', String(run.pods), ci(run.hitRatio), pct(run.byteHitRatio), n(run.entriesPerPod)]),
      ],
    ),
  );
  add(
    `Redis is modelled as one LRU bounded in bytes (keys take their content, ${p.documents.metadataBytes} B of metadata and ${p.redis.keyOverheadBytes} B of key and Redis overhead), fed with the memory misses of all pods: each document at its read rate times its memory miss ratio from the run above. Millions of keys would take minutes to simulate, so the stream is sampled by key (SHARDS, Waldspurger et al., FAST '15): one id in ${n(1 / hits.redis.sampleRate)} (${n(hits.redis.sampledDocuments)} ids), against ${pct(hits.redis.sampleRate, 3)} of the memory, about ${n(p.simulation.redis.sampledEntries)} keys. ` +
      `${hits.redisRuns.length} samples (different ids) give ${hits.redisRuns.map((run) => pct(run.hitRatio.mean)).join(', ')}: their spread, more than each run's own interval (± ${(hits.redisRuns[0]!.hitRatio.halfWidth * 100).toFixed(2)}), is the error of the sampling. ` +
      `The TTL (${n(p.redis.ttlSeconds)} s, not extended by hits) adds at most one refill per key per TTL: ${n(base.reads.ttlRefills)}/s, counted as misses.`,
  );
  add(
    table(
      ['Redis usable memory', 'hit ratio (of memory misses)', 'byte hit ratio', 'keys held'],
      hits.redisSweep.map((run) => [bytes(run.usableBytes), ci(run.hitRatio), pct(run.byteHitRatio), n(run.entries)]),
    ),
  );
  add(
    table(
      ['size', 'share of reads', 'memory hit ratio', 'Redis hit ratio (of what reaches it)', 'reads/s reaching DynamoDB'],
      base.reads.classes.map((entry, i) => [
        bytes(entry.bytes),
        pct(hits.catalog.sizes[i]!.share, 2),
        entry.cacheable ? pct(entry.memoryHits / entry.reads) : 'never cached',
        entry.cacheable ? pct(entry.redisGets ? entry.redisHits / entry.redisGets : 0) : '-',
        n(entry.redisMisses + entry.uncacheable),
      ]),
    ),
  );

  add('## Hot keys');
  add(
    `**One document at ${n(p.hotKeys.documentReadsPerSecond)} reads/s** (${bytes(p.hotKeys.documentBytes)}; the model's most read document takes ${n(base.s3.hottestRps)}/s already). Spread over ${n(hotPods)} pods that is ${n(p.hotKeys.documentReadsPerSecond / hotPods)}/s per pod, each answered from process memory: it is the most recently used entry of every pod, so the LRU never evicts it. ` +
      `CPU: ${n((p.hotKeys.documentReadsPerSecond * (bench.hotMsPerRead + (p.rateLimit.enabled ? bench.authMsPerRequest : 0))) / 1000, 1)} cores over the fleet${p.rateLimit.enabled ? ', the key and the rate limit included' : ''}. Egress: ${gbps(p.hotKeys.documentReadsPerSecond * hotBytes)}. ` +
      `What still reaches Redis: one GET per pod when its memory starts empty (a new pod, a reconnect of its invalidation subscription, which empties it on purpose): at most ${n(hotPods)} GETs of one key on one shard at a rollout, nothing in between. ` +
      `DynamoDB: nothing while Redis holds it; after the key's TTL (${n(p.redis.ttlSeconds)} s) the pods keep serving from memory, and only pods that start while the key is absent read the item, one read per pod (concurrent misses in a pod share one read): ≤ ${n(hotPods)} strongly consistent reads of one item, below its partition's ${n(DYNAMODB.partitionRcu)} RCU/s. ` +
      `A delete publishes one invalidation that all ${n(hotPods)} pods receive. The same document above ${bytes(p.documents.cacheableMaxBytes)} would be a failure: every read a GetItem of one item (${n(DYNAMODB.partitionRcu)} RCU/s per partition) and an S3 GET of one key (${n(S3.getsPerPrefix)}/s per prefix), i.e. throttled above ~${n(S3.getsPerPrefix)} reads/s: large documents need a cache too before they can be hot.`,
  );
  add(
    `**One order payload retried ${n(retryRps)} times a second.** Every retry makes the conditional PutItem of the dedup item \`DEDUP#<tenant>#<hash>\` (it fails, and a failed conditional write still consumes a WCU), a strongly consistent GetItem of the same item and a GetItem of the order: ${n(retryRps)} WCU/s and ${n(retryRps)} RCU/s on one partition key, against ${n(DYNAMODB.partitionWcu)} WCU/s and ${n(DYNAMODB.partitionRcu)} RCU/s per partition. ` +
      `One key cannot be split (the table has no sort key), so ~${pct(1 - DYNAMODB.partitionWcu / retryRps, 0)} of those writes are throttled, the API's retries (AWS_MAX_ATTEMPTS) add to them, and other orders whose keys share that partition are throttled with them. ` +
      `With \`AUTH_MODE=api-key\` the per-tenant limit (\`RATE_LIMIT_PER_MINUTE\` 60,000, i.e. ${n(tenantCap)}/s) answers 429 to all but ${n(tenantCap)}/s before any DynamoDB call, which still puts the partition at its write limit. ` +
      'The fix: read the dedup item first (a GetItem, no write, when the window holds), and keep a short process-local map of payload hash → order id for the window (a dedup record never changes within it), so retries cost neither a write nor a remote read.',
  );

  add(`## ${p.targets.growth}× the target: the first bottleneck`);
  const atBase = over(base);
  add(
    atBase.length
      ? `Already **at the target** these are over their limit and must change first: ${atBase.map((limit) => `${limit.what} (${n(limit.demand)} against ${n(limit.limit)} ${limit.unit}: ${limit.fix})`).join('; ')}.`
      : 'At the target every limit below holds.',
  );
  add(
    firstAtGrowth
      ? `With those fixed, at ${p.targets.growth}× (${n(grown.rates.reads)} reads/s, ${n(grown.rates.orders)} orders/s) the first to break is **${firstAtGrowth.what}**: ${n(firstAtGrowth.demand)} against ${n(firstAtGrowth.limit)} ${firstAtGrowth.unit}. Then: ${firstAtGrowth.fix}.`
      : '',
  );
  add(table(['limit', `demand at ${p.targets.growth}×`, 'limit', 'use', 'what to change'], limitRows(grown.limits)));
  add(
    `At ${p.targets.growth}× the deployment scales linearly otherwise: ${n(grown.api.apiPods)} API pods on ${n(grown.api.nodes)} nodes, ${n(grown.redis.shards)} Redis shards (${n(grown.redis.redisNodes)} nodes), ${n(grown.dynamodb.tables[0]!.rcu)} RCU/s on the documents table, ${usd(grown.totalUsd)} a month.`,
  );

  add('## Assumptions to check');
  add(
    [
      '- The per-request CPU figures come from one 2-core machine against emulators (see `bench/README.md`); a Graviton3 vCPU is taken as one such core.',
      bench.warmMeasured ? '' : '- A read served from Redis is costed as a read that misses both caches: an upper bound until a reference run includes `get-warm`.',
      '- Sizes do not depend on popularity; the Zipf exponent and the size mix are the parameters that move every figure most.',
      `- Listing pages are full (tenants hold ${n(p.listing.pageItems)} documents or more). Sizes an item's listing and event attributes add (${p.documents.listingAttributeBytes} B, ${p.events.itemAttributeBytes} B) and an index entry's (${p.listing.indexEntryBytes} B) are those of an item of the local stack for a 6-character tenant (91, 75 after its mark and 124 B), rounded up; a trace context, kept on the item when tracing is on, adds about 80 B.`,
      `- Redis ops/s per node: ${REDIS_OPS_NOTE}. Sized at ${pct(p.redis.planningUtilization, 0)} of that and of the baseline network; reads go to the shard primaries (the service uses one endpoint), replicas only replicate.`,
      '- Clients keep connections open for ' + n(p.loadBalancer.requestsPerConnection) + ' requests; connections live ' + n(p.loadBalancer.connectionSeconds) + ' s.',
      `- The rate limiter counts every request (\`AUTH_MODE=api-key\`). The largest tenant sends ${pct(p.rateLimit.largestTenantShare, 0)} of the traffic, spread over every pod: each pod sends its counts in one call every ${FLUSH_MS} ms, and one by one only in its first ${FLUSH_MS} ms of each minute's window (they measure the tenant's pace) and near the tenant's limit (not modelled: each tenant's limit, \`RATE_LIMIT_PER_MINUTE\`, is taken to be above its traffic, so the largest tenant's ${n((base.rates.requests * p.rateLimit.largestTenantShare * 60) / 1e6, 0)} M requests a minute need a limit above that, not the default 60,000). The other tenants' counts are taken as one Redis call each, an upper bound.`,
      `- The load balancers are counted from published figures only: ${n(ALB.reservedLcuPerLoadBalancer)} reservable LCU and ${n(ALB.targetsPerLoadBalancer)} targets per ALB; AWS publishes no throughput ceiling for one ALB. Several ALBs sit behind DNS (weighted records), each with its own target group (a target group belongs to one load balancer), so the pods are split into as many groups.`,
      `- CloudFront: cache key without the query string (a cache policy such as CachingOptimized), so the signed URL's Expires, Signature and Key-Pair-Id (or Policy) do not split the cache; all viewers of a document share one cached object. A policy that includes query strings would make every link a miss. Hit ratio from ${p.cdn.cacheLocations} independent caches keeping an object ${n(p.cdn.retentionSeconds / 3600)} h after its last request (both assumed).`,
      `- One link per read through CloudFront (clients ask again for each read; a client that keeps a link until it expires asks less). A link's CPU is the memo hit's (${ms(bench.memoHitMsPerLink)}) or the uncached price (${p.cdn.uncachedCpuMsPerLink} ms), as in the inputs; a memo miss whose document's location is still in the pod's memory (\`DocumentCache.location\`, kept across buckets) skips the GetItem, so the uncached price is an upper bound. Requests reach the pods at random (the load balancers), independently of popularity. The caches still hold the content of linked documents up to ${bytes(p.documents.cacheableMaxBytes)}, as simulated: Redis traffic is an upper bound.`,
    ]
      .filter(Boolean)
      .join('\n'),
  );

  add('## Prices and limits used');
  add(
    [
      `- EC2 ${Object.values(EC2).map((type) => `${type.name} $${type.usdPerHour}/h`).join(', ')} (aws.amazon.com/ec2/pricing/on-demand).`,
      `- ElastiCache ${Object.values(ELASTICACHE).map((type) => `${type.name} $${type.usdPerHour}/h, ${type.memoryGiB} GiB, ${type.baselineGbps} Gbit/s baseline`).join('; ')} (aws.amazon.com/elasticache/pricing); 75% of memory usable (reserved-memory-percent 25).`,
      `- DynamoDB on-demand $${DYNAMODB.onDemandUsdPerMillionReads} per million reads, $${DYNAMODB.onDemandUsdPerMillionWrites} per million writes; provisioned $${DYNAMODB.provisionedUsdPerRcuHour}/RCU-h, $${DYNAMODB.provisionedUsdPerWcuHour}/WCU-h; $${DYNAMODB.storageUsdPerGbMonth}/GB-month (aws.amazon.com/dynamodb/pricing). Per partition ${n(DYNAMODB.partitionRcu)} RCU, ${n(DYNAMODB.partitionWcu)} WCU, ${DYNAMODB.partitionGb} GB; on-demand table quota ${n(DYNAMODB.onDemandTableQuota)} units/s, adjustable; new on-demand tables start warm at ${n(DYNAMODB.newTableWarmReads)} reads and ${n(DYNAMODB.newTableWarmWrites)} writes/s (DynamoDB developer guide: partitions, warm throughput, on-demand maximum throughput).`,
      `- S3 $${S3.usdPerThousandGets} per 1,000 GET, $${S3.usdPerThousandPuts} per 1,000 PUT, $${S3.storageUsdPerGbMonth}/GB-month; ${n(S3.getsPerPrefix)} GET/s per prefix (S3 performance guidelines).`,
      `- SNS $${MESSAGING.snsUsdPerMillionPublishes} per million publishes; SQS $${MESSAGING.sqsUsdPerMillionRequests} per million requests (aws.amazon.com/sns/pricing, /sqs/pricing).`,
      `- ALB $${ALB.usdPerHour}/h and $${ALB.usdPerLcuHour}/LCU-h; an LCU is ${ALB.newConnectionsPerLcu} new connections/s, ${n(ALB.activeConnectionsPerLcu)} active connections, ${ALB.gbPerHourPerLcu} GB/h (aws.amazon.com/elasticloadbalancing/pricing).`,
      `- ALB quotas: ${n(ALB.targetsPerLoadBalancer)} targets and ${n(ALB.reservedLcuPerLoadBalancer)} reserved LCU per ALB, both adjustable (docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html). NLB $${NLB.usdPerHour}/h and $${NLB.usdPerNlcuHour}/NLCU-h; a TCP NLCU is ${NLB.newConnectionsPerNlcu} new connections/s, ${n(NLB.activeConnectionsPerNlcu)} active, ${NLB.gbPerHourPerNlcu} GB/h; ${NLB.targetsPerAz} targets per AZ (aws.amazon.com/elasticloadbalancing/pricing, NLB quotas).`,
      `- CloudFront data out, US/Europe, per GB by monthly tier: ${CLOUDFRONT.tiers.map((tier) => `$${tier.usdPerGb.toFixed(3)}`).join(' / ')} (first 10 TB, next 40 TB, next 100 TB, next 350 TB, next 524 TB, next 4 PB, over 5 PB); origin fetches from S3 free; HTTPS requests $${CLOUDFRONT.httpsUsdPer10kRequests.toFixed(4)} per 10,000 (aws.amazon.com/cloudfront/pricing, read 2026-12-07; the request price as given in issue 21, to check on the page).`,
      `- Time to a new node: the Cluster Autoscaler (docs/deploy.md, "Nodes") asks for one within 60 s of a pod turning unschedulable on clusters of 100 to 1,000 nodes, about 15 s on average (its FAQ, "What are the Service Level Objectives for Cluster Autoscaler?"), planned at the worst, ${p.burst.autoscalerDecisionSeconds} s; EC2's launch and the node's join are planned at ${p.burst.nodeLaunchSeconds} s (assumed: the EKS user guide, "Scale cluster compute with Karpenter and Cluster Autoscaler", gives "under a minute" for Karpenter's launches, which go through the same EC2 API). HPA: metrics-server resolution ${p.burst.metricsResolutionSeconds} s, controller sync ${p.burst.hpaSyncSeconds} s, default scale-up policy 100% (or 4 pods) per 15 s, pods not yet ready counted at 0% CPU when scaling up (kubernetes.io, "Horizontal Pod Autoscaling"). DynamoDB keeps up to ${p.burst.dynamodbBurstSeconds} s of unused provisioned capacity for bursts (developer guide, "burst capacity").`,
      `- Internet egress ${TRANSFER.internetTiers.map((tier) => `$${tier.usdPerGb}`).join(' / ')} per GB by monthly tier (10 TB / 40 TB / 100 TB / beyond); cross-AZ $${TRANSFER.crossAzUsdPerGbEachWay}/GB each way; EKS $0.10 per cluster-hour.`,
    ].join('\n'),
  );
  return `${lines.join('\n').trimEnd()}\n`;
}

/** Where the two prices of a link come from. */
function linkSources(bench: BenchFigures) {
  return {
    memoHit: bench.linkMeasured
      ? 'measured: `get-link` (one hot document: its URL signed once a bucket)'
      : `assumed: \`get-link\` after the memo, 0.045-0.053 ms (bench/README.md, "Direct links", 2026-12-07); this latest.json has no \`get-link\` row`,
    uncached:
      'assumed: `get-link` before the memo (an S3 presign and a DynamoDB GetItem per link) 0.86-1.17 ms (bench/README.md, "Direct links", 2026-12-07, loaded machine), plus what a CloudFront RSA-2048 signature costs over an S3 presign, 0.62 against 0.31 ms (`node bench/link-signing.ts 1000`)',
  };
}

/** A deployment's monthly cost of the lines whose item starts with `prefix`. */
function costOf(d: Deployment, prefix: string): number {
  return d.cost.filter((line) => line.item.startsWith(prefix)).reduce((sum, line) => sum + line.usd, 0);
}

function cdnSection(p: Parameters, bench: BenchFigures, base: Deployment, extras: Extras): string[] {
  const c = base.cdn;
  const l = base.api.link;
  return [
    '## The CDN tier (issue 21)',
    `Documents whose content is in S3 (above the inline ${bytes(p.documents.inlineMaxBytes)}) and at least ${bytes(p.cdn.redirectMinBytes)} large (\`DOCUMENT_REDIRECT_MIN_BYTES\`) are read through a CloudFront signed link: a plain GET answers 307 to it, or the client asks \`GET /documents/{id}/link\`; ${pct(p.cdn.followShare, 0)} of those reads follow it (assumed). Smaller documents are still served by the pods. ` +
      `The pods answer ${n(c.viaLink)} link requests a second (${n(p.cdn.linkResponseBytes)} B each, headers included), ${n(l.linkCores)} cores of lookup and signing (${n(l.linkMs, 3)} ms a link); CloudFront sends the bytes. ` +
      `A pod signs a document's URL once per expiry bucket (B = min(60 s, TTL / 5) = ${n(l.bucketSeconds)} s with \`DOCUMENT_LINK_TTL_SECONDS\` ${n(p.cdn.linkTtlSeconds)}) and keeps the document's location in memory: every other link to it in the bucket is a memo hit (${ms(bench.memoHitMsPerLink)}); the first costs the uncached price (${p.cdn.uncachedCpuMsPerLink} ms; both in the inputs above, with their sources). ` +
      `The ${n(l.linkedDocuments)} linked documents (the size classes linked, their share of ${n(p.documents.count)}) keep the reads' Zipf popularity (exponent ${p.documents.zipfExponent}: sizes are independent of popularity); a pod gets ${n(l.linksPerPodPerBucket)} link requests a bucket, for ${n(l.distinct)} distinct documents on average (Σ_j 1 − (1 − p_j)^n, \`linkMemoHitRatio\` in \`bench/capacity/model.ts\`), so ${pct(l.hit)} are memo hits. ` +
      `The links per pod depend on the pods, which depend on the link's CPU: the hit ratio is taken at the ${n(l.firstPassPods)} pods of a first sizing with every link uncached (more pods, fewer links each: a lower hit ratio than at the final ${n(base.api.apiPods)}, so conservative), then the pods are sized again with it. ` +
      `The memo holds ${n(l.memoEntries)} URLs (${n(p.cdn.linkMemoMaxEntries)} entries and ${bytes(p.cdn.linkMemoMaxBytes)} at most, an entry of a CloudFront URL ${n(p.cdn.linkMemoEntryBytes)} B as it counts them). ` +
      `${l.capped ? `That is fewer than the distinct documents of a bucket: the hit ratio is bounded by a memo that keeps the ${n(l.memoEntries)} most linked documents, every link to another a miss. ` : `That is more than the distinct documents of a bucket, whose entries are always more recent than the past buckets': none is evicted within its bucket (were it fewer, the model would count a memo of the ${n(l.memoEntries)} most linked documents, every link to another a miss). `}` +
      `Documents are immutable (a key names one upload), so nothing is invalidated: a miss is a first request or an eviction. With sizes independent of popularity once a document is in a cache its hit ratio is the same in every size class: ${pct(c.hitRatio, 3)} (Che's approximation over the Zipf popularity, \`cdnHitRatio\` in \`bench/capacity/model.ts\`); with the first read of each new document at each of the ${p.cdn.cacheLocations} caches (${n(c.compulsoryFetches, 1)}/s) it is ${pct(1 - c.originFetches / c.viaLink, 2)}: ${n(c.originFetches, 1)} origin fetches a second from S3. At ${n(p.targets.documentReadsPerSecond)} reads/s over ${n(p.documents.count)} documents, even the least read is asked every few minutes: the hit ratio is high under any plausible retention (1 h to 7 days: see the sensitivity below), and it moves S3's GETs, not the bill: origin fetches from S3 are free.`,
    table(
      ['size', 'reads/s', 'through a link', 'CDN hit ratio', 'origin fetches/s', 'out of CloudFront', 'out of the pods'],
      base.reads.classes.map((entry, i) => {
        const cls = c.perClass[i]!;
        return [
          bytes(entry.bytes),
          n(entry.reads),
          cls.viaLink > 0 ? n(cls.viaLink) : entry.bytes <= p.documents.inlineMaxBytes ? 'no: inline' : 'no: below the redirect size',
          cls.viaLink > 0 ? pct(1 - cls.originFetches / cls.viaLink, 2) : '-',
          cls.viaLink > 0 ? n(cls.originFetches, 1) : '-',
          cls.viaLink > 0 ? gbps(cls.bytesOut) : '-',
          gbps((entry.reads - cls.viaLink) * (entry.bytes + p.api.responseHeaderBytes) + cls.viaLink * p.cdn.linkResponseBytes),
        ];
      }),
    ),
    `Of the read bytes, ${pct(c.bytesPerSecond / (c.bytesPerSecond + base.transfer.responseBytesPerSecond))} leave through CloudFront and ${pct(base.transfer.responseBytesPerSecond / (c.bytesPerSecond + base.transfer.responseBytesPerSecond))} (every byte of the small documents, the links, writes and orders) still through the load balancers. CloudFront: ${usd(c.egressUsd)} for ${n(c.gbPerMonth / 1e6, 1)} PB a month at its tiers (most of it at the over-5 PB price), ${usd(c.requestsUsd)} for the requests. The same bytes from the pods cost ${usd(costOf(extras.before, 'Internet egress') - costOf(base, 'Internet egress'))} of EC2 egress and their share of the load balancers' LCU.`,
  ];
}

function loadBalancerSection(p: Parameters, base: Deployment): string[] {
  const lb = base.lb;
  const nlbTotal = lb.nlbUsd + lb.ingressUsd;
  return [
    '## Load balancers: how many, and ALB against NLB with an ingress tier',
    `AWS publishes no throughput ceiling for one ALB (it scales with the traffic); what it publishes per ALB is ${n(ALB.targetsPerLoadBalancer)} targets and ${n(ALB.reservedLcuPerLoadBalancer)} reservable LCU (LCU reservation, for traffic that cannot wait for the ALB to scale). The model plans one ALB per ${n(ALB.reservedLcuPerLoadBalancer)} LCU: ${n(lb.lcus)} LCU take **${lb.albs.byLcu}**, ${n(base.api.apiPods)} pods as IP targets ${lb.albs.byTargets}; so **${lb.albs.count} ALBs** behind weighted DNS records, each with its own target group and its share of the pods. ` +
      `Processed bytes decide the LCU (${n(lb.processedGbPerHour)} GB/h against ${n(lb.newConnections / ALB.newConnectionsPerLcu)} LCU of new connections): what goes to CloudFront leaves the ALBs.`,
    table(
      ['option', 'load balancers', 'capacity units', 'proxies', 'per month'],
      [
        [`ALB (what \`k8s/\` deploys)`, `${lb.albs.count} ALBs`, `${n(lb.lcus)} LCU`, '-', usd(lb.albUsd)],
        [
          'NLB (TCP) + ingress tier (TLS, HTTP routing)',
          `${lb.nlbCount} NLB`,
          `${n(lb.nlcus)} NLCU`,
          `${n(lb.ingressNodes)} × ${base.api.node.name} (${n(lb.ingressNodesForCpu)} for CPU at ${n(p.ingress.requestsPerVcpuPerSecond)} req/s per vCPU, assumed; ${n(lb.ingressNodesForNetwork)} for network at ${pct(p.ingress.planningUtilization, 0)} of ${base.api.node.baselineGbps} Gbit/s)`,
          `${usd(nlbTotal)} (${usd(lb.nlbUsd)} + ${usd(lb.ingressUsd)})`,
        ],
      ],
    ),
    `The NLB's byte is 25% cheaper than the ALB's ($${NLB.usdPerNlcuHour} against $${ALB.usdPerLcuHour} per GB-hour unit), and a proxy tier of our own can route by a hash of the id (the memory hit ratio of "by id hash" below), but it is one more tier to run, to scale and to keep in-zone (NLB cross-zone traffic is charged). ${nlbTotal < lb.albUsd ? `It saves ${usd(lb.albUsd - nlbTotal)} a month here: worth it once the bytes are this large.` : `It costs ${usd(nlbTotal - lb.albUsd)} more a month here: the ALB stays.`} The monthly total keeps the ALBs.`,
  ];
}

function beforeAfterSection(p: Parameters, base: Deployment, extras: Extras): string[] {
  const { before, sensitivity } = extras;
  const rows: Array<[string, string]> = [
    ['EKS cluster and nodes', 'EKS'],
    ['ElastiCache', 'ElastiCache'],
    ['DynamoDB', 'DynamoDB'],
    ['S3', 'S3'],
    ['SNS, SQS', 'SNS'],
    ['load balancers', ''],
    ['internet egress from the pods', 'Internet egress'],
    ['CloudFront', 'CloudFront'],
    ['cross-AZ', 'Cross-AZ'],
  ];
  const lbOf = (d: Deployment) => d.lb.albUsd;
  const top = sensitivity.slice(0, 2);
  return [
    `## Before and after: the same targets, with and without the CDN`,
    `Both columns at ${n(p.targets.documentReadsPerSecond)} reads/s and ${n(p.targets.ordersPerSecond)} orders/s, the same caches and the same prices. Before: every byte through the pods and the load balancers. After: documents from ${bytes(p.cdn.redirectMinBytes)} through CloudFront links.`,
    table(
      ['item', 'before', 'after', 'change'],
      [
        ...rows.map(([label, prefix]) => {
          const [b, a] = prefix ? [costOf(before, prefix), costOf(base, prefix)] : [lbOf(before), lbOf(base)];
          return [label, usd(b), usd(a), `${a - b >= 0 ? '+' : '−'}${usd(Math.abs(a - b))}`];
        }),
        ['API pods / nodes', `${n(before.api.apiPods)} / ${n(before.api.nodes)}`, `${n(base.api.apiPods)} / ${n(base.api.nodes)}`, ''],
        ['load balancers (count, LCU)', `${before.lb.albs.count}, ${n(before.lb.lcus)}`, `${base.lb.albs.count}, ${n(base.lb.lcus)}`, ''],
        ['**total**', `**${usd(before.totalUsd)}**`, `**${usd(base.totalUsd)}**`, `**${pct((base.totalUsd - before.totalUsd) / before.totalUsd)}**`],
      ],
    ),
    '**Sensitivity.** The monthly total (after) with one assumption at a low and a high value, the rest as above, sorted by how much the total moves. The Zipf exponent and the size mix move every figure too, but need the cache simulations re-run: they are not in this table.',
    table(
      ['assumption', 'as planned', 'low', 'total', 'high', 'total'],
      sensitivity.map((row) => [row.assumption, row.base, row.low, usd(row.lowUsd), row.high, usd(row.highUsd)]),
    ),
    `The two that move the total most: **${top[0]!.assumption}** (${usd(Math.min(top[0]!.lowUsd, top[0]!.highUsd))} to ${usd(Math.max(top[0]!.lowUsd, top[0]!.highUsd))}) and **${top[1]!.assumption}** (${usd(Math.min(top[1]!.lowUsd, top[1]!.highUsd))} to ${usd(Math.max(top[1]!.lowUsd, top[1]!.highUsd))}). Both are about bytes: who sends them, and at what price per GB. What the service's own work costs (pods, Redis, DynamoDB) is a small part either way. ` +
      `Linking smaller documents costs more, not less: CloudFront charges $${CLOUDFRONT.httpsUsdPer10kRequests} per 10,000 requests, and a byte moved off the pods saves at most $${(TRANSFER.internetTiers.at(-1)!.usdPerGb + ALB.usdPerLcuHour - CLOUDFRONT.tiers.at(-1)!.usdPerGb).toFixed(3)}/GB (EC2's last tier and the ALB's LCU against CloudFront's last tier), so a link pays for itself above about ${n(CLOUDFRONT.httpsUsdPer10kRequests / 10_000 / ((TRANSFER.internetTiers.at(-1)!.usdPerGb + ALB.usdPerLcuHour - CLOUDFRONT.tiers.at(-1)!.usdPerGb) / 1e9) / 1024)} KiB: keep \`DOCUMENT_REDIRECT_MIN_BYTES\` above that.`,
  ];
}

function burstSection(p: Parameters, bench: BenchFigures, base: Deployment, extras: Extras): string[] {
  const { burst: b, timeToServe: t } = extras;
  const start = b.podStartSeconds;
  const samples = t ? t.samples.map((sample) => (sample.fromStartMs / 1000).toFixed(1)).join(', ') : '';
  const o = b.orders;
  const seconds = (value: number) => (Number.isFinite(value) ? `${n(value)} s` : 'never');
  return [
    `## Bursts: ${p.burst.factor}× the target, and the time to serve`,
    t
      ? `**A new pod, start to ready: ${start.toFixed(1)} s** (median of ${t.samples.length} lone starts of the API image: ${samples} s), from the container's start to the first 200 of \`/health/ready\`, measured by the image test on ${t.date.slice(0, 10)} (${t.cpuModel}, ${t.cores} cores, a shared and loaded machine: an upper bound), image \`${t.image}\`: \`TIME_TO_SERVE_FILE=bench/results/time-to-serve.json DOCSVC_IMAGE=${t.image} npx vitest run --config test/image/vitest.config.ts test/image/containers.test.ts\`. ` +
        `A new node: the Cluster Autoscaler's decision, planned at ${p.burst.autoscalerDecisionSeconds} s (its published worst case at this size), EC2's launch and join at ${p.burst.nodeLaunchSeconds} s (assumed), plus ${p.burst.imagePullSeconds} s to pull the image on it (assumed).`
      : `A new pod's start to ready is assumed at ${p.burst.assumedPodStartSeconds} s until the image test has written \`bench/results/time-to-serve.json\`.`,
    `**Reads at ${p.burst.factor}×.** At the planned ${pct(p.api.targetCpuUtilization, 0)} CPU the fleet at 100% serves ${n(1 / p.api.targetCpuUtilization, 2)}× the target: the rest of a ${p.burst.factor}× burst is refused at once with 503 and Retry-After (load shedding, \`MAX_IN_FLIGHT_REQUESTS\`) rather than queued. ` +
      `A wave of new pods takes ${n(b.waveSeconds)} s (metrics ${p.burst.metricsResolutionSeconds} s, HPA sync ${p.burst.hpaSyncSeconds} s, autoscaler ${p.burst.autoscalerDecisionSeconds} s, node ${p.burst.nodeLaunchSeconds} s, pull ${p.burst.imagePullSeconds} s, start ${start.toFixed(1)} s: the nodes are full, so every new pod waits for a node) and grows the fleet × ${n(b.growth, 2)}, since the HPA counts unready pods at 0% and does not step again until they are ready.`,
    table(
      ['from', 'to', 'API pods ready', 'serves (× target)', 'refused'],
      b.waves.map((w) => [`${n(w.from)} s`, Number.isFinite(w.to) ? `${n(w.to)} s` : '-', n(w.pods), n(Math.min(w.capacity, p.burst.factor), 2), pct(w.refused, 0)]),
    ),
    `Every request is served again after ${seconds(b.allServedAt)}, and the planned ${pct(p.api.targetCpuUtilization, 0)} is back after ${seconds(b.restoredAt)}; meanwhile ${n(b.refusedRequests / 1e6)} million requests are refused (clients retry after Retry-After). ` +
      `The first seconds cost no money, they cost answers: ${pct(b.waves[0]!.refused, 0)} of requests refused for the first ${n(b.waveSeconds)} s. Serving a ${p.burst.factor}× read burst from warm pods would take ${n(p.burst.factor * p.api.targetCpuUtilization, 1)}× today's nodes, ${usd(b.warmForBurstUsd)} a month more; the planned headroom costs ${usd(b.headroomUsd)} a month (the idle ${pct(1 - p.api.targetCpuUtilization, 0)} of the nodes). Behind the pods, Redis (sized at ${pct(p.redis.planningUtilization, 0)} of its network) and the ALBs (which scale on their own, or from the reserved LCU) would not take ${p.burst.factor}× either: a read burst of that size needs Redis planned for it, since resharding takes far longer than a burst.`,
    `**Orders at ${p.burst.factor}×** (${n(base.rates.orders)} → ${n(base.rates.orders * p.burst.factor)}/s). The API absorbs them without scaling: ${n(o.extraOrderCores)} more cores against ${n(o.headroomCores)} idle at the planned utilisation. The stores behind decide: the orders table at ${n(o.burstWcu)} WCU/s against ${n(o.provisionedWcu)} provisioned, ${Number.isFinite(o.bankedSeconds) ? `its banked burst capacity lasts about ${n(o.bankedSeconds)} s, then writes are throttled and the API answers 503 (on-demand, or provisioned autoscaling, in minutes)` : 'within what is provisioned'}; ` +
      `SNS takes ${n(MESSAGING.snsPublishQuotaUsEast1)} of ${n(o.publishes)} publishes/s, and the outbox keeps the other ${n(o.outboxGrowth)}/s for the relay to publish later (no order is lost, events are late); the consumers apply ${n(o.consumerCapacity)} events/s, and SQS holds the other ${n(o.queueGrowth)}/s until the consumer HPA catches up.`,
  ];
}

/** The short form `make capacity` prints. */
export function renderSummary(base: Deployment, hits: HitRatios): string {
  const rows = deploymentRows(base, hits).map((row) => row.map((cell) => cell.replaceAll('**', '')));
  const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
  const out = rows.map((row) => `${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}`);
  out.push('', ...base.cost.map((line) => `${line.item.padEnd(70)} ${usd(line.usd).padStart(14)}`), `${'total per month'.padEnd(70)} ${usd(base.totalUsd).padStart(14)}`);
  return out.join('\n');
}
