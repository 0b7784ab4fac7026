import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { hashApiKey } from '../support/config.ts';
import { canonicalHash } from '../../src/orders/canonical.ts';
import { OrderStore } from '../../src/orders/order-store.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';
import { expectProblem } from '../support/problem.ts';

// Contract, "Authentication and tenants", for orders and Idempotency-Keys and
// the corners of documents that test/integration/auth.test.ts leaves out:
// another tenant gets exactly what an unknown id gets (404) and its own key
// space, the owner's data stays intact; no key or a wrong one is a 401 that
// writes nothing; past the rate limit, a 429 that writes nothing either.
//
// Tenants and keys are unique to this file: other files share the stack and
// the rate-limit counters in Redis.

const suffix = randomUUID().slice(0, 8);
const tenants = { a: `sec-a-${suffix}`, b: `sec-b-${suffix}` };
const keys = { a: `key-a-${randomUUID()}`, b: `key-b-${randomUUID()}` };
const apiKeys = `${tenants.a}:${hashApiKey(keys.a)},${tenants.b}:${hashApiKey(keys.b)}`;
const as = (key: string) => ({ authorization: `Bearer ${key}` });

function customerId(): string {
  return `CUST-${String(Math.floor(Math.random() * 100_000_000)).padStart(8, '0')}`;
}

function newOrder() {
  return { customerId: customerId(), items: [{ sku: 'SKU-1001', quantity: 2 }, { sku: 'SKU-2002', quantity: 1 }] };
}

let app: FastifyInstance;
let aws: AwsClients;
let orderStore: OrderStore;

beforeAll(async () => {
  app = await testApp({ config: { AUTH_MODE: 'api-key', API_KEYS: apiKeys, RATE_LIMIT_PER_MINUTE: 100_000 } });
  const config = testConfig();
  aws = createAwsClients(config);
  orderStore = new OrderStore({ dynamo: aws.dynamo, table: config.ORDERS_TABLE });
});
afterAll(async () => {
  await app.close();
  aws.destroy();
});

const postOrder = (key: string, payload: unknown, target = app) =>
  target.inject({
    method: 'POST',
    url: '/orders',
    headers: { ...as(key), 'content-type': 'application/json' },
    payload: JSON.stringify(payload),
  });

