import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { hashApiKey } from '../support/config.ts';
import { buildApp } from '../../src/app.ts';
import { freePort } from '../../src/local/emulators.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';

// The IETF rate-limit fields on the rate-limited routes (draft-ietf-httpapi-ratelimit-headers):
// RateLimit-Policy names the quota and window, RateLimit what is left and when it resets.
const tenant = `rl-headers-${randomUUID().slice(0, 8)}`; // counters live in the shared Redis: a tenant of this file only
const key = `key-${randomUUID()}`;
const headers = { authorization: `Bearer ${key}` };
const LIMIT = 3;
let app: FastifyInstance;

beforeAll(async () => {
  app = await testApp({ config: { AUTH_MODE: 'api-key', API_KEYS: `${tenant}:${hashApiKey(key)}`, RATE_LIMIT_PER_MINUTE: LIMIT } });
});
afterAll(async () => {
  await app.close();
});

const FIELD = /^"tenant";r=(\d+);t=(\d+)$/;

describe('rate-limit header fields', () => {
  it('say the quota and what is left of it, count down, and stay on the 429 with Retry-After', async () => {
    const remaining: number[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const response = await app.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers });
      expect(response.statusCode).toBe(404);
      expect(response.headers['ratelimit-policy']).toBe(`"tenant";q=${LIMIT};w=60`);
      const [, left, reset] = FIELD.exec(String(response.headers.ratelimit)) ?? [];
      expect(Number(reset)).toBeGreaterThanOrEqual(1);
      expect(Number(reset)).toBeLessThanOrEqual(60);
      remaining.push(Number(left));
      // The library's X-RateLimit-* trio is replaced, not doubled.
      expect(Object.keys(response.headers).filter((name) => name.startsWith('x-ratelimit'))).toEqual([]);
    }
    expect(remaining).toEqual([2, 1, 0]);

    const refused = await app.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers });
    expect(refused.statusCode).toBe(429);
    expect(refused.json().code).toBe('RATE_LIMITED');
    const [, left, reset] = FIELD.exec(String(refused.headers.ratelimit)) ?? [];
    expect(left).toBe('0');
    expect(refused.headers['retry-after']).toBe(reset);
    expect(refused.headers['ratelimit-policy']).toBe(`"tenant";q=${LIMIT};w=60`);
  });

  it('come last: what a route refuses before (unrouted, too large) is not counted, and keeps its answer over the limit', async () => {
    const own = { tenant: `rl-order-${randomUUID().slice(0, 8)}`, key: `key-${randomUUID()}` };
    const authorization = { authorization: `Bearer ${own.key}` };
    const strict = await testApp({ config: { AUTH_MODE: 'api-key', API_KEYS: `${own.tenant}:${hashApiKey(own.key)}`, RATE_LIMIT_PER_MINUTE: 1, MAX_DOCUMENT_BYTES: 1024 } });
    try {
      const tooLarge = () =>
        strict.inject({ method: 'PUT', url: `/documents/${uniqueId()}`, headers: { ...authorization, 'content-type': 'text/plain' }, payload: 'x'.repeat(2048) });
      const unrouted = await strict.inject({ method: 'GET', url: '/no-such-route', headers: authorization });
      expect(unrouted.statusCode).toBe(404);
      const refused = await tooLarge();
      expect(refused.statusCode).toBe(413);
      for (const response of [unrouted, refused]) expect(response.headers.ratelimit).toBeUndefined();

      // Neither was counted: the quota of 1 is still there; then it is spent.
      const counted = await strict.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: authorization });
      expect(counted.statusCode).toBe(404);
      expect(counted.headers.ratelimit).toMatch(/^"tenant";r=0;t=\d+$/);
      expect((await strict.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: authorization })).statusCode).toBe(429);

      // Over the limit, a request refused before the count keeps its own answer; a tus request refused by the count names its version.
      expect((await tooLarge()).statusCode).toBe(413);
      const append = await strict.inject({
        method: 'PATCH',
        url: `/uploads/${randomUUID()}`,
        headers: { ...authorization, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
        payload: 'x',
      });
      expect(append.statusCode).toBe(429);
      expect(append.headers['tus-resumable']).toBe('1.0.0');
    } finally {
      await strict.close();
    }
  });

  it('are absent while Redis is down, and nothing is refused: the limit fails open', async () => {
    // No Redis listens there (testApp would wait for one, so the app is built as the server builds it).
    const down = await buildApp({
      config: testConfig({ AUTH_MODE: 'api-key', API_KEYS: `${tenant}:${hashApiKey(key)}`, RATE_LIMIT_PER_MINUTE: LIMIT, REDIS_URL: `redis://127.0.0.1:${await freePort()}` }),
    });
    await down.ready();
    try {
      for (let i = 0; i < 3 * LIMIT; i++) {
        const response = await down.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers });
        expect(response.statusCode).toBe(404);
        expect(response.headers.ratelimit).toBeUndefined();
        expect(response.headers['ratelimit-policy']).toBeUndefined();
      }
    } finally {
      await down.close();
    }
  });

  it('are absent where nothing is counted: probes, metrics, the API description', async () => {
    for (const url of ['/health/live', '/metrics', '/openapi.json']) {
      const response = await app.inject({ method: 'GET', url, headers });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers.ratelimit, url).toBeUndefined();
      expect(response.headers['ratelimit-policy'], url).toBeUndefined();
    }
  });
});
