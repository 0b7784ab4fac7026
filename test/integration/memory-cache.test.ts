import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { createMetrics } from '../../src/metrics.ts';
import { MemoryCache } from '../../src/documents/memory-cache.ts';
import { testApp, uniqueId } from '../support/app.ts';

// Two instances of the service on one Redis and one DynamoDB, as two pods.
let a: FastifyInstance;
let b: FastifyInstance;
const metricsB = createMetrics();

beforeAll(async () => {
  a = await testApp();
  b = await testApp({ overrides: { metrics: metricsB } });
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
});

async function memoryHits(registry: Registry) {
  const metric = await registry.getSingleMetricAsString('document_cache_lookups_total');
  const line = metric.split('\n').find((l) => l.includes('layer="memory"') && l.includes('result="hit"'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('in-process cache in front of Redis', () => {
  it('serves a hot document from memory', async () => {
    const id = uniqueId('hot');
    await a.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'hot' });
    await b.inject({ method: 'GET', url: `/documents/${id}` }); // miss: fills Redis and memory
    const before = await memoryHits(metricsB.registry);
    for (let i = 0; i < 5; i++) {
      const read = await b.inject({ method: 'GET', url: `/documents/${id}` });
      expect(read.body).toBe('hot');
      expect(read.headers['cache-status']).toMatch(/; hit$/);
    }
    expect((await memoryHits(metricsB.registry)) - before).toBe(5);
  });

  it('a delete on one instance removes the document from the memory of every other, before its 204', async () => {
    for (let round = 0; round < 20; round++) {
      const id = uniqueId('shared');
      await a.inject({ method: 'PUT', url: `/documents/${id}`, payload: `round ${round}` });
      await b.inject({ method: 'GET', url: `/documents/${id}` });
      expect((await b.inject({ method: 'GET', url: `/documents/${id}` })).statusCode).toBe(200); // from memory
      expect((await a.inject({ method: 'DELETE', url: `/documents/${id}` })).statusCode).toBe(204);
      const after = await b.inject({ method: 'GET', url: `/documents/${id}` });
      expect(after.statusCode).toBe(404);
    }
  });
});

describe('MemoryCache', () => {
  const doc = (size: number) => ({
    metadata: { id: 'x', status: 'ACTIVE' as const, contentType: 't/t', size, checksum: 'c', createdAt: 'd' },
    content: Buffer.alloc(size),
  });

  it('stays within its byte budget, evicting the least recently used entry', () => {
    // Each entry counts its content and 256 bytes: eight fill the budget exactly, a ninth evicts one.
    const cache = new MemoryCache(8 * 1256);
    for (let i = 0; i < 8; i++) cache.set(`k${i}`, doc(1000));
    for (let i = 0; i < 8; i++) expect(cache.get(`k${i}`), `k${i}`).toBeDefined(); // read in the order they were set
    cache.get('k0'); // k0 is now the most recent
    cache.set('k8', doc(1000));
    expect(cache.get('k1')).toBeUndefined();
    for (const key of ['k0', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8']) expect(cache.get(key), key).toBeDefined();
  });

  it('evicts only what one insert needs when every entry is hot', () => {
    const entries = 1000;
    const cache = new MemoryCache(entries * 1256);
    for (let i = 0; i < entries; i++) cache.set(`k${i}`, doc(1000));
    for (let i = 0; i < entries; i++) cache.get(`k${i}`);
    cache.set('new', doc(1000));
    // The least recently read goes, and nothing else.
    expect(cache.get('k0')).toBeUndefined();
    for (let i = 1; i < entries; i++) expect(cache.get(`k${i}`), `k${i}`).toBeDefined();
    expect(cache.get('new')).toBeDefined();
  });

  it('holds nothing with a budget of 0 (MEMORY_CACHE_MAX_BYTES=0)', () => {
    const cache = new MemoryCache(0);
    cache.set('k', doc(10));
    expect(cache.get('k')).toBeUndefined();
  });

  it('forgets a deleted entry, and everything on clear, and their bytes with them', () => {
    // Eight entries of 266 bytes fill the budget exactly: one more evicts, unless what was forgotten freed its room.
    const cache = new MemoryCache(8 * 266);
    const keys = (prefix: string) => Array.from({ length: 8 }, (_, i) => `${prefix}${i}`);
    for (const key of keys('a')) cache.set(key, doc(10));
    cache.delete('a0');
    expect(cache.get('a0')).toBeUndefined();
    cache.set('b', doc(10));
    for (const key of [...keys('a').slice(1), 'b']) expect(cache.get(key), key).toBeDefined();
    cache.clear();
    for (const key of [...keys('a'), 'b']) expect(cache.get(key), key).toBeUndefined();
    for (const key of keys('c')) cache.set(key, doc(10));
    for (const key of keys('c')) expect(cache.get(key), key).toBeDefined();
  });

  it('forgets an entry once older than its TTL, however often it is read', () => {
    let now = 1_000;
    const cache = new MemoryCache(10_000, { ttlMs: 3_600_000, clock: () => now });
    cache.set('hot', doc(10));
    for (const step of [1_000_000, 1_000_000, 1_600_000]) {
      now += step;
      expect(cache.get('hot')).toBeDefined();
    }
    now += 1;
    expect(cache.get('hot')).toBeUndefined();
  });

  it('does not let one large document displace the hot set', () => {
    const cache = new MemoryCache(10_000);
    cache.set('small', doc(100));
    cache.set('large', doc(5_000));
    expect(cache.get('large')).toBeUndefined();
    expect(cache.get('small')).toBeDefined();
  });
});