const postDocument = (key: string, payload: string, idempotencyKey?: string) =>
  app.inject({
    method: 'POST',
    url: '/documents',
    headers: { ...as(key), 'content-type': 'text/plain', ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
    payload,
  });

describe('orders belong to the tenant that placed them', () => {
  it("answers B's GET of A's order 404 ORDER_NOT_FOUND, exactly as for an order that never existed", async () => {
    const placed = await postOrder(keys.a, newOrder());
    expect(placed.statusCode, placed.body).toBe(201);
    const { orderId } = placed.json();

    const foreign = await app.inject({ method: 'GET', url: `/orders/${orderId}`, headers: as(keys.b) });
    const foreignBody = expectProblem(foreign, 404, 'ORDER_NOT_FOUND');
    // Shaped like an id A was given but nobody was: the same answer, field by field.
    const neverPlaced = `${orderId.slice(0, -12)}${'0'.repeat(12)}`;
    const unknown = await app.inject({ method: 'GET', url: `/orders/${neverPlaced}`, headers: as(keys.b) });
    const unknownBody = expectProblem(unknown, 404, 'ORDER_NOT_FOUND');
    expect(Object.keys(foreignBody).sort()).toEqual(Object.keys(unknownBody).sort());
    expect(foreignBody.detail.replace(orderId, 'ID')).toBe(unknownBody.detail.replace(neverPlaced, 'ID'));
    expect(foreign.body).not.toContain(placed.json().customerId);

    const own = await app.inject({ method: 'GET', url: `/orders/${orderId}`, headers: as(keys.a) });
    expect(own.statusCode).toBe(200);
    expect(own.json()).toMatchObject(placed.json());
  });

  it("gives B a new order for A's identical payload (dedup is per tenant), and each tenant its own replay", async () => {
    const payload = newOrder();
    const first = await postOrder(keys.a, payload);
    expect(first.statusCode, first.body).toBe(201);
    const orderA = first.json();

    const fromB = await postOrder(keys.b, payload);
    expect(fromB.statusCode, fromB.body).toBe(201);
    expect(fromB.headers['idempotent-replayed']).toBeUndefined();
    const orderB = fromB.json();
    expect(orderB.orderId).not.toBe(orderA.orderId);
    expect(orderB).toMatchObject({ status: 'ACCEPTED', customerId: payload.customerId, items: payload.items });

    // Within the window each tenant's retry is its own original, replayed.
    const againA = await postOrder(keys.a, { items: payload.items, customerId: payload.customerId });
    expect(againA.statusCode).toBe(201);
    expect(againA.headers['idempotent-replayed']).toBe('true');
    expect(againA.json()).toEqual(orderA);
    const againB = await postOrder(keys.b, payload);
    expect(againB.headers['idempotent-replayed']).toBe('true');
    expect(againB.json()).toEqual(orderB);

    // Neither sees the other's; both are intact.
    expectProblem(await app.inject({ method: 'GET', url: `/orders/${orderB.orderId}`, headers: as(keys.a) }), 404, 'ORDER_NOT_FOUND');
    expectProblem(await app.inject({ method: 'GET', url: `/orders/${orderA.orderId}`, headers: as(keys.b) }), 404, 'ORDER_NOT_FOUND');
    const readA = await app.inject({ method: 'GET', url: `/orders/${orderA.orderId}`, headers: as(keys.a) });
    expect(readA.json()).toMatchObject(orderA);
    const readB = await app.inject({ method: 'GET', url: `/orders/${orderB.orderId}`, headers: as(keys.b) });
    expect(readB.json()).toMatchObject(orderB);
  });
});

describe("documents and Idempotency-Keys: B can neither see, delete nor replay A's", () => {
  it("refuses B's delete of A's document with 404, leaves it served to A, and leaves B's own id space free", async () => {
    const id = uniqueId('sec-doc');
    const put = await app.inject({ method: 'PUT', url: `/documents/${id}`, headers: { ...as(keys.a), 'content-type': 'text/plain' }, payload: 'A only' });
    expect(put.statusCode).toBe(201);
    // A reads first, so that the document sits in both cache layers.
    expect((await app.inject({ method: 'GET', url: `/documents/${id}`, headers: as(keys.a) })).statusCode).toBe(200);
    const etag = put.headers.etag as string;

    expectProblem(await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: as(keys.b) }), 404, 'DOCUMENT_NOT_FOUND');
    expectProblem(await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: as(keys.b) }), 404, 'DOCUMENT_NOT_FOUND');
    // Knowing the ETag tells B nothing either: a 404, not a 304.
    expectProblem(
      await app.inject({ method: 'GET', url: `/documents/${id}`, headers: { ...as(keys.b), 'if-none-match': etag } }),
      404,
      'DOCUMENT_NOT_FOUND',
    );
    expectProblem(await app.inject({ method: 'GET', url: `/documents/${id}/metadata`, headers: as(keys.b) }), 404, 'DOCUMENT_NOT_FOUND');

    const read = await app.inject({ method: 'GET', url: `/documents/${id}`, headers: as(keys.a) });
    expect(read.statusCode).toBe(200);
    expect(read.body).toBe('A only');
    expect(read.headers.etag).toBe(etag);
    const metadata = await app.inject({ method: 'GET', url: `/documents/${id}/metadata`, headers: as(keys.a) });
    expect(metadata.json()).toEqual(put.json());
    expect((await app.inject({ method: 'GET', url: `/documents/${id}`, headers: { ...as(keys.a), 'if-none-match': etag } })).statusCode).toBe(304);

    // B's failed deletes left no tombstone in B's space: the same id is B's to create.
    const own = await app.inject({ method: 'PUT', url: `/documents/${id}`, headers: { ...as(keys.b), 'content-type': 'text/plain' }, payload: 'B only' });
    expect(own.statusCode, own.body).toBe(201);
    expect((await app.inject({ method: 'GET', url: `/documents/${id}`, headers: as(keys.a) })).body).toBe('A only');
    expect((await app.inject({ method: 'GET', url: `/documents/${id}`, headers: as(keys.b) })).body).toBe('B only');
  });

  it("gives B a fresh key space for A's Idempotency-Key, even with A's identical request, and leaves A's record intact", async () => {
    const key = uniqueId('sec-key');
    const first = await postDocument(keys.a, 'same bytes', key);
    expect(first.statusCode).toBe(201);
    const idA = first.json().id;

    // The very request A sent, replayed by B: a new document of B's, not A's answer.
    const replayByB = await postDocument(keys.b, 'same bytes', key);
    expect(replayByB.statusCode, replayByB.body).toBe(201);
    expect(replayByB.headers['idempotent-replayed']).toBeUndefined();
    const idB = replayByB.json().id;
    expect(idB).not.toBe(idA);
    // B's own record now holds the key: B's retry replays B's document, another body is B's 422.
    const retryB = await postDocument(keys.b, 'same bytes', `"${key}"`);
    expect(retryB.headers['idempotent-replayed']).toBe('true');
    expect(retryB.json().id).toBe(idB);
    expectProblem(await postDocument(keys.b, 'other bytes', key), 422, 'IDEMPOTENCY_KEY_REUSED');

    // A's record is untouched by all of B's: A's retry is A's original, A's other body A's 422.
    const retryA = await postDocument(keys.a, 'same bytes', key);
    expect(retryA.statusCode).toBe(201);
    expect(retryA.headers['idempotent-replayed']).toBe('true');
    expect(retryA.json()).toEqual(first.json());
    expectProblem(await postDocument(keys.a, 'other bytes', key), 422, 'IDEMPOTENCY_KEY_REUSED');

    expectProblem(await app.inject({ method: 'GET', url: `/documents/${idA}`, headers: as(keys.b) }), 404, 'DOCUMENT_NOT_FOUND');
    expectProblem(await app.inject({ method: 'GET', url: `/documents/${idB}`, headers: as(keys.a) }), 404, 'DOCUMENT_NOT_FOUND');
    expect((await app.inject({ method: 'GET', url: `/documents/${idA}`, headers: as(keys.a) })).body).toBe('same bytes');
  });
});

