import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { AppliedOrderStore } from '../../src/consumer/applied-orders.ts';
import { OrderEventConsumer } from '../../src/consumer/order-event-consumer.ts';
import { OrderEventPublisher } from '../../src/orders/order-events.ts';
import { OrderStore } from '../../src/orders/order-store.ts';
import type { Order, OrderAcceptedEvent } from '../../src/orders/schemas.ts';
import { OutboxRelay } from '../../src/outbox/outbox-relay.ts';
import { testApp, testConfig } from '../support/app.ts';
import { appliedOrderRecord } from '../support/dynamo.ts';
import { allPublished, json, newOrder, silentLog, waitFor } from './support.ts';

// The whole path on the shared stack, as `make dev` runs it: the API, a relay
// and a consumer running side by side on the default table, topic and queue.
// Other test files publish to the same topic, so only our orders are counted.

const N = 40;
const config = testConfig();
let aws: AwsClients;
let app: FastifyInstance;
let relay: OutboxRelay<OrderAcceptedEvent>;
let consumer: OrderEventConsumer;
const applied: OrderAcceptedEvent[] = [];

beforeAll(async () => {
  aws = createAwsClients(config);
  app = await testApp();
  const orders = new OrderStore({ dynamo: aws.dynamo, table: config.ORDERS_TABLE });
  relay = new OutboxRelay({
    name: 'orders',
    store: orders.outbox,
    publisher: new OrderEventPublisher({ sns: aws.sns, topicArn: config.ORDER_EVENTS_TOPIC_ARN }),
    log: silentLog,
    batchSize: config.RELAY_BATCH_SIZE,
    graceMs: config.RELAY_GRACE_MS,
    leaseMs: config.RELAY_LEASE_SECONDS * 1000,
    intervalMs: 200,
  });
  consumer = new OrderEventConsumer({
    sqs: aws.sqs,
    store: new AppliedOrderStore({ dynamo: aws.dynamo, table: config.CONSUMER_TABLE, dedupSeconds: config.CONSUMER_DEDUP_SECONDS }),
    orders,
    topicArn: config.ORDER_EVENTS_TOPIC_ARN,
    log: silentLog,
    queue: { name: config.ORDER_EVENTS_QUEUE },
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: config.CONSUMER_VISIBILITY_TIMEOUT_SECONDS,
    onApplied: (event) => applied.push(event),
  });
  relay.start();
  consumer.start();
});

afterAll(async () => {
  await Promise.all([relay?.stop(), consumer?.stop()]);
  await app?.close();
  aws?.destroy();
});

describe('end to end: HTTP → DynamoDB → SNS → SQS → consumer', () => {
  it(`${N} orders accepted through HTTP become ${N} distinct events, each applied once`, { timeout: 90_000 }, async () => {
    const answers = await Promise.all(Array.from({ length: N }, (_, i) => app.inject(json(newOrder(1 + (i % 3))))));
    for (const answer of answers) expect(answer.statusCode, answer.body).toBe(201);
    const orders: Order[] = answers.map((answer) => answer.json());
    const ids = new Set(orders.map((order) => order.orderId));
    expect(ids.size).toBe(N);

    const record = (orderId: string) => appliedOrderRecord(aws.dynamo, config.CONSUMER_TABLE, 'public', orderId);
    // The limit only catches a pipeline that never delivers: beside two busy loops 20 s was not enough, once.
    await waitFor(
      async () => (await Promise.all(orders.map((order) => record(order.orderId)))).every(Boolean),
      60_000,
      'every order applied',
    );
    // Before counting, the point past which no duplicate can come: every event marked
    // published (the relay sends none of them again), then an order accepted after that
    // applied in its turn.
    await waitFor(() => allPublished(app, orders), 20_000, 'every event marked published');
    const later: Order = (await app.inject(json(newOrder(1)))).json();
    await waitFor(async () => applied.some((event) => event.id === later.orderId), 20_000, 'the later order applied');

    const ours = applied.filter((event) => ids.has(event.id));
    expect(ours).toHaveLength(N); // none missing, none twice
    expect(new Set(ours.map((event) => event.id)).size).toBe(N);
    for (const order of orders) {
      expect(ours.find((event) => event.id === order.orderId)?.data).toEqual(order);
      expect(await record(order.orderId)).toMatchObject({ orderId: order.orderId, customerId: order.customerId, items: order.items, eventId: order.orderId });
      const read = await app.inject({ method: 'GET', url: `/orders/${order.orderId}` });
      expect(read.json().event.status).toBe('PUBLISHED');
    }
    expect(relay.healthy).toBe(true);
    expect(consumer.healthy).toBe(true);
  });
});
