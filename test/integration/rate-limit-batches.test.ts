import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { BatchedWindowCounter } from '../../src/http/batched-window-counter.ts';
import { windowCounter } from '../../src/http/window-counter.ts';
import { RedisCircuit } from '../../src/adapters/redis.ts';
import { hashApiKey } from '../support/config.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';

// The rate limit's counts go to Redis in batches while the tenant is far
// from its limit (src/http/batched-window-counter.ts): the busiest tenant's
// key would otherwise take one Redis call per request, on one shard. Two
// instances on the shared redis-server; exactness near a small limit is
// test/security/tenants.test.ts's.

const tenant = `rl-batch-${randomUUID().slice(0, 8)}`;
const key = `key-${randomUUID()}`;
const headers = { authorization: `Bearer ${key}` };
const LIMIT = 1_000_000;
const FIELD = /^"tenant";r=(\d+);t=(\d+)$/;
let one: FastifyInstance;
let two: FastifyInstance;

/** Each count's answer: a promise when it waited for Redis, a count when it was answered in the instance. */
const counts = vi.spyOn(BatchedWindowCounter.prototype, 'add');
const waitedForRedis = (from: number) => counts.mock.results.slice(from).filter((result) => result.value instanceof Promise).length;

const read = (app: FastifyInstance) => app.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers });

/** What the tenant's answers say is left of the quota. */
function remainingOf(response: Awaited<ReturnType<typeof read>>): number {
  expect(response.statusCode).toBe(404);
  return Number(FIELD.exec(String(response.headers.ratelimit))?.[1]);
}

/** Reads until one is counted without waiting for Redis: the instance has measured the tenant's pace (its first 100 ms). */
async function untilCountedHere(app: FastifyInstance): Promise<number> {
  // A hang guard only: on any machine the pace is measured within a few thousand reads.
  for (let sent = 1; sent <= 100_000; sent++) {
    const from = counts.mock.results.length;
    await read(app);
    if (waitedForRedis(from) === 0) return sent;
  }
  throw new Error('every read still waited for Redis');
}

beforeAll(async () => {
  // A Redis command timeout that a loaded machine cannot reach: a batch whose answer came too late would be
  // in Redis and dropped from the instance's view, and three in a row open the circuit (counts then dropped).
  const config = { AUTH_MODE: 'api-key', API_KEYS: `${tenant}:${hashApiKey(key)}`, RATE_LIMIT_PER_MINUTE: LIMIT, REDIS_COMMAND_TIMEOUT_MS: 30_000 } as const;
  [one, two] = await Promise.all([testApp({ config }), testApp({ config })]);
});
afterAll(async () => {
  await Promise.all([one?.close(), two?.close()]);
  // Test files share a worker's modules (test/vitest.config.ts): the next file gets the plain prototype.
  counts.mockRestore();
});

describe('rate limit counts in batches', () => {
  it('far from the limit, counts without waiting for Redis once it knows the pace, and every count reaches Redis once', async () => {
    let sent = (await untilCountedHere(one)) + (await untilCountedHere(two));

    const from = counts.mock.results.length;
    const burst = await Promise.all(Array.from({ length: 200 }, (_, i) => read(i % 2 === 0 ? one : two)));
    sent += burst.length;
    for (const response of burst) {
      expect(response.headers['ratelimit-policy']).toBe(`"tenant";q=${LIMIT};w=60`);
      expect(remainingOf(response)).toBeLessThan(LIMIT);
    }
    expect(counts.mock.results.length - from).toBe(200);
    // Some counts waited for Redis (each instance's first 100 ms; how many of a burst do depends on the pace it
    // measured: the unit test's, on fake timers); at least the last of each untilCountedHere did not.
    expect(waitedForRedis(0)).toBeLessThan(counts.mock.results.length);

    // The batches arrive (within 100 ms of each count): Redis holds every read, none counted twice.
    await vi.waitFor(async () => expect(Number(await one.redis.client.get(`ratelimit:${tenant}`))).toBe(sent), { timeout: 20_000, interval: 50 });
  });

  it('gives a key left without expiry one at its next count, so that no window outlives its minute', async () => {
    // A client of its own, without the service's 200 ms command timeout: a loaded machine must not turn a count into none.
    const redis = new Redis(testConfig().REDIS_URL);
    onTestFinished(() => void redis.disconnect());
    await redis.ping();
    const key = `ratelimit:no-expiry-${randomUUID()}`;
    await redis.set(key, '7');
    const count = windowCounter(redis, new RedisCircuit(redis));
    expect(await count(key, 60_000, 2)).toEqual({ current: 9, ttl: 60_000 });
    const left = await redis.pttl(key);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(60_000);
    // Within its window the expiry stands: a count neither extends it nor resets it.
    const next = await count(key, 60_000, 1);
    expect(next?.current).toBe(10);
    expect(next?.ttl).toBeLessThanOrEqual(left);
  });
});
