import type { FastifyInstance } from 'fastify';
import { randomInt, randomUUID } from 'node:crypto';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { ensureResources, tableDefinitions } from '../../src/bootstrap/resources.ts';
import type { Config } from '../../src/config.ts';
import { AppliedOrderStore } from '../../src/consumer/applied-orders.ts';
import { OrderEventConsumer, type OrderEventConsumerOptions } from '../../src/consumer/order-event-consumer.ts';
import { OrderEventPublisher } from '../../src/orders/order-events.ts';
import { OrderStore } from '../../src/orders/order-store.ts';
import type { NewOrder, OrderAcceptedEvent } from '../../src/orders/schemas.ts';
import { OutboxRelay, type OutboxRelayOptions } from '../../src/outbox/outbox-relay.ts';
import { testConfig } from '../support/app.ts';
import { appliedOrderRecord, scanAll } from '../support/dynamo.ts';

export { scanAll };
export { drain } from '../support/outbox.ts';

type ConfigOverrides = NonNullable<Parameters<typeof testConfig>[0]>;

export const silentLog = { info() {}, warn() {}, error() {} };

/** A customer id no other test uses: the payloads of different tests never deduplicate. */
export function customerId(): string {
  return `CUST-${String(randomInt(0, 100_000_000)).padStart(8, '0')}`;
}

export function newOrder(lines = 1, customer = customerId()): NewOrder {
  return { customerId: customer, items: Array.from({ length: lines }, (_, i) => ({ sku: `SKU-${1000 + i}`, quantity: i + 1 })) };
}

export function json(payload: unknown) {
  return { method: 'POST' as const, url: '/orders', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) };
}

export async function waitFor<T>(probe: () => Promise<T | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * An orders table, a consumer table, a topic, a queue and its dead-letter
 * queue of its own: relays and consumers of one test never see another
 * test's events (a relay sweeps its whole table, a consumer its whole queue).
 */
export type IsolatedStack = {
  config: Config;
  /** What testApp()/testConfig() need to use these resources. */
  names: ConfigOverrides;
  aws: AwsClients;
  queueUrl: string;
  dlqUrl: string;
  orders: OrderStore;
  applied: AppliedOrderStore;
  publisher: OrderEventPublisher;
  relay(options?: Partial<OutboxRelayOptions<OrderAcceptedEvent>>): OutboxRelay<OrderAcceptedEvent>;
  consumer(options?: Partial<OrderEventConsumerOptions>): OrderEventConsumer & { appliedEvents: OrderAcceptedEvent[] };
  /** Every consumer record in this stack's consumer table. */
  appliedRecords(): Promise<Record<string, unknown>[]>;
  /** The consumer's record of one applied order (see appliedOrderRecord). */
  appliedOrder(tenant: string, orderId: string): Promise<Record<string, unknown> | undefined>;
  close(): void;
};

export async function isolatedStack(overrides: ConfigOverrides = {}): Promise<IsolatedStack> {
  const id = randomUUID().slice(0, 8);
  const names = {
    ORDERS_TABLE: `orders-${id}`,
    CONSUMER_TABLE: `order-consumer-${id}`,
    ORDER_EVENTS_TOPIC_ARN: `arn:aws:sns:us-east-1:000000000000:order-events-${id}`,
    ORDER_EVENTS_QUEUE: `order-events-${id}`,
    ORDER_EVENTS_DLQ: `order-events-${id}-dlq`,
  };
  const config = testConfig({ ...names, ...overrides });
  const aws = createAwsClients(config);
  await createTablesQuickly(aws, config, [config.ORDERS_TABLE, config.CONSUMER_TABLE]);
  const { queueUrl, dlqUrl } = await ensureResources(config, aws);
  const orders = new OrderStore({ dynamo: aws.dynamo, table: config.ORDERS_TABLE });
  const applied = new AppliedOrderStore({ dynamo: aws.dynamo, table: config.CONSUMER_TABLE, dedupSeconds: 3600 });
  const publisher = new OrderEventPublisher({ sns: aws.sns, topicArn: config.ORDER_EVENTS_TOPIC_ARN });
  return {
    config,
    names: { ...names, ...overrides },
    aws,
    queueUrl,
    dlqUrl,
    orders,
    applied,
    publisher,
    relay: (options = {}) =>
      new OutboxRelay({
        name: 'orders',
        store: orders.outbox,
        publisher,
        log: silentLog,
        batchSize: 25,
        graceMs: 0,
        leaseMs: 10_000,
        intervalMs: 50,
        ...options,
      }),
    consumer: (options = {}) => {
      const appliedEvents: OrderAcceptedEvent[] = [];
      const consumer = new OrderEventConsumer({
        sqs: aws.sqs,
        store: applied,
        orders,
        topicArn: config.ORDER_EVENTS_TOPIC_ARN,
        log: silentLog,
        queue: { url: queueUrl },
        waitTimeSeconds: 1,
        visibilityTimeoutSeconds: 2,
        onApplied: (event) => appliedEvents.push(event),
        ...options,
      });
      return Object.assign(consumer, { appliedEvents });
    },
    appliedRecords: () => scanAll(aws, config.CONSUMER_TABLE, 'ORDER#'),
    appliedOrder: (tenant, orderId) => appliedOrderRecord(aws.dynamo, config.CONSUMER_TABLE, tenant, orderId),
    close: () => aws.destroy(),
  };
}

/**
 * The bootstrap's table waiter polls once a second at best, and dynalite
 * sometimes answers its first look with CREATING: creating the tables here
 * and polling faster saves that second per stack.
 */
async function createTablesQuickly(aws: AwsClients, config: Config, names: string[]) {
  const tables = tableDefinitions(config).filter((table) => names.includes(table.name));
  await Promise.all(
    tables.map(async (table) => {
      await aws.dynamoAdmin.send(new CreateTableCommand({ TableName: table.name, ...table.input }));
      await waitFor(async () => {
        const { Table } = await aws.dynamoAdmin.send(new DescribeTableCommand({ TableName: table.name }));
        return Table?.TableStatus === 'ACTIVE';
      }, 10_000, `table ${table.name}`);
    }),
  );
}

/** Polls until `done` holds (or the time is up), and returns what the polls did. */
export async function consumeUntil(
  consumer: OrderEventConsumer,
  done: (total: Record<string, number>) => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<Record<string, number>> {
  const total: Record<string, number> = {};
  const deadline = Date.now() + timeoutMs;
  while (!(await done(total))) {
    if (Date.now() > deadline) throw new Error(`consumer did not finish: ${JSON.stringify(total)}`);
    const result = await consumer.pollOnce();
    for (const [key, value] of Object.entries(result)) total[key] = (total[key] ?? 0) + value;
  }
  return total;
}

/** A port nothing listens on: an event bus that is down. */
export const DEAD_ENDPOINT = 'http://127.0.0.1:9';

/** Every order's event marked published (the relay sends none of them again). One read at a time: the in-flight cap stays out of it. */
export async function allPublished(app: FastifyInstance, orders: readonly { orderId: string }[]): Promise<boolean> {
  for (const order of orders) {
    const read = await app.inject({ method: 'GET', url: `/orders/${order.orderId}` });
    if (read.statusCode !== 200 || read.json().event.status !== 'PUBLISHED') return false;
  }
  return true;
}
