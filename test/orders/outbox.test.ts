import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { v7 as uuidv7 } from 'uuid';
import { createAwsClients } from '../../src/adapters/aws.ts';
import { OrderEventPublisher, orderAcceptedEvent } from '../../src/orders/order-events.ts';
import type { Order } from '../../src/orders/schemas.ts';
import { registerOutboxGauges } from '../../src/outbox/outbox-metrics.ts';
import { testApp, testConfig } from '../support/app.ts';
import { DEAD_ENDPOINT, consumeUntil, drain, isolatedStack, json, newOrder, type IsolatedStack } from './support.ts';

// The transactional outbox: whatever the API could not publish, the relay
// does, and the consumer applies each event once. Each test has a stack of
// its own, so its relay and consumer see only its events.

const stacks: IsolatedStack[] = [];
const apps: FastifyInstance[] = [];

async function stack(overrides: Parameters<typeof isolatedStack>[0] = {}) {
  const created = await isolatedStack(overrides);
  stacks.push(created);
  return created;
}

async function appOn(s: IsolatedStack, options: Parameters<typeof testApp>[0] = {}) {
  const app = await testApp({ ...options, config: { ...s.names, ...options.config } });
  apps.push(app);
  return app;
}

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  for (const s of stacks) s.close();
});

async function statusOf(app: FastifyInstance, orderId: string): Promise<string> {
  return (await app.inject({ method: 'GET', url: `/orders/${orderId}` })).json().event.status;
}

/** Orders written straight to the store with their event pending, as if every publish attempt had failed. */
async function pendingOrders(s: IsolatedStack, count: number): Promise<Order[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const input = newOrder(1);
      const order: Order = { orderId: uuidv7(), status: 'ACCEPTED', acceptedAt: new Date().toISOString(), ...input };
      expect(await s.orders.insert('public', order, Date.now())).toBe('created');
      return order;
    }),
  );
}

function metric(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('SNS unreachable during POST /orders', () => {
  let s: IsolatedStack;
  let down: FastifyInstance;
  const accepted: Order[] = [];

  beforeAll(async () => {
    s = await stack();
    down = await appOn(s, { config: { AWS_ENDPOINT_URL_SNS: DEAD_ENDPOINT } });
  });

  it('answers 201 every time, quickly, and leaves the events pending', async () => {
    for (let i = 0; i < 6; i++) {
      const started = Date.now();
      const response = await down.inject(json(newOrder(2)));
      expect(response.statusCode, response.body).toBe(201);
      expect(Date.now() - started).toBeLessThan(2000);
      accepted.push(response.json());
    }
    for (const order of accepted) expect(await statusOf(down, order.orderId)).toBe('PENDING');
    // /health reports the event bus down, but the service stays up (degraded).
    const health = (await down.inject({ method: 'GET', url: '/health' })).json();
    expect(health).toMatchObject({ events: 'down', storage: 'ok', status: 'degraded' });
  });

  it('shows the backlog in /metrics: pending count and oldest age', async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const text = (await down.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metric(text, 'outbox_pending_events{outbox="orders"}')).toBe(accepted.length);
    expect(metric(text, 'outbox_oldest_pending_age_seconds{outbox="orders"}')).toBeGreaterThan(0);
  });

  it('once SNS is back, the relay delivers every event and the consumer applies each once', async () => {
    const relay = s.relay();
    const swept = await drain(relay);
    expect(swept).toEqual({ claimed: accepted.length, published: accepted.length, failed: 0 });
    for (const order of accepted) expect(await statusOf(down, order.orderId)).toBe('PUBLISHED');
    expect(await drain(relay)).toEqual({ claimed: 0, published: 0, failed: 0 });

    const consumer = s.consumer();
    await consumeUntil(consumer, () => consumer.appliedEvents.length >= accepted.length);
    expect(consumer.appliedEvents.map((event) => event.id).sort()).toEqual(accepted.map((order) => order.orderId).sort());
    for (const order of accepted) {
      expect(consumer.appliedEvents.find((event) => event.id === order.orderId)?.data).toEqual(order);
      expect(await s.appliedOrder('public', order.orderId)).toMatchObject({ orderId: order.orderId, tenant: 'public', items: order.items });
    }
    expect(await s.appliedRecords()).toHaveLength(accepted.length);

    const registry = new Registry();
    registerOutboxGauges(registry, 'orders', s.orders.outbox, { cacheMs: 0 });
    const text = await registry.metrics();
    expect(metric(text, 'outbox_pending_events{outbox="orders"}')).toBe(0);
    expect(metric(text, 'outbox_oldest_pending_age_seconds{outbox="orders"}')).toBe(0);
  });
});

describe('a crash between the write and the publish', () => {
  it('the relay still delivers the event, and a retry of the request gets the same order', async () => {
    const s = await stack();
    const crashing = await appOn(s, {
      overrides: {
        orderIntake: {
          afterWrite: () => {
            throw new Error('process died after the write');
          },
        },
      },
    });
    const order = newOrder(1);
    const crashed = await crashing.inject(json(order));
    expect(crashed.statusCode).toBe(500);
    expect(crashed.json()).toMatchObject({ code: 'INTERNAL_ERROR', detail: 'An unexpected error occurred' });

    // The client retries: the order was written, so it is replayed, not repeated.
    const retry = await crashing.inject(json(order));
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    const { orderId } = retry.json();
    expect(await statusOf(crashing, orderId)).toBe('PENDING');

    expect(await drain(s.relay())).toMatchObject({ published: 1, failed: 0 });
    expect(await statusOf(crashing, orderId)).toBe('PUBLISHED');
    const consumer = s.consumer();
    await consumeUntil(consumer, () => consumer.appliedEvents.length >= 1);
    expect(consumer.appliedEvents.map((event) => event.id)).toEqual([orderId]);
    expect(await s.appliedRecords()).toHaveLength(1);
  });
});

