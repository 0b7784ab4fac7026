import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { FaultProxy } from '../support/fault-proxy.ts';
import { testApp, uniqueId } from '../support/app.ts';
import { report, sleep, stats, watchUnhandled } from './support.ts';

// Fault 2: Redis connections reset again and again. Both of the app's Redis
// connections (commands, and the pub/sub subscriber of the in-process cache)
// go through a proxy that, at random moments, destroys every live connection
// with an RST and refuses new ones for a little while, then lets them through
// again, so that resets land in every state of the client: connecting, in the
// handshake, subscribing, idle, with commands in flight.
//
// 30 s, as the issue asks. With pass windows of 0.1-1 s, the run makes about
// 40 cycles and goes through ioredis' reconnect back-off (100 ms doubling to
// its 2 s cap) many times; the test asserts the number of resets and that the
// cache came back between them. FAULTS_RESET_SECONDS shortens it locally.

const seconds = Number(process.env.FAULTS_RESET_SECONDS ?? 30);
const DOCS = 30;

let proxy: FaultProxy;
let app: FastifyInstance;
const ids: string[] = [];

beforeAll(async () => {
  proxy = await FaultProxy.start(inject('stackEnv').REDIS_URL!);
  app = await testApp({ config: { REDIS_URL: proxy.url('redis') } });
  for (let i = 0; i < DOCS; i++) {
    const id = uniqueId('reset');
    // Half inline in DynamoDB, half in S3 (above the 16 KiB inline threshold).
    const payload = i % 2 === 0 ? `small ${id}` : Buffer.alloc(20_000, id);
    expect((await app.inject({ method: 'PUT', url: `/documents/${id}`, payload })).statusCode).toBe(201);
    ids.push(id);
  }
});

afterAll(async () => {
  await app?.close();
  await proxy?.close();
});

describe('Redis connections reset repeatedly', () => {
  it(`for ${seconds} s: no crash, no 5xx on reads, and the cache keeps coming back`, { timeout: (seconds + 30) * 1000 }, async () => {
    const unhandled = watchUnhandled();
    const expected = new Map(
      await Promise.all(ids.map(async (id) => [id, (await app.inject({ method: 'GET', url: `/documents/${id}` })).rawPayload] as const)),
    );
    const statuses = new Map<number, number>();
    const cacheStatuses = new Map<string, number>();
    const latencies: number[] = [];
    const until = Date.now() + seconds * 1000;
    let resets = 0;

    const chaos = (async () => {
      while (Date.now() < until) {
        await sleep(100 + Math.random() * 900);
        proxy.reset();
        resets += 1;
        await sleep(Math.random() * 300);
        proxy.pass();
      }
    })();

    const readers = Array.from({ length: 4 }, async (_, worker) => {
      for (let i = 0; Date.now() < until; i++) {
        const id = ids[(worker * 11 + i) % ids.length]!;
        const route = i % 5;
        const started = performance.now();
        const response =
          route === 3
            ? await app.inject({ method: 'GET', url: `/documents/${id}/metadata` })
            : await app.inject({ method: route === 4 ? 'HEAD' : 'GET', url: `/documents/${id}` });
        latencies.push(performance.now() - started);
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        if (response.statusCode !== 200) continue;
        if (route < 3) {
          expect(response.rawPayload.equals(expected.get(id)!)).toBe(true);
          const cache = String(response.headers['cache-status']).split('; ')[1]!;
          cacheStatuses.set(cache, (cacheStatuses.get(cache) ?? 0) + 1);
        }
        if (i % 50 === 0) await sleep(1); // let the chaos loop's timers run
      }
    });
    await Promise.all([chaos, ...readers]);

    report('redis reset: resets, statuses, cache statuses', {
      resets,
      connectionsAccepted: proxy.stats.accepted,
      statuses: Object.fromEntries(statuses),
      cache: Object.fromEntries(cacheStatuses),
    });
    report('redis reset: read latency ms', stats(latencies));
    expect(resets).toBeGreaterThanOrEqual(Math.floor(seconds / 1.3)); // a cycle lasts at most 1.3 s
    // Only 200s: not one 5xx (nor anything else) on a read.
    expect([...statuses.keys()]).toEqual([200]);
    // The cache was in use between resets, and the reads fell back to the stores during them.
    expect(cacheStatuses.get('hit') ?? 0).toBeGreaterThan(0);
    expect(cacheStatuses.get('fwd=miss') ?? 0).toBeGreaterThan(0);

    // Afterwards: healthy again, hits again.
    proxy.pass();
    const deadline = Date.now() + 10_000;
    let health = '';
    while (Date.now() < deadline) {
      await sleep(250);
      health = (await app.inject({ method: 'GET', url: '/health' })).json().status;
      if (health === 'healthy') break;
    }
    expect(health).toBe('healthy');
    // Healthy is Redis answering a ping; the circuit may still be in its pause (up to 1 s after
    // the last failure) and skip the fill, so the hit is waited for, within the reconnect
    // back-off cap (2 s) plus that pause, plus 0.5 s of slack (as in redis-blackhole.test.ts).
    const healthyAt = performance.now();
    let cache = '';
    while (!cache.endsWith('hit') && performance.now() - healthyAt < 3500) {
      await app.inject({ method: 'GET', url: `/documents/${ids[0]}` });
      cache = String((await app.inject({ method: 'GET', url: `/documents/${ids[0]}` })).headers['cache-status']);
      if (!cache.endsWith('hit')) await sleep(50);
    }
    report('redis reset: first hit after healthy, ms', Math.round(performance.now() - healthyAt));
    expect(cache).toMatch(/hit$/);
    expect(unhandled.errors).toEqual([]);
    unhandled.stop();
  });
});
