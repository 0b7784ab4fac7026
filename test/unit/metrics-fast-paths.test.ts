import { describe, expect, it } from 'vitest';
import { Counter, Histogram, Registry } from 'prom-client';
import { latencyHistogram } from '../../src/http/metrics.ts';
import { createMetrics } from '../../src/metrics.ts';

// The request latency histogram and the cache-lookup counter are added to
// without prom-client's per-call label hashing (bench/README.md, "The hot
// path against the same response"). What /metrics shows must be what
// prom-client's own observe() and inc() give, in this prom-client too.

// Bounds, between them, far above them, and the durations of real requests.
const SECONDS = [0, 0.0004, 0.001, 0.0011, 0.0025, 0.004, 0.3, 0.30001, 0.7, 5, 6, 120, 0.000123456789];

describe('the latency histogram', () => {
  it('exposes what prom-client observe() exposes, series by series', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const latency = latencyHistogram(ours);
    const reference = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route, method and status',
      labelNames: ['route', 'method', 'status_code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5],
      registers: [theirs],
    });
    const labels = [
      { route: '/documents/:id', method: 'GET', status_code: 200 },
      { route: 'unmatched', method: 'GET', status_code: 404 },
      { route: '/orders', method: 'POST', status_code: 201 },
    ];
    const series = labels.map((set) => latency.series({ ...set }));
    const children = labels.map((set) => reference.labels(set));
    SECONDS.forEach((seconds, i) => {
      for (let n = 0; n <= i % 3; n++) {
        series[n]!.observe(seconds);
        children[n]!.observe(seconds);
      }
    });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toMatch(/^http_request_duration_seconds_bucket\{le="0.3",route="\/orders",method="POST",status_code="201"\} \d+$/m);
  });
});

describe('the cache-lookup counter', () => {
  it('exposes the counts of its hot-path series at every scrape, as inc() would', async () => {
    const metrics = createMetrics();
    const theirs = new Registry();
    const reference = new Counter({ name: 'document_cache_lookups_total', help: 'Document cache lookups by layer (memory, redis) and result (hit, miss, error)', labelNames: ['layer', 'result'], registers: [theirs] });
    const hits = metrics.cacheLookup({ layer: 'memory', result: 'hit' });
    const misses = metrics.cacheLookup({ layer: 'redis', result: 'miss' });
    const scrape = async () => (await metrics.registry.getSingleMetricAsString('document_cache_lookups_total'));
    // Not counted yet: not shown, as a prom-client child.
    expect(await scrape()).toBe(await theirs.metrics().then((text) => text.trimEnd()));
    for (let i = 0; i < 3; i++) {
      hits.inc();
      reference.inc({ layer: 'memory', result: 'hit' });
    }
    expect(await scrape()).toBe((await theirs.metrics()).trimEnd());
    hits.inc();
    misses.inc();
    metrics.cacheLookups.inc({ layer: 'memory', result: 'hit' });
    reference.inc({ layer: 'memory', result: 'hit' }, 2);
    reference.inc({ layer: 'redis', result: 'miss' });
    expect(await scrape()).toBe((await theirs.metrics()).trimEnd());
    expect((await metrics.cacheLookups.get()).values.find((value) => value.labels.layer === 'memory')?.value).toBe(5);
  });
});
