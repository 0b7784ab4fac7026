import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import { hashApiKey } from '../support/config.ts';
import { testApp } from '../support/app.ts';
import { expectProblem } from '../support/problem.ts';
import { customerId, json, newOrder } from './support.ts';

// POST /orders and GET /orders/{orderId} against the real stack: every rule
// of the contract's Orders section has its case here.

let app: FastifyInstance;

beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

async function expectInvalid(payload: unknown, paths: string[]) {
  const response = await app.inject(json(payload));
  const body = expectProblem(response, 400, 'VALIDATION_FAILED');
  expect(body.errors?.map((error) => error.path).sort()).toEqual([...paths].sort());
  for (const error of body.errors ?? []) expect(error.message).not.toBe('');
  return body;
}

describe('POST /orders accepts a valid order', () => {
  it('answers 201 with Location and the order, and GET shows it with its event', async () => {
    const order = newOrder(2);
    const response = await app.inject(json(order));
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(Object.keys(body).sort()).toEqual(['acceptedAt', 'customerId', 'items', 'orderId', 'status']);
    expect(body).toMatchObject({ status: 'ACCEPTED', customerId: order.customerId, items: order.items });
    expect(body.orderId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Date(body.acceptedAt).toISOString()).toBe(body.acceptedAt);
    expect(Math.abs(Date.parse(body.acceptedAt) - Date.now())).toBeLessThan(10_000);
    expect(response.headers.location).toBe(`/orders/${body.orderId}`);
    expect(response.headers['idempotent-replayed']).toBeUndefined();

    const read = await app.inject({ method: 'GET', url: response.headers.location as string });
    expect(read.statusCode).toBe(200);
    // The event bus is up, so the API's own attempt published it before answering.
    expect(read.json()).toEqual({ ...body, event: { status: 'PUBLISHED' } });
  });

  it('accepts the limits: 25 lines, quantities 1 and 100, 3- and 32-character SKUs, charset parameter', async () => {
    const items = Array.from({ length: 25 }, (_, i) => ({ sku: `S${String(i).padStart(2, '0')}`, quantity: i % 2 ? 1 : 100 }));
    items[0] = { sku: `A${'-'.repeat(30)}Z`, quantity: 100 };
    const response = await app.inject({
      method: 'POST',
      url: '/orders',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      payload: JSON.stringify({ customerId: customerId(), items }),
    });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json().items).toEqual(items);
  });
});

