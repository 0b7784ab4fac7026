import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp, uniqueId } from '../support/app.ts';
import { testClock } from '../support/clock.ts';

// Idempotency-Key on POST /orders, on top of the payload dedup.
let app: FastifyInstance;
const clock = testClock();
beforeAll(async () => {
  app = await testApp({ config: { ORDER_DEDUP_WINDOW_SECONDS: 1 }, overrides: { now: clock.now } });
});
afterAll(async () => {
  await app.close();
});

const customer = () => `CUST-${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
const post = (payload: unknown, key?: string) =>
  app.inject({
    method: 'POST',
    url: '/orders',
    payload: payload as object,
    headers: key === undefined ? {} : { 'idempotency-key': key },
  });

describe('POST /orders with an Idempotency-Key', () => {
  it('replays the same order for the same key and payload, even after the dedup window', async () => {
    const key = uniqueId('order-key');
    const payload = { customerId: customer(), items: [{ sku: 'SKU-1001', quantity: 3 }] };
    const first = await post(payload, key);
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    clock.advance(1001); // past the 1 s dedup window
    const again = await post({ items: payload.items, customerId: payload.customerId }, `"${key}"`);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    // Without the key, the same payload after the window is a new order, as the contract says.
    const fresh = await post(payload);
    expect(fresh.json().orderId).not.toBe(first.json().orderId);
  });

  it('answers 422 IDEMPOTENCY_KEY_REUSED for the key with another payload, and creates nothing', async () => {
    const key = uniqueId('order-key');
    const id = customer();
    await post({ customerId: id, items: [{ sku: 'SKU-1001', quantity: 1 }] }, key);
    const other = { customerId: id, items: [{ sku: 'SKU-1001', quantity: 2 }] };
    const reused = await post(other, key);
    expect(reused.statusCode).toBe(422);
    expect(reused.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    // The other payload was not accepted: posted without the key it is a first acceptance.
    const without = await post(other);
    expect(without.statusCode).toBe(201);
    expect(without.headers['idempotent-replayed']).toBeUndefined();
  });

  it('refuses a malformed key with 400 INVALID_IDEMPOTENCY_KEY before anything is written', async () => {
    const payload = { customerId: customer(), items: [{ sku: 'SKU-1001', quantity: 1 }] };
    const refused = await post(payload, 'k'.repeat(256));
    expect(refused.statusCode).toBe(400);
    expect(refused.json().code).toBe('INVALID_IDEMPOTENCY_KEY');
    const first = await post(payload);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
  });

  it('gives 20 concurrent requests with one key one order', async () => {
    const key = uniqueId('order-key');
    const payload = { customerId: customer(), items: [{ sku: 'SKU-2002', quantity: 5 }] };
    const answers = await Promise.all(Array.from({ length: 20 }, () => post(payload, key)));
    const ids = new Set(answers.filter((a) => a.statusCode === 201).map((a) => a.json().orderId));
    expect(ids.size).toBe(1);
    for (const a of answers) expect([201, 409]).toContain(a.statusCode);
  });
});