describe('API keys: a missing or wrong key is 401 UNAUTHENTICATED with WWW-Authenticate: Bearer', () => {
  const hashOfA = hashApiKey(keys.a);
  const wrong: [string, Record<string, string>][] = [
    ['no Authorization', {}],
    ['an unknown key', as(`key-${randomUUID()}`)],
    ["the configured hash of A's key instead of the key", as(hashOfA)],
    ["A's key with a character missing", as(keys.a.slice(0, -1))],
    ["A's key with a character more", as(`${keys.a}x`)],
    ["A's key after two spaces", { authorization: `Bearer  ${keys.a}` }],
    ["A's key followed by another word", { authorization: `Bearer ${keys.a} ${keys.b}` }],
    ["A's key as Basic", { authorization: `Basic ${keys.a}` }],
    ["A's key without a scheme", { authorization: keys.a }],
    ['Bearer alone', { authorization: 'Bearer' }],
    ['a 10 000-character key', as('k'.repeat(10_000))],
    ['a key of control characters', as('\u0001\u0002\u0003')],
  ];
  const routes = [
    { method: 'GET' as const, url: () => `/documents/${uniqueId()}` },
    { method: 'HEAD' as const, url: () => `/documents/${uniqueId()}` },
    { method: 'GET' as const, url: () => `/documents/${uniqueId()}/metadata` },
    { method: 'DELETE' as const, url: () => `/documents/${uniqueId()}` },
    { method: 'PUT' as const, url: () => `/documents/${uniqueId()}`, payload: 'x' },
    { method: 'POST' as const, url: () => '/documents', payload: 'x' },
    { method: 'POST' as const, url: () => '/orders', payload: JSON.stringify(newOrder()), json: true },
    { method: 'GET' as const, url: () => `/orders/${randomUUID()}` },
  ];

  it.each(wrong)('for %s, on every route', async (_name, headers) => {
    for (const route of routes) {
      const response = await app.inject({
        method: route.method,
        url: route.url(),
        headers: { ...headers, 'content-type': route.json ? 'application/json' : 'text/plain' },
        ...(route.payload ? { payload: route.payload } : {}),
      });
      const where = `${route.method} ${route.url()}`;
      expect(response.statusCode, where).toBe(401);
      expect(response.headers['www-authenticate'], where).toBe('Bearer');
      expect(response.headers['content-type'], where).toMatch(/^application\/problem\+json/);
      if (route.method !== 'HEAD') {
        const body = expectProblem(response, 401, 'UNAUTHENTICATED');
        // Nothing about which part was wrong, nor about the configured keys.
        expect(response.body).not.toContain(hashOfA);
        expect(response.body).not.toContain(tenants.a);
        expect(body.detail).toBe('A valid API key is required');
      }
    }
  });

  it('writes nothing for a 401: the same requests with the right key then create, not replay or conflict', async () => {
    const id = uniqueId('sec-401');
    const idempotencyKey = uniqueId('sec-401-key');
    const order = newOrder();
    const bad = as(`key-${randomUUID()}`);
    expect((await app.inject({ method: 'PUT', url: `/documents/${id}`, headers: { ...bad, 'content-type': 'text/plain' }, payload: 'x' })).statusCode).toBe(401);
    expect(
      (await app.inject({ method: 'POST', url: '/documents', headers: { ...bad, 'content-type': 'text/plain', 'idempotency-key': idempotencyKey }, payload: 'x' }))
        .statusCode,
    ).toBe(401);
    expect((await postOrder(`key-${randomUUID()}`, order)).statusCode).toBe(401);

    expectProblem(await app.inject({ method: 'GET', url: `/documents/${id}`, headers: as(keys.a) }), 404, 'DOCUMENT_NOT_FOUND');
    const put = await app.inject({ method: 'PUT', url: `/documents/${id}`, headers: { ...as(keys.a), 'content-type': 'text/plain' }, payload: 'y' });
    expect(put.statusCode).toBe(201);
    const post = await postDocument(keys.a, 'y', idempotencyKey);
    expect(post.statusCode).toBe(201);
    expect(post.headers['idempotent-replayed']).toBeUndefined();
    const placed = await postOrder(keys.a, order);
    expect(placed.statusCode).toBe(201);
    expect(placed.headers['idempotent-replayed']).toBeUndefined();
  });
});

