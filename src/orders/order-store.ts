import { Type, type Static } from 'typebox';
import { conditionalWrite, itemParser, type DynamoDb, type Item } from '../adapters/dynamodb.ts';
import { EventStatus, OutboxStore, pendingEvent } from '../outbox/outbox-store.ts';
import type { TraceCarrier } from '../telemetry/message-spans.ts';
import { orderAcceptedEvent } from './order-events.ts';
import type { Order, OrderAcceptedEvent } from './schemas.ts';

/**
 * The orders table holds two kinds of items, both written with single-item
 * conditional writes (DynamoDB transactions would do it in one, but the
 * local emulator has none, and this needs none):
 *
 * - `DEDUP#<tenant>#<payload hash>`: which order a payload became, until
 *   `windowEndsAt` (epoch ms, checked in the condition; `expiresAt` only lets
 *   TTL clean up later). It names the order id and acceptance time before the
 *   order exists, so whoever finds it can finish a crashed acceptance.
 * - `ORDER#<tenant>#<orderId>`: the order, and its order.accepted event in
 *   the outbox (outbox-store.ts), pending from the order's first write.
 */

export type Acceptance = { orderId: string; acceptedAt: string };

export type DedupRecord = Acceptance & { windowEndsAt: number };

export type StoredOrder = { order: Order; eventStatus: EventStatus };

// The items as read, checked for their shape (not the API's patterns: what the table holds was checked when written).
const DedupItem = Type.Object({
  pk: Type.String(),
  orderId: Type.String(),
  acceptedAt: Type.String(),
  windowEndsAt: Type.Number(),
  expiresAt: Type.Number(),
});
type DedupItem = Static<typeof DedupItem>;
const parseDedupItem = itemParser('order dedup', DedupItem);

const OrderItem = Type.Object({
  pk: Type.String(),
  tenant: Type.String(),
  orderId: Type.String(),
  status: Type.Literal('ACCEPTED'),
  acceptedAt: Type.String(),
  customerId: Type.String(),
  items: Type.Array(Type.Object({ sku: Type.String(), quantity: Type.Integer({ minimum: 1 }) }), { minItems: 1 }),
  eventStatus: EventStatus,
});
type OrderItem = Static<typeof OrderItem>;
const parseOrderItem = itemParser('order', OrderItem);

export type OrderStoreOptions = { dynamo: DynamoDb; table: string };

function orderOf(item: OrderItem): Order {
  // Field by field: the answer never depends on which other attributes the item carries.
  return {
    orderId: item.orderId,
    status: item.status,
    acceptedAt: item.acceptedAt,
    customerId: item.customerId,
    items: item.items.map((line) => ({ sku: line.sku, quantity: line.quantity })),
  };
}

function orderKey(tenant: string, orderId: string) {
  return `ORDER#${tenant}#${orderId}`;
}

function dedupKey(tenant: string, hash: string) {
  return `DEDUP#${tenant}#${hash}`;
}

export class OrderStore {
  private readonly options: OrderStoreOptions;
  /** The order events still to publish, on the order items themselves. */
  readonly outbox: OutboxStore<OrderAcceptedEvent>;

  constructor(options: OrderStoreOptions) {
    this.options = options;
    this.outbox = new OutboxStore({
      ...options,
      eventOf: (item: Item) => {
        const order = parseOrderItem(item);
        return orderAcceptedEvent(order.tenant, orderOf(order));
      },
    });
  }

  /**
   * Claims a payload for `acceptance` unless another acceptance of it is
   * still within its window. The window is in the condition, so an old
   * record that TTL has not removed yet never blocks a new order.
   */
  claimDedup(tenant: string, hash: string, acceptance: Acceptance, now: number, windowMs: number): Promise<boolean> {
    const windowEndsAt = now + windowMs;
    const item: DedupItem = {
      pk: dedupKey(tenant, hash),
      ...acceptance,
      windowEndsAt,
      expiresAt: Math.ceil(windowEndsAt / 1000) + 3600,
    };
    return conditionalWrite(
      this.options.dynamo.putItem({
        TableName: this.options.table,
        Item: item,
        ConditionExpression: 'attribute_not_exists(pk) OR windowEndsAt < :now',
        ExpressionAttributeValues: { ':now': now },
      }),
    );
  }

  async readDedup(tenant: string, hash: string): Promise<DedupRecord | undefined> {
    const { Item } = await this.options.dynamo.getItem({ TableName: this.options.table, Key: { pk: dedupKey(tenant, hash) }, ConsistentRead: true });
    if (!Item) return undefined;
    const item = parseDedupItem(Item);
    return { orderId: item.orderId, acceptedAt: item.acceptedAt, windowEndsAt: item.windowEndsAt };
  }

  /**
   * Writes the order with its event pending (and the trace context of the
   * request, for whoever publishes the event). 'exists' when it is already
   * there: the same id always carries the same order (the dedup record fixed
   * it), so whoever wrote it first wrote what this call would have.
   */
  async insert(tenant: string, order: Order, now: number, traceContext: TraceCarrier = {}): Promise<'created' | 'exists'> {
    const item: OrderItem = { pk: orderKey(tenant, order.orderId), tenant, ...order, ...pendingEvent(order.orderId, now, traceContext) };
    const created = await conditionalWrite(
      this.options.dynamo.putItem({ TableName: this.options.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
    return created ? 'created' : 'exists';
  }

  async get(tenant: string, orderId: string): Promise<StoredOrder | undefined> {
    const { Item } = await this.options.dynamo.getItem({ TableName: this.options.table, Key: { pk: orderKey(tenant, orderId) }, ConsistentRead: true });
    if (!Item) return undefined;
    const item = parseOrderItem(Item);
    return { order: orderOf(item), eventStatus: item.eventStatus };
  }

  /** The order's event is on the topic: out of the outbox. */
  markPublished(tenant: string, orderId: string, now: number): Promise<void> {
    return this.outbox.markPublished(orderKey(tenant, orderId), now);
  }
}
