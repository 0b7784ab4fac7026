import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DocumentDb } from '../adapters/aws.ts';
import { isConditionFailure } from '../adapters/aws.ts';
import type { TraceCarrier } from '../telemetry/message-spans.ts';
import type { EventStatus, Order } from './schemas.ts';

/**
 * The orders table holds two kinds of items, both written with single-item
 * conditional writes (DynamoDB transactions would do it in one, but the
 * local emulator has none, and this needs none):
 *
 * - `DEDUP#<tenant>#<payload hash>`: which order a payload became, until
 *   `windowEndsAt` (epoch ms, checked in the condition; `expiresAt` only lets
 *   TTL clean up later). It names the order id and acceptance time before the
 *   order exists, so whoever finds it can finish a crashed acceptance.
 * - `ORDER#<tenant>#<orderId>`: the order and its event state (the outbox).
 *   While the event is pending the item carries `outboxShard`/`outboxSince`,
 *   which puts it in the sparse `outbox` index the relay reads.
 */

export const OUTBOX_INDEX = 'outbox';
/** Pending events are spread over a few index partitions so no single one is hot; the relay reads them all. */
export const OUTBOX_SHARDS = ['0', '1', '2', '3'] as const;

export type Acceptance = { orderId: string; acceptedAt: string };

export type DedupRecord = Acceptance & { windowEndsAt: number };

export type StoredOrder = {
  key: string;
  tenant: string;
  order: Order;
  eventStatus: EventStatus;
  /** When the event became pending (epoch ms); only while pending. */
  outboxSince?: number;
  /** Trace context of the request that accepted the order, for whoever publishes its event later. */
  traceContext?: TraceCarrier;
};

type DedupItem = DedupRecord & { pk: string; expiresAt: number };

type OrderItem = Order & {
  pk: string;
  tenant: string;
  eventStatus: EventStatus;
  outboxShard?: string;
  outboxSince?: number;
  leaseUntil?: number;
  leaseOwner?: string;
  publishedAt?: string;
  traceContext?: TraceCarrier;
};

export type Backlog = { count: number; oldestSince: number | undefined };

export type OrderStoreOptions = { dynamo: DocumentDb; table: string };

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

function storedOf(item: OrderItem): StoredOrder {
  return {
    key: item.pk,
    tenant: item.tenant,
    order: orderOf(item),
    eventStatus: item.eventStatus,
    ...(item.outboxSince === undefined ? {} : { outboxSince: item.outboxSince }),
    ...(item.traceContext === undefined ? {} : { traceContext: item.traceContext }),
  };
}

function shardOf(orderId: string): string {
  // The last hex digit of a UUIDv7 is random.
  return OUTBOX_SHARDS[Number.parseInt(orderId.slice(-1), 16) % OUTBOX_SHARDS.length]!;
}

export class OrderStore {
  private readonly options: OrderStoreOptions;

  constructor(options: OrderStoreOptions) {
    this.options = options;
  }

  private dedupKey(tenant: string, hash: string) {
    return `DEDUP#${tenant}#${hash}`;
  }

  orderKey(tenant: string, orderId: string) {
    return `ORDER#${tenant}#${orderId}`;
  }