describe('the relay', () => {
  it('publishes CloudEvents 1.0 with a stable id and the type message attribute', async () => {
    const s = await stack();
    const [order] = await pendingOrders(s, 1);
    await drain(s.relay());
    const { Messages = [] } = await s.aws.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: s.queueUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }),
    );
    expect(Messages).toHaveLength(1);
    const event = JSON.parse(Messages[0]!.Body!);
    expect(event).toEqual({
      specversion: '1.0',
      id: order!.orderId,
      type: 'order.accepted',
      source: '/orders',
      time: order!.acceptedAt,
      datacontenttype: 'application/json',
      tenant: 'public',
      data: order,
    });
    expect(event).toEqual(orderAcceptedEvent('public', order!));
    expect(Messages[0]!.MessageAttributes?.type).toMatchObject({ DataType: 'String', StringValue: 'order.accepted' });
  });

  it('leaves events younger than its grace period to the API', async () => {
    const s = await stack();
    await pendingOrders(s, 2);
    expect(await s.relay({ graceMs: 60_000 }).sweep()).toEqual({ claimed: 0, published: 0, failed: 0 });
    expect(await s.relay({ graceMs: 0 }).sweep()).toMatchObject({ claimed: 2, published: 2 });
  });

  it('two replicas sweeping together publish each event once (claims are conditional)', async () => {
    const s = await stack();
    const orders = await pendingOrders(s, 30);
    const [a, b] = [s.relay({ batchSize: 7 }), s.relay({ batchSize: 7 })];
    const [ra, rb] = await Promise.all([drain(a), drain(b)]);
    expect(ra.published + rb.published).toBe(30);
    expect(ra.failed + rb.failed).toBe(0);
    expect((await s.orders.outbox.backlog()).count).toBe(0);

    const consumer = s.consumer();
    const seen = await consumeUntil(consumer, () => consumer.appliedEvents.length >= 30);
    expect(seen.duplicate ?? 0).toBe(0);
    expect(new Set(consumer.appliedEvents.map((event) => event.id))).toEqual(new Set(orders.map((order) => order.orderId)));
  });

  it('a replica that dies holding leases only delays its events until the leases end', async () => {
    const s = await stack();
    const orders = await pendingOrders(s, 3);
    // Long enough that the first sweep surely comes before the leases end, even on a loaded machine.
    const leaseMs = 2000;
    const now = Date.now();
    // What a replica that then died had claimed: the pending events, found as a relay finds them.
    const entries = await s.orders.outbox.pending(now + 1, now, 10);
    expect(entries.map((entry) => entry.event.id).sort()).toEqual(orders.map((order) => order.orderId).sort());
    for (const entry of entries) expect(await s.orders.outbox.claim(entry.key, 'dead-replica', now, now + leaseMs)).toBe(true);
    const relay = s.relay();
    expect(await relay.sweep()).toMatchObject({ claimed: 0 });
    await new Promise((resolve) => setTimeout(resolve, now + leaseMs + 50 - Date.now()));
    expect(await relay.sweep()).toEqual({ claimed: 3, published: 3, failed: 0 });
  });

  it('when SNS fails it gives its leases back, so the next sweep (any replica) retries at once', async () => {
    const s = await stack();
    const orders = await pendingOrders(s, 12);
    const deadSns = createAwsClients(testConfig({ ...s.names, AWS_ENDPOINT_URL_SNS: DEAD_ENDPOINT, AWS_MAX_ATTEMPTS: 1 }));
    try {
      const failing = s.relay({
        publisher: new OrderEventPublisher({ sns: deadSns.sns, topicArn: s.config.ORDER_EVENTS_TOPIC_ARN }),
        publishTimeoutMs: 1000,
      });
      expect(await failing.sweep()).toEqual({ claimed: 12, published: 0, failed: 12 });
    } finally {
      deadSns.destroy();
    }
    expect((await s.orders.outbox.backlog()).count).toBe(12);
    // Batches of ten and two: PublishBatch takes at most ten entries.
    expect(await s.relay().sweep()).toEqual({ claimed: 12, published: 12, failed: 0 });
    for (const order of orders) expect((await s.orders.get('public', order.orderId))?.eventStatus).toBe('PUBLISHED');
  });

  it('runs as a loop that sweeps every interval and stops cleanly', async () => {
    const s = await stack();
    const relay = s.relay({ intervalMs: 50, registry: new Registry() });
    relay.start();
    expect(relay.healthy).toBe(true);
    const orders = await pendingOrders(s, 4);
    for (const order of orders) {
      await expect.poll(async () => (await s.orders.get('public', order.orderId))?.eventStatus, { timeout: 5000 }).toBe('PUBLISHED');
    }
    await relay.stop();
    expect(relay.healthy).toBe(false);
    // That a stopped loop sweeps no more is shown on a fake clock: test/unit/background-loop.test.ts.
  });
});
