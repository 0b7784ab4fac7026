import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ELASTICACHE, REDIS_USABLE_MEMORY_SHARE } from './aws.ts';
import { burstPlan, hotReadAt, readBench, simulateHitRatios, simulateMemoryRuns, sizeDeployment, type BenchFigures, type HitRatios, type Parameters, type TimeToServe } from './model.ts';
import { renderMarkdown, renderSummary } from './render.ts';

// `make capacity`: the deployment for the targets, printed, and written to
// docs/capacity.md. `generate()` is what the test compares with the file.

const root = fileURLToPath(new URL('../..', import.meta.url));
export const DOCUMENT = `${root}docs/capacity.md`;

export function generate() {
  const parameters = JSON.parse(readFileSync(`${root}bench/capacity/parameters.json`, 'utf8')) as Parameters;
  const bench = readBench(`${root}bench/results/latest.json`, parameters);
  // Redis memory depends on the shard count, which depends on traffic more
  // than on the hit ratio: size once with the minimum memory, then simulate
  // the hit ratio at the memory those shards have, and size again.
  const node = ELASTICACHE[parameters.redis.nodeType];
  if (!node) throw new Error(`unknown Redis node type ${parameters.redis.nodeType}`);
  const memoryRuns = simulateMemoryRuns(parameters);
  const first = simulateHitRatios(parameters, memoryRuns, parameters.redis.minUsableGiB * 2 ** 30, false);
  const shards = sizeDeployment(parameters, bench, first, 1).redis.shards;
  const hits = simulateHitRatios(parameters, memoryRuns, shards * node.memoryGiB * REDIS_USABLE_MEMORY_SHARE * 2 ** 30);
  const base = sizeDeployment(parameters, bench, hits, 1);
  const grown = sizeDeployment(parameters, bench, hits, parameters.targets.growth);
  // Before issue 21: every byte through the pods and the load balancer.
  const before = sizeDeployment({ ...parameters, cdn: { ...parameters.cdn, enabled: false } }, bench, hits, 1);
  const sensitivity = sensitivityOf(parameters, bench, hits);
  const timeFile = `${root}bench/results/time-to-serve.json`;
  const timeToServe = existsSync(timeFile) ? (JSON.parse(readFileSync(timeFile, 'utf8')) as TimeToServe) : undefined;
  const podStartSeconds = timeToServe ? timeToServe.medianFromStartMs / 1000 : parameters.burst.assumedPodStartSeconds;
  const burst = burstPlan(parameters, base, bench, podStartSeconds);
  return {
    markdown: renderMarkdown(parameters, bench, hits, base, grown, { before, sensitivity, timeToServe, burst }),
    summary: renderSummary(base, hits),
    seconds: hits.seconds + first.seconds - memoryRuns.seconds,
  };
}

export type Sensitivity = Array<{ assumption: string; base: string; low: string; high: string; lowUsd: number; highUsd: number }>;

/**
 * The monthly total with one assumption at a low and a high value, the rest as in the
 * parameters; sorted by how far apart the two totals are. The cache simulations are not
 * re-run (the Zipf exponent and the size mix would need them: see "Assumptions to check").
 */
function sensitivityOf(p: Parameters, bench: BenchFigures, hits: HitRatios): Sensitivity {
  // A side of a row: its label, the parameters, and the bench figures where the row changes one of those.
  type Side = [string, Parameters, BenchFigures?];
  const total = ([, parameters, figures = bench]: Side) => sizeDeployment(parameters, figures, hits, 1).totalUsd;
  const variants: Array<{ assumption: string; base: string; low: Side; high: Side }> = [
    {
      assumption: 'share of read bytes served through CloudFront links',
      base: `documents in S3 from ${p.cdn.redirectMinBytes / 1024} KiB`,
      low: ['none (no redirect, clients read through the pods)', { ...p, cdn: { ...p.cdn, enabled: false } }],
      high: [
        '16 KiB documents in S3 and linked too (INLINE_CONTENT_MAX_BYTES 4 KiB, redirect from 16 KiB)',
        { ...p, documents: { ...p.documents, inlineMaxBytes: 4096 }, cdn: { ...p.cdn, redirectMinBytes: 16384 } },
      ],
    },
    {
      assumption: 'egress prices (EC2 and CloudFront) against list',
      base: `× ${p.transfer.priceFactor}`,
      low: ['× 0.6: a committed-use discount of 40% (assumed: AWS publishes that commits get private prices, not how much)', { ...p, transfer: { priceFactor: 0.6 } }],
      high: ['× 1: list price', { ...p, transfer: { priceFactor: 1 } }],
    },
    {
      assumption: 'response header bytes per request',
      base: `${p.api.responseHeaderBytes} B`,
      low: ['200 B', { ...p, api: { ...p.api, responseHeaderBytes: 200 } }],
      high: ['800 B', { ...p, api: { ...p.api, responseHeaderBytes: 800 } }],
    },
    {
      assumption: 'CDN retention of an unrequested object (its hit ratio)',
      base: `${p.cdn.retentionSeconds / 3600} h`,
      low: ['1 h', { ...p, cdn: { ...p.cdn, retentionSeconds: 3600 } }],
      high: ['7 days', { ...p, cdn: { ...p.cdn, retentionSeconds: 7 * 86400 } }],
    },
    {
      assumption: 'API CPU of a link the memo does not hold (lookup and signature)',
      base: `${p.cdn.uncachedCpuMsPerLink} ms`,
      low: ['0.86 ms (the lowest measured with an S3 presign, no CloudFront signature)', { ...p, cdn: { ...p.cdn, uncachedCpuMsPerLink: 0.86 } }],
      high: ['2.6 ms (twice the estimate)', { ...p, cdn: { ...p.cdn, uncachedCpuMsPerLink: 2.6 } }],
    },
    {
      assumption: 'requests per client connection',
      base: `${p.loadBalancer.requestsPerConnection}`,
      low: ['10', { ...p, loadBalancer: { ...p.loadBalancer, requestsPerConnection: 10 } }],
      high: ['1,000', { ...p, loadBalancer: { ...p.loadBalancer, requestsPerConnection: 1000 } }],
    },
    {
      assumption: 'API CPU per hot read (a memory hit)',
      base: `${bench.hotMsPerRead} ms (\`get-hot\` at ${bench.hotRatioToCeiling} of the ceiling)`,
      low: ['`get-hot` at its target, 0.75 of the ceiling (bare Fastify)', p, hotReadAt(bench, 0.75)],
      high: ['at 0.4 of the ceiling (a crowded machine)', p, hotReadAt(bench, 0.4)],
    },
  ];
  return variants
    .map((variant) => ({ assumption: variant.assumption, base: variant.base, low: variant.low[0], high: variant.high[0], lowUsd: total(variant.low), highUsd: total(variant.high) }))
    .sort((a, b) => Math.abs(b.highUsd - b.lowUsd) - Math.abs(a.highUsd - a.lowUsd));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { markdown, summary, seconds } = generate();
  console.log(summary);
  writeFileSync(DOCUMENT, markdown);
  console.log(`\nsimulation ${seconds.toFixed(1)} s; written to docs/capacity.md`);
}
