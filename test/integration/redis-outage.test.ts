import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { RedisServer, freePort } from '../../src/local/emulators.ts';
import { testApp, uniqueId } from '../support/app.ts';
import { testClock } from '../support/clock.ts';

// A Redis of this file's own, so that stopping it disturbs no other test.
let redis: RedisServer;
let app: FastifyInstance;
const clock = testClock();

beforeAll(async () => {
  redis = new RedisServer(await freePort());
  await redis.start();
  app = await testApp({ config: { REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_COMMAND_TIMEOUT_MS: 100 }, overrides: { now: clock.now } });
});
afterAll(async () => {
  await app.close();
  await redis.stop();
});

async function health() {
  clock.advance(1000); // past the health checker's 1 s cache
  return app.inject({ method: 'GET', url: '/health' });
}

describe('Redis stopped mid-run', () => {
  it('reads keep working from the stores, health says degraded, and hits resume when Redis returns', async () => {
    const id = uniqueId('outage');
    await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'survives' });
    await app.inject({ method: 'GET', url: `/documents/${id}` });
    expect((await app.inject({ method: 'GET', url: `/documents/${id}` })).headers['cache-status']).toMatch(/hit$/);

    await redis.stop();
    // At once: answered (from process memory until the app notices the loss, then from the stores).
    expect((await app.inject({ method: 'GET', url: `/documents/${id}` })).statusCode).toBe(200);
    const degraded = await health();
    expect(degraded.statusCode).toBe(200);
    expect(degraded.json()).toMatchObject({ status: 'degraded', storage: 'ok', cache: 'down' });
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const read = await app.inject({ method: 'GET', url: `/documents/${id}` });
      expect(read.statusCode).toBe(200);
      expect(read.body).toBe('survives');
      expect(read.headers['cache-status']).toMatch(/fwd=miss$/);
      expect(performance.now() - started).toBeLessThan(500);
    }
    expect((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);

    // A delete cannot be confirmed without the cache: 503, and a retry finishes it.
    const other = uniqueId('outage');
    await app.inject({ method: 'PUT', url: `/documents/${other}`, payload: 'to delete' });
    const refused = await app.inject({ method: 'DELETE', url: `/documents/${other}` });
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(refused.json().code).toBe('SERVICE_UNAVAILABLE');

    await redis.start();
    const deadline = Date.now() + 10_000;
    let status = '';
    while (Date.now() < deadline && !status.endsWith('hit')) {
      await app.inject({ method: 'GET', url: `/documents/${id}` });
      status = String((await app.inject({ method: 'GET', url: `/documents/${id}` })).headers['cache-status']);
      if (!status.endsWith('hit')) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(status).toMatch(/hit$/);
    expect((await health()).json()).toMatchObject({ status: 'healthy', cache: 'ok' });
    expect((await app.inject({ method: 'DELETE', url: `/documents/${other}` })).statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: `/documents/${other}` })).statusCode).toBe(404);
  });
});
