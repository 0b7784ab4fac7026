import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { canonicalHash } from '../../src/orders/canonical.ts';
import { OrderStore } from '../../src/orders/order-store.ts';
import { testApp, testConfig } from '../support/app.ts';
import { testClock } from '../support/clock.ts';
import { customerId, json, newOrder, scanAll } from './support.ts';

// Duplicate detection by canonical payload within ORDER_DEDUP_WINDOW_SECONDS,
// on the shared orders table; every test uses customers of its own.

const config = testConfig();
let aws: AwsClients;
let app: FastifyInstance;
let shortWindow: FastifyInstance;
const clock = testClock();

beforeAll(async () => {
  aws = createAwsClients(config);
  [app, shortWindow] = await Promise.all([testApp(), testApp({ config: { ORDER_DEDUP_WINDOW_SECONDS: 1 }, overrides: { now: clock.now } })]);
});
afterAll(async () => {
  await Promise.all([app.close(), shortWindow.close()]);
  aws.destroy();
});

/** The order items stored for one customer: what "one order" is checked against. */
async function ordersOf(customer: string) {
  const items = await scanAll(aws, config.ORDERS_TABLE, 'ORDER#');
  return items.filter((item) => item.customerId === customer);
}

const raw = (payload: string) => ({
  method: 'POST' as const,
  url: '/orders',
  headers: { 'content-type': 'application/json' },
  payload,
});

describe('duplicate orders within the window', () => {
  it('the same payload twice: the original 201 replayed, same id, Idempotent-Replayed: true', async () => {
    const order = newOrder(3);
    const first = await app.inject(json(order));
    const second = await app.inject(json(order));
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json()).toEqual(first.json());
    expect(second.headers.location).toBe(first.headers.location);
    expect(await ordersOf(order.customerId)).toHaveLength(1);

    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/idempotent_replays_total\{route="POST \/orders"\} [1-9]/);
  });

  it('keys reordered and whitespace changed: still the same order (RFC 8785 canonical JSON)', async () => {
    const customer = customerId();
    const first = await app.inject(
      raw(`{"customerId":"${customer}","items":[{"sku":"SKU-1001","quantity":2},{"sku":"SKU-1002","quantity":1}]}`),
    );
    const reordered = await app.inject(
      raw(`{ "items" : [ { "quantity" : 2 , "sku" : "SKU-1001" },\n {"quantity":1,"sku":"SKU-1002"} ],\n\t"customerId" : "${customer}" }`),
    );
    // Escapes are text, not content: \u0053 is S.
    const escaped = await app.inject(
      raw(`{"customerId":"${customer}","items":[{"sku":"\\u0053KU-1001","quantity":2},{"sku":"SKU-1002","quantity":1.0}]}`),
    );
    expect(first.statusCode).toBe(201);
    for (const duplicate of [reordered, escaped]) {
      expect(duplicate.statusCode, duplicate.body).toBe(201);
      expect(duplicate.headers['idempotent-replayed']).toBe('true');
      expect(duplicate.json()).toEqual(first.json());
    }
    expect(await ordersOf(customer)).toHaveLength(1);
  });

  it('a different payload is a different order: line order and quantities count', async () => {
    const customer = customerId();
    const lines = [
      { sku: 'SKU-1001', quantity: 1 },
      { sku: 'SKU-1002', quantity: 1 },
    ];
    const answers = await Promise.all(
      [lines, [...lines].reverse(), [{ ...lines[0]!, quantity: 2 }, lines[1]!], [lines[0]!]].map((items) =>
        app.inject(json({ customerId: customer, items })),
      ),
    );
    for (const answer of answers) {
      expect(answer.statusCode).toBe(201);
      expect(answer.headers['idempotent-replayed']).toBeUndefined();
    }
    expect(new Set(answers.map((answer) => answer.json().orderId)).size).toBe(4);
    expect(await ordersOf(customer)).toHaveLength(4);
  });

  it('after the window the same payload is a new order, itself deduplicated', async () => {
    // Two posts that must fall in the 1 s window were once 1.58 s apart on a starved machine.
    clock.hold();
    const order = newOrder(1);
    const first = await shortWindow.inject(json(order));
    const within = await shortWindow.inject(json(order));
    expect(within.json().orderId).toBe(first.json().orderId);
    expect(within.headers['idempotent-replayed']).toBe('true');

    clock.advance(1001); // past the 1 s window, which ends inclusively
    const after = await shortWindow.inject(json(order));
    expect(after.statusCode).toBe(201);
    expect(after.headers['idempotent-replayed']).toBeUndefined();
    expect(after.json().orderId).not.toBe(first.json().orderId);
    expect(Date.parse(after.json().acceptedAt)).toBeGreaterThanOrEqual(Date.parse(first.json().acceptedAt) + 1000);

    const again = await shortWindow.inject(json(order));
    expect(again.json().orderId).toBe(after.json().orderId);
    expect(again.headers['idempotent-replayed']).toBe('true');
    // Both orders stay readable; the window only decides what a duplicate is.
    for (const id of [first.json().orderId, after.json().orderId]) {
      expect((await shortWindow.inject({ method: 'GET', url: `/orders/${id}` })).statusCode).toBe(200);
    }
    expect(await ordersOf(order.customerId)).toHaveLength(2);
  });

  it('50 concurrent identical requests create exactly one order', async () => {
    const order = newOrder(2);
    const answers = await Promise.all(Array.from({ length: 50 }, () => app.inject(json(order))));
    for (const answer of answers) expect(answer.statusCode, answer.body).toBe(201);
    const ids = new Set(answers.map((answer) => answer.json().orderId));
    expect(ids.size).toBe(1);
    // One request won the payload; the 49 others are replays of its answer.
    expect(answers.filter((answer) => answer.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    const bodies = new Set(answers.map((answer) => answer.body));
    expect(bodies.size).toBe(1);

    const stored = await ordersOf(order.customerId);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.orderId).toBe([...ids][0]);
  });

  it('a request that died after claiming the payload is finished by the next one, with its id and time', async () => {
    // The first request claimed the payload and died before writing the order.
    const order = newOrder(1);
    const store = new OrderStore({ dynamo: aws.dynamo, table: config.ORDERS_TABLE });
    const planted = { orderId: uuidv7(), acceptedAt: new Date(Date.now() - 500).toISOString() };
    const claimed = await store.claimDedup('public', canonicalHash(order), planted, Date.now() - 500, 15_000);
    expect(claimed).toBe(true);
    expect(await store.get('public', planted.orderId)).toBeUndefined();

    const retry = await app.inject(json(order));
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual({ ...planted, status: 'ACCEPTED', customerId: order.customerId, items: order.items });
    const read = await app.inject({ method: 'GET', url: `/orders/${planted.orderId}` });
    expect(read.json()).toMatchObject({ orderId: planted.orderId, event: { status: 'PUBLISHED' } });
    expect(await ordersOf(order.customerId)).toHaveLength(1);
  });
});