describe('POST /orders validation: 400 VALIDATION_FAILED with every failing path', () => {
  const valid = () => newOrder(1);

  it('customerId: required, a string, CUST- and exactly 8 digits', async () => {
    const { customerId: _, ...missing } = valid();
    await expectInvalid(missing, ['/customerId']);
    for (const bad of ['CUST-1234567', 'CUST-123456789', 'cust-12345678', 'CUST-1234567a', ' CUST-12345678', 'CUST12345678', '']) {
      await expectInvalid({ ...valid(), customerId: bad }, ['/customerId']);
    }
    await expectInvalid({ ...valid(), customerId: 12345678 }, ['/customerId']);
  });

  it('items: required, an array of 1 to 25 lines', async () => {
    const { items: _, ...missing } = valid();
    await expectInvalid(missing, ['/items']);
    await expectInvalid({ ...valid(), items: [] }, ['/items']);
    await expectInvalid({ ...valid(), items: { sku: 'SKU-1', quantity: 1 } }, ['/items']);
    const lines = Array.from({ length: 26 }, (_, i) => ({ sku: `S${i}X`, quantity: 1 }));
    await expectInvalid({ ...valid(), items: lines }, ['/items']);
    await expectInvalid({ ...valid(), items: ['SKU-1'] }, ['/items/0']);
  });

  it('sku: required, 3-32 of A-Z 0-9 - and not starting with -', async () => {
    for (const bad of ['AB', `A${'B'.repeat(32)}`, 'sku-1001', '-SKU1', 'SKU 1', 'SKU_1', 'SKÜ-1']) {
      await expectInvalid({ ...valid(), items: [{ sku: bad, quantity: 1 }] }, ['/items/0/sku']);
    }
    await expectInvalid({ ...valid(), items: [{ quantity: 1 }] }, ['/items/0/sku']);
    await expectInvalid({ ...valid(), items: [{ sku: 1001, quantity: 1 }] }, ['/items/0/sku']);
  });

  it('quantity: required, an integer from 1 to 100 (no coercion of strings)', async () => {
    for (const bad of [0, -1, 101, 1.5, '2', null, true]) {
      await expectInvalid({ ...valid(), items: [{ sku: 'SKU-1001', quantity: bad }] }, ['/items/0/quantity']);
    }
    await expectInvalid({ ...valid(), items: [{ sku: 'SKU-1001' }] }, ['/items/0/quantity']);
  });

  it('unknown properties are refused, at the top and in lines', async () => {
    const top = await expectInvalid({ ...valid(), note: 'leave at the door' }, ['/note']);
    expect(top.errors?.[0]?.message).toBe('is not an allowed property');
    await expectInvalid({ ...valid(), items: [{ sku: 'SKU-1001', quantity: 1, price: 10 }] }, ['/items/0/price']);
    await expectInvalid({ ...valid(), orderId: uuidv7(), status: 'ACCEPTED' }, ['/orderId', '/status']);
  });

  it('reports every failure at once, and refuses a body that is not an object', async () => {
    await expectInvalid(
      { customerId: 'nope', items: [{ sku: 'ok-no', quantity: 0 }, { sku: 'SKU-1', quantity: 2, extra: 1 }] },
      ['/customerId', '/items/0/sku', '/items/0/quantity', '/items/1/extra'],
    );
    for (const body of [[], 'CUST-12345678', 42, null]) await expectInvalid(body, ['/']);
  });

  it('stores nothing for a refused order', async () => {
    const order = { ...valid(), items: [{ sku: 'SKU-1001', quantity: 0 }] };
    await expectInvalid(order, ['/items/0/quantity']);
    // Fixed, the same customer gets a fresh order, not a replay of anything.
    const fixed = await app.inject(json({ ...order, items: [{ sku: 'SKU-1001', quantity: 1 }] }));
    expect(fixed.statusCode).toBe(201);
    expect(fixed.headers['idempotent-replayed']).toBeUndefined();
  });
});

