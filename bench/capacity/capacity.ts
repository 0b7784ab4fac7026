import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ELASTICACHE, REDIS_USABLE_MEMORY_SHARE } from './aws.ts';
import { readBench, simulateHitRatios, simulateMemoryRuns, sizeDeployment, type Parameters } from './model.ts';
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
  return { markdown: renderMarkdown(parameters, bench, hits, base, grown), summary: renderSummary(base, hits), seconds: hits.seconds + first.seconds - memoryRuns.seconds };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { markdown, summary, seconds } = generate();
  console.log(summary);
  writeFileSync(DOCUMENT, markdown);
  console.log(`\nsimulation ${seconds.toFixed(1)} s; written to docs/capacity.md`);
}