describe('rate limit: 429 RATE_LIMITED with Retry-After past the per-tenant limit, shared across instances', () => {
  it('counts one tenant across two instances, refuses the excess without writing it, and spares other tenants', async () => {
    // Tenants of this test alone: the counters live in Redis, shared with every other file.
    const limited = { name: `sec-rl-${randomUUID().slice(0, 8)}`, key: `key-rl-${randomUUID()}` };
    const other = { name: `sec-rl2-${randomUUID().slice(0, 8)}`, key: `key-rl2-${randomUUID()}` };
    const config = {
      AUTH_MODE: 'api-key',
      API_KEYS: `${limited.name}:${hashApiKey(limited.key)},${other.name}:${hashApiKey(other.key)}`,
      RATE_LIMIT_PER_MINUTE: 4,
    };
    const one = await testApp({ config });
    const two = await testApp({ config });
    try {
      // 4 requests, spread over both instances and over documents and orders, are within the limit.
      const within = [
        await one.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: as(limited.key) }),
        await two.inject({ method: 'GET', url: `/orders/${randomUUID()}`, headers: as(limited.key) }),
        await one.inject({ method: 'GET', url: `/documents/${uniqueId()}/metadata`, headers: as(limited.key) }),
        await postOrder(limited.key, newOrder(), two),
      ];
      expect(within.map((response) => response.statusCode)).toEqual([404, 404, 404, 201]);
      expect(within[0]!.headers['ratelimit-policy']).toBe('"tenant";q=4;w=60');

      // The fifth, on either instance, is refused; so is a write, and the write does not happen.
      const refusedOrder = newOrder();
      const refused = [
        await postOrder(limited.key, refusedOrder, one),
        await two.inject({ method: 'PUT', url: `/documents/${uniqueId()}`, headers: { ...as(limited.key), 'content-type': 'text/plain' }, payload: 'x' }),
        await two.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: as(limited.key) }),
      ];
      for (const response of refused) {
        expectProblem(response, 429, 'RATE_LIMITED');
        const retryAfter = Number(response.headers['retry-after']);
        expect(Number.isInteger(retryAfter)).toBe(true);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
      }
      expect(await orderStore.readDedup(limited.name, canonicalHash(refusedOrder))).toBeUndefined();

      // Another tenant has its own counter; probes are never limited.
      expect((await one.inject({ method: 'GET', url: `/documents/${uniqueId()}`, headers: as(other.key) })).statusCode).toBe(404);
      expect((await postOrder(other.key, refusedOrder, two)).statusCode).toBe(201);
      for (const url of ['/health/live', '/metrics', '/openapi.json']) {
        expect((await two.inject({ method: 'GET', url, headers: as(limited.key) })).statusCode, url).toBe(200);
      }
    } finally {
      await one.close();
      await two.close();
    }
  });
});