  /**
   * Claims a payload for `acceptance` unless another acceptance of it is
   * still within its window. The window is in the condition, so an old
   * record that TTL has not removed yet never blocks a new order.
   */
  async claimDedup(tenant: string, hash: string, acceptance: Acceptance, now: number, windowMs: number): Promise<boolean> {
    const windowEndsAt = now + windowMs;
    const item: DedupItem = {
      pk: this.dedupKey(tenant, hash),
      ...acceptance,
      windowEndsAt,
      expiresAt: Math.ceil(windowEndsAt / 1000) + 3600,
    };
    try {
      await this.options.dynamo.send(
        new PutCommand({
          TableName: this.options.table,
          Item: item,
          ConditionExpression: 'attribute_not_exists(pk) OR windowEndsAt < :now',
          ExpressionAttributeValues: { ':now': now },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async readDedup(tenant: string, hash: string): Promise<DedupRecord | undefined> {
    const { Item } = await this.options.dynamo.send(
      new GetCommand({ TableName: this.options.table, Key: { pk: this.dedupKey(tenant, hash) }, ConsistentRead: true }),
    );
    if (!Item) return undefined;
    const item = Item as DedupItem;
    return { orderId: item.orderId, acceptedAt: item.acceptedAt, windowEndsAt: item.windowEndsAt };
  }

  /**
   * Writes the order with its event pending. 'exists' when it is already
   * there: the same id always carries the same order (the dedup record fixed
   * it), so whoever wrote it first wrote what this call would have.
   */
  async insert(tenant: string, order: Order, now: number, traceContext: TraceCarrier = {}): Promise<'created' | 'exists'> {
    const item: OrderItem = {
      pk: this.orderKey(tenant, order.orderId),
      tenant,
      ...order,
      eventStatus: 'PENDING',
      outboxShard: shardOf(order.orderId),
      outboxSince: now,
      ...(traceContext.traceparent ? { traceContext } : {}),
    };
    try {
      await this.options.dynamo.send(
        new PutCommand({ TableName: this.options.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
      );
      return 'created';
    } catch (error) {
      if (isConditionFailure(error)) return 'exists';
      throw error;
    }
  }

  async get(tenant: string, orderId: string): Promise<StoredOrder | undefined> {
    const { Item } = await this.options.dynamo.send(
      new GetCommand({ TableName: this.options.table, Key: { pk: this.orderKey(tenant, orderId) }, ConsistentRead: true }),
    );
    return Item ? storedOf(Item as OrderItem) : undefined;
  }

  /**
   * Leaves the outbox. Conditional on still pending, so a late duplicate
   * publication never rewrites publishedAt; dropping the index keys takes
   * the item out of the sparse index.
   */
  async markPublished(key: string, now: number): Promise<void> {
    try {
      await this.options.dynamo.send(
        new UpdateCommand({
          TableName: this.options.table,
          Key: { pk: key },
          UpdateExpression:
            'SET eventStatus = :published, publishedAt = :at REMOVE outboxShard, outboxSince, leaseUntil, leaseOwner',
          ConditionExpression: 'eventStatus = :pending',
          ExpressionAttributeValues: { ':published': 'PUBLISHED', ':pending': 'PENDING', ':at': new Date(now).toISOString() },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  /**
   * Oldest pending events of one shard that became pending before `before`
   * and are not leased to a relay right now. The index is eventually
   * consistent: `claim` re-checks on the item itself.
   */
  async pending(shard: string, before: number, now: number, limit: number): Promise<StoredOrder[]> {
    const found: StoredOrder[] = [];
    let startKey: Record<string, unknown> | undefined;
    // Leased items are filtered after the read; a few pages get past a run of them.
    for (let page = 0; page < 5 && found.length < limit; page++) {
      const answer = await this.options.dynamo.send(
        new QueryCommand({
          TableName: this.options.table,
          IndexName: OUTBOX_INDEX,
          KeyConditionExpression: 'outboxShard = :shard AND outboxSince < :before',
          FilterExpression: 'attribute_not_exists(leaseUntil) OR leaseUntil < :now',
          ExpressionAttributeValues: { ':shard': shard, ':before': before, ':now': now },
          Limit: limit,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of (answer.Items ?? []) as OrderItem[]) {
        if (found.length < limit && item.eventStatus === 'PENDING') found.push(storedOf(item));
      }
      startKey = answer.LastEvaluatedKey;
      if (!startKey) break;
    }
    return found;
  }

  /** Takes the lease of a pending event; false when published or leased by another relay meanwhile. */
  async claim(key: string, owner: string, now: number, leaseUntil: number): Promise<boolean> {
    try {
      await this.options.dynamo.send(
        new UpdateCommand({
          TableName: this.options.table,
          Key: { pk: key },
          UpdateExpression: 'SET leaseUntil = :until, leaseOwner = :owner',
          ConditionExpression: 'eventStatus = :pending AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)',
          ExpressionAttributeValues: { ':until': leaseUntil, ':owner': owner, ':pending': 'PENDING', ':now': now },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Gives a lease back after a failed publication, so the next sweep (of any replica) retries at once. */
  async release(key: string, owner: string): Promise<void> {
    try {
      await this.options.dynamo.send(
        new UpdateCommand({
          TableName: this.options.table,
          Key: { pk: key },
          UpdateExpression: 'REMOVE leaseUntil, leaseOwner',
          ConditionExpression: 'leaseOwner = :owner AND eventStatus = :pending',
          ExpressionAttributeValues: { ':owner': owner, ':pending': 'PENDING' },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  /**
   * How many events are pending and since when, from the sparse index.
   * Counting reads the whole index, so it stops after `maxPages` pages per
   * shard: a backlog that large is an incident whatever the exact number.
   */
  async backlog(options: { maxPages?: number; abortSignal?: AbortSignal } = {}): Promise<Backlog> {
    const maxPages = options.maxPages ?? 10;
    const perShard = await Promise.all(
      OUTBOX_SHARDS.map(async (shard) => {
        const oldest = await this.options.dynamo.send(
          new QueryCommand({
            TableName: this.options.table,
            IndexName: OUTBOX_INDEX,
            KeyConditionExpression: 'outboxShard = :shard',
            ExpressionAttributeValues: { ':shard': shard },
            ProjectionExpression: 'outboxSince',
            Limit: 1,
          }),
          { abortSignal: options.abortSignal },
        );
        const since = (oldest.Items?.[0] as { outboxSince?: number } | undefined)?.outboxSince;
        if (since === undefined) return { count: 0, oldestSince: undefined };
        let count = 0;
        let startKey: Record<string, unknown> | undefined;
        for (let page = 0; page < maxPages; page++) {
          const answer = await this.options.dynamo.send(
            new QueryCommand({
              TableName: this.options.table,
              IndexName: OUTBOX_INDEX,
              KeyConditionExpression: 'outboxShard = :shard',
              ExpressionAttributeValues: { ':shard': shard },
              Select: 'COUNT',
              ExclusiveStartKey: startKey,
            }),
            { abortSignal: options.abortSignal },
          );
          count += answer.Count ?? 0;
          startKey = answer.LastEvaluatedKey;
          if (!startKey) break;
        }
        return { count, oldestSince: since };
      }),
    );
    const sinces = perShard.map((shard) => shard.oldestSince).filter((since) => since !== undefined);
    return {
      count: perShard.reduce((sum, shard) => sum + shard.count, 0),
      oldestSince: sinces.length > 0 ? Math.min(...sinces) : undefined,
    };
  }
}