describe('POST /orders: body, size and media type', () => {
  it('malformed JSON is 400 MALFORMED_JSON', async () => {
    for (const payload of ['{"customerId": ', '{customerId: "CUST-12345678"}', "{'a':1}", '{"a":1}}', '']) {
      const response = await app.inject({ method: 'POST', url: '/orders', headers: { 'content-type': 'application/json' }, payload });
      expectProblem(response, 400, 'MALFORMED_JSON');
    }
  });

  it('a prototype-poisoning body is refused as malformed', async () => {
    const payload = `{"customerId":"${customerId()}","items":[{"sku":"SKU-1","quantity":1}],"__proto__":{"x":1}}`;
    const response = await app.inject({ method: 'POST', url: '/orders', headers: { 'content-type': 'application/json' }, payload });
    expectProblem(response, 400, 'MALFORMED_JSON');
  });

  it('a body over 1024 bytes is 413 PAYLOAD_TOO_LARGE, even when otherwise valid', async () => {
    const items = Array.from({ length: 25 }, (_, i) => ({ sku: `SKU-${String(i).padStart(26, '0')}`, quantity: 100 }));
    const payload = JSON.stringify({ customerId: customerId(), items });
    expect(Buffer.byteLength(payload)).toBeGreaterThan(1024);
    const response = await app.inject({ method: 'POST', url: '/orders', headers: { 'content-type': 'application/json' }, payload });
    expectProblem(response, 413, 'PAYLOAD_TOO_LARGE');

    const padded = JSON.stringify(newOrder(1)).replace('{', `{${' '.repeat(1000)}`);
    expect(Buffer.byteLength(padded)).toBeGreaterThan(1024);
    const spaced = await app.inject({ method: 'POST', url: '/orders', headers: { 'content-type': 'application/json' }, payload: padded });
    expectProblem(spaced, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('any content type but application/json is 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const payload = JSON.stringify(newOrder(1));
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream']) {
      const response = await app.inject({ method: 'POST', url: '/orders', headers: { 'content-type': type }, payload });
      expectProblem(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
    const untyped = await app.inject({ method: 'POST', url: '/orders', payload: Buffer.from(payload) });
    expectProblem(untyped, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('a POST with no body at all is a validation failure', async () => {
    const response = await app.inject({ method: 'POST', url: '/orders' });
    expectProblem(response, 400, 'VALIDATION_FAILED');
  });

  it('other methods are 405 with Allow', async () => {
    const put = await app.inject({ method: 'PUT', url: '/orders', headers: { 'content-type': 'application/json' }, payload: '{}' });
    expectProblem(put, 405, 'METHOD_NOT_ALLOWED');
    expect(put.headers.allow).toBe('POST');
    const del = await app.inject({ method: 'DELETE', url: `/orders/${uuidv7()}` });
    expectProblem(del, 405, 'METHOD_NOT_ALLOWED');
    expect(del.headers.allow).toMatch(/GET/);
  });
});

describe('GET /orders/{orderId}', () => {
  it('is 404 ORDER_NOT_FOUND for an unknown id and for anything not shaped like one', async () => {
    for (const id of [uuidv7(), 'not-an-id', 'x'.repeat(90), uuidv7().toUpperCase(), '%20']) {
      const response = await app.inject({ method: 'GET', url: `/orders/${id}` });
      expectProblem(response, 404, 'ORDER_NOT_FOUND');
    }
  });

  it('is listed with POST /orders in the OpenAPI document, with its schemas', async () => {
    const spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(spec.paths['/orders'].post.responses).toHaveProperty('201');
    expect(spec.paths['/orders'].post.responses).toHaveProperty('415');
    expect(spec.paths['/orders/{orderId}'].get.responses).toHaveProperty('404');
    const body = spec.paths['/orders'].post.requestBody.content['application/json'].schema;
    expect(body.additionalProperties).toBe(false);
    expect(body.properties.customerId.pattern).toBe('^CUST-[0-9]{8}$');
  });
});

describe('tenants', () => {
  let secured: FastifyInstance;
  const keys = { acme: 'key-acme-1', globex: 'key-globex-1' };

  beforeAll(async () => {
    secured = await testApp({
      config: { AUTH_MODE: 'api-key', API_KEYS: `acme:${hashApiKey(keys.acme)},globex:${hashApiKey(keys.globex)}` },
    });
  });
  afterAll(async () => {
    await secured.close();
  });

  const as = (tenant: keyof typeof keys) => ({ authorization: `Bearer ${keys[tenant]}` });

  it('requires a key, hides one tenant’s orders from another, and deduplicates per tenant', async () => {
    const order = newOrder(1);
    expectProblem(await secured.inject(json(order)), 401, 'UNAUTHENTICATED');

    const acme = await secured.inject({ ...json(order), headers: { 'content-type': 'application/json', ...as('acme') } });
    expect(acme.statusCode).toBe(201);
    const { orderId } = acme.json();
    expect((await secured.inject({ method: 'GET', url: `/orders/${orderId}`, headers: as('acme') })).statusCode).toBe(200);
    expectProblem(await secured.inject({ method: 'GET', url: `/orders/${orderId}`, headers: as('globex') }), 404, 'ORDER_NOT_FOUND');

    // The same payload from another tenant is that tenant's own, new order.
    const globex = await secured.inject({ ...json(order), headers: { 'content-type': 'application/json', ...as('globex') } });
    expect(globex.statusCode).toBe(201);
    expect(globex.headers['idempotent-replayed']).toBeUndefined();
    expect(globex.json().orderId).not.toBe(orderId);
  });
});
