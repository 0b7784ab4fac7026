import { randomInt, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { hashApiKey } from '../support/config.ts';
import { freePort } from '../../src/local/emulators.ts';
import { buildApp } from '../../src/app.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';
import { expectProblem } from '../support/problem.ts';

// The limit on failed authentications per client address (OWASP API2/API4:
// 3000 wrong keys in 30 s all got 401). Counters live in the run's one Redis,
// so every test here uses addresses of its own (from 198.18.0.0/15, the
// benchmarking range), never inject's default 127.0.0.1.

const TENANT = `authfail-${randomUUID().slice(0, 8)}`;
const KEY = `authfail-key-${randomUUID()}`;
const LIMIT = 3;
const config = { AUTH_MODE: 'api-key', API_KEYS: `${TENANT}:${hashApiKey(KEY)}`, AUTH_FAILURES_PER_MINUTE: LIMIT, RATE_LIMIT_PER_MINUTE: 100_000 };

const address = () => `198.${18 + randomInt(2)}.${randomInt(256)}.${randomInt(1, 255)}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let one: FastifyInstance;
let two: FastifyInstance;
beforeAll(async () => {
  one = await testApp({ config });
  two = await testApp({ config });
});
afterAll(async () => {
  await one?.close();
  await two?.close();
});

function get(app: FastifyInstance, from: string, key: string | undefined, extra: Partial<InjectOptions> = {}) {
  return app.inject({
    method: 'GET',
    url: `/documents/${uniqueId()}`,
    remoteAddress: from,
    headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
    ...extra,
  });
}

/**
 * A failure is counted in Redis after its 401 is sent (the answer never
 * waits for Redis), so the block starts within one Redis round trip: poll for
 * it (up to 5 s, a bound far above a round trip on a loaded machine) with
 * requests that carry the valid key.
 */
async function blocked(app: FastifyInstance, from: string, extra: Partial<InjectOptions> = {}) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const response = await get(app, from, KEY, extra);
    if (response.statusCode === 429) return response;
    expect(response.statusCode, response.body).toBe(404);
    if (Date.now() > deadline) throw new Error(`${from} was never blocked`);
    await sleep(10);
  }
}

describe('failed authentications are limited per client address', () => {
  it('past the limit, every request from the address is 429 with Retry-After, even with a valid key, on every instance', async () => {
    const attacker = address();
    for (let i = 0; i <= LIMIT; i++) {
      expectProblem(await get(one, attacker, `wrong-${i}`), 401, 'UNAUTHENTICATED');
    }
    const refused = await blocked(one, attacker);
    expectProblem(refused, 429, 'RATE_LIMITED');
    const retryAfter = Number(refused.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Without a key, or with another wrong one: refused before any key is looked at.
    expectProblem(await get(one, attacker, undefined), 429, 'RATE_LIMITED');
    expectProblem(await get(one, attacker, 'wrong-again'), 429, 'RATE_LIMITED');

    // Probes, metrics and the API description are never limited.
    for (const url of ['/health/live', '/metrics', '/openapi.json']) {
      expect((await one.inject({ method: 'GET', url, remoteAddress: attacker })).statusCode, url).toBe(200);
    }
    // Another address is untouched, with a valid key or a wrong one.
    const neighbour = address();
    expect((await get(one, neighbour, KEY)).statusCode).toBe(404);
    expect((await get(one, neighbour, 'wrong')).statusCode).toBe(401);

    // The count is shared: the other instance blocks the address at its first failure there.
    expect((await get(two, attacker, KEY)).statusCode).toBe(404);
    expectProblem(await get(two, attacker, 'wrong-on-two'), 401, 'UNAUTHENTICATED');
    expectProblem(await blocked(two, attacker), 429, 'RATE_LIMITED');
  });

  it('counts failures only: authenticated requests never use up the limit', async () => {
    const client = address();
    for (let i = 0; i < 5 * LIMIT; i++) expect((await get(one, client, KEY)).statusCode).toBe(404);
    for (let i = 0; i < LIMIT; i++) expect((await get(one, client, 'wrong')).statusCode).toBe(401);
    // The counter (written after each 401 was sent) holds the failures and nothing else ...
    const deadline = Date.now() + 5000;
    while ((await one.redis.client.get(`authfail:${client}`)) !== String(LIMIT) && Date.now() < deadline) await sleep(10);
    expect(await one.redis.client.get(`authfail:${client}`)).toBe(String(LIMIT));
    // ... so the address is still within the limit.
    expect((await get(one, client, KEY)).statusCode).toBe(404);
  });

  it('takes the client address from X-Forwarded-For only when TRUST_PROXY names the proxy', async () => {
    // inject's peer is 127.0.0.1: here it plays the load balancer.
    const behindProxy = await testApp({ config: { ...config, TRUST_PROXY: '127.0.0.1' } });
    try {
      const attacker = address();
      const viaProxy = (forwardedFor: string) => ({ headers: { authorization: `Bearer wrong`, 'x-forwarded-for': forwardedFor } });
      for (let i = 0; i <= LIMIT; i++) {
        expect((await behindProxy.inject({ method: 'GET', url: `/documents/${uniqueId()}`, ...viaProxy(attacker) })).statusCode).toBe(401);
      }
      const withKey = (forwardedFor: string) => ({ headers: { authorization: `Bearer ${KEY}`, 'x-forwarded-for': forwardedFor } });
      expectProblem(await blocked(behindProxy, '127.0.0.1', withKey(attacker)), 429, 'RATE_LIMITED');
      // A client cannot step out of its block by prepending an address: the proxy appends the real one.
      expectProblem(
        await behindProxy.inject({ method: 'GET', url: `/documents/${uniqueId()}`, ...withKey(`${address()}, ${attacker}`) }),
        429,
        'RATE_LIMITED',
      );
      // Others behind the same proxy are not blocked with it.
      expect((await behindProxy.inject({ method: 'GET', url: `/documents/${uniqueId()}`, ...withKey(address()) })).statusCode).toBe(404);

      // Without TRUST_PROXY the header is the client's word and is ignored: the TCP peer counts.
      expect((await get(one, address(), KEY, { headers: { authorization: `Bearer ${KEY}`, 'x-forwarded-for': attacker } })).statusCode).toBe(404);
    } finally {
      await behindProxy.close();
    }
  });

  it('fails open while Redis is down: nothing is counted, every wrong key is a plain 401', async () => {
    // No Redis listens there (testApp would wait for one, so the app is built as the server builds it).
    const app = await buildApp({ config: testConfig({ ...config, REDIS_URL: `redis://127.0.0.1:${await freePort()}` }) });
    await app.ready();
    try {
      const attacker = address();
      for (let i = 0; i < 4 * LIMIT; i++) expect((await get(app, attacker, 'wrong')).statusCode).toBe(401);
      expect((await get(app, attacker, KEY)).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});
