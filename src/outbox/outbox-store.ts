import { Type, type Static } from 'typebox';
import { conditionalWrite, type DynamoDb, type Item } from '../adapters/dynamodb.ts';
import type { TraceCarrier } from '../telemetry/message-spans.ts';

/**
 * A transactional outbox without a second table: the event's state lives on
 * the item it belongs to, in the table of the store that owns the item.
 * While the event is pending the item carries `outboxShard` and
 * `outboxSince` (written with the item itself, see `pendingEvent`), which
 * put it in the sparse `outbox` index; a relay leases it (`leaseUntil`,
 * `leaseOwner`), publishes it, and marks it PUBLISHED, which takes it out of
 * the index. The owning store says how an item becomes its event (`eventOf`).
 * `traceContext`, when the request that wrote the item was traced, goes with
 * the event to whoever publishes it.
 */

export const OUTBOX_INDEX = 'outbox';
/**
 * Pending events are spread over index partitions so that no single one is
 * hot; readers query them all. Sixteen, one per last hex digit of the id:
 * the index takes two writes per order (in, then out), so 5000 orders/s is
 * 625 WCU/s per shard, inside a partition's 1000 (docs/capacity.md). Items
 * written under fewer shards ('0'-'3') are still found.
 */
export const OUTBOX_SHARDS: readonly string[] = Array.from({ length: 16 }, (_, digit) => digit.toString(16));

/** Where an item's event is: in the outbox, or on the topic. Orders show it in their API answer. */
export const EventStatus = Type.Union([Type.Literal('PENDING'), Type.Literal('PUBLISHED')]);
export type EventStatus = Static<typeof EventStatus>;

/** A pending event, found in the index: the item's key, since when it waits, the event to publish. */
export type OutboxEntry<E> = { key: string; since: number; event: E; origin?: TraceCarrier };

export type Backlog = { count: number; oldestSince: number | undefined };

/** The attributes that put an item's event in the outbox, for the owner's own write of the item. */
export function pendingEvent(
  id: string,
  now: number,
  traceContext: TraceCarrier = {},
): { eventStatus: 'PENDING'; outboxShard: string; outboxSince: number; traceContext?: TraceCarrier } {
  // The last hex digit of a UUIDv7 is random.
  const shard = OUTBOX_SHARDS[Number.parseInt(id.slice(-1), 16) % OUTBOX_SHARDS.length] ?? '0';
  return { eventStatus: 'PENDING', outboxShard: shard, outboxSince: now, ...(traceContext.traceparent ? { traceContext } : {}) };
}

/** The trace context an item carries, if it is one (an object of strings). */
function traceContextOf(item: Item): TraceCarrier | undefined {
  const value = item.traceContext;
  if (typeof value !== 'object' || value === null) return undefined;
  const carrier: TraceCarrier = {};
  for (const [field, text] of Object.entries(value)) if (typeof text === 'string') carrier[field] = text;
  return carrier.traceparent ? carrier : undefined;
}

export type OutboxStoreOptions<E> = {
  dynamo: DynamoDb;
  table: string;
  eventOf: (item: Item) => E;
  /** Only the events of items whose `attribute` is `value` (a region's, of a table every region replicates). */
  only?: { attribute: string; value: string };
};

export class OutboxStore<E> {
  private readonly options: OutboxStoreOptions<E>;

  constructor(options: OutboxStoreOptions<E>) {
    this.options = options;
  }

  /**
   * Up to `limit` of the oldest events that became pending before `before`
   * and are not leased right now, oldest first. The index is eventually
   * consistent: `claim` re-checks on the item itself.
   */
  async pending(before: number, now: number, limit: number): Promise<OutboxEntry<E>[]> {
    const perShard = await Promise.all(OUTBOX_SHARDS.map((shard) => this.pendingIn(shard, before, now, limit)));
    return perShard
      .flat()
      .sort((a, b) => a.since - b.since)
      .slice(0, limit);
  }

  private async pendingIn(shard: string, before: number, now: number, limit: number): Promise<OutboxEntry<E>[]> {
    const found: OutboxEntry<E>[] = [];
    let startKey: Item | undefined;
    // Leased items are filtered after the read; a few pages get past a run of them.
    for (let page = 0; page < 5 && found.length < limit; page++) {
      const { only } = this.options;
      const answer = await this.options.dynamo.query({
        TableName: this.options.table,
        IndexName: OUTBOX_INDEX,
        KeyConditionExpression: 'outboxShard = :shard AND outboxSince < :before',
        FilterExpression: `(attribute_not_exists(leaseUntil) OR leaseUntil < :now)${only ? ' AND #only = :only' : ''}`,
        ...(only ? { ExpressionAttributeNames: { '#only': only.attribute } } : {}),
        ExpressionAttributeValues: { ':shard': shard, ':before': before, ':now': now, ...(only ? { ':only': only.value } : {}) },
        Limit: limit,
        ExclusiveStartKey: startKey,
      });
      for (const item of answer.Items) {
        if (found.length < limit && item.eventStatus === 'PENDING' && typeof item.pk === 'string' && typeof item.outboxSince === 'number') {
          const origin = traceContextOf(item);
          found.push({ key: item.pk, since: item.outboxSince, event: this.options.eventOf(item), ...(origin ? { origin } : {}) });
        }
      }
      startKey = answer.LastEvaluatedKey;
      if (!startKey) break;
    }
    return found;
  }

  /** Takes the lease of a pending event; false when published or leased by another relay meanwhile. */
  claim(key: string, owner: string, now: number, leaseUntil: number): Promise<boolean> {
    return conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: { pk: key },
        UpdateExpression: 'SET leaseUntil = :until, leaseOwner = :owner',
        ConditionExpression: 'eventStatus = :pending AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)',
        ExpressionAttributeValues: { ':until': leaseUntil, ':owner': owner, ':pending': 'PENDING', ':now': now },
      }),
    );
  }

  /** Gives a lease back after a failed publication, so the next sweep (of any replica) retries at once. */
  async release(key: string, owner: string): Promise<void> {
    await conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: { pk: key },
        UpdateExpression: 'REMOVE leaseUntil, leaseOwner',
        ConditionExpression: 'leaseOwner = :owner AND eventStatus = :pending',
        ExpressionAttributeValues: { ':owner': owner, ':pending': 'PENDING' },
      }),
    );
  }

  /**
   * Leaves the outbox. Conditional on still pending, so a late duplicate
   * publication never rewrites publishedAt; dropping the index keys takes
   * the item out of the sparse index.
   */
  async markPublished(key: string, now: number): Promise<void> {
    await conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: { pk: key },
        UpdateExpression: 'SET eventStatus = :published, publishedAt = :at REMOVE outboxShard, outboxSince, leaseUntil, leaseOwner',
        ConditionExpression: 'eventStatus = :pending',
        ExpressionAttributeValues: { ':published': 'PUBLISHED', ':pending': 'PENDING', ':at': new Date(now).toISOString() },
      }),
    );
  }

  /**
   * How many events are pending and since when, from the sparse index.
   * Counting reads the whole index, so it stops after `maxPages` pages per
   * shard: a backlog that large is an incident whatever the exact number.
   */
  async backlog(options: { maxPages?: number; abortSignal?: AbortSignal } = {}): Promise<Backlog> {
    const maxPages = options.maxPages ?? 10;
    const call = { abortSignal: options.abortSignal };
    const shardQuery = (shard: string) => ({
      TableName: this.options.table,
      IndexName: OUTBOX_INDEX,
      KeyConditionExpression: 'outboxShard = :shard',
      ExpressionAttributeValues: { ':shard': shard },
    });
    const perShard = await Promise.all(
      OUTBOX_SHARDS.map(async (shard) => {
        const oldest = await this.options.dynamo.query({ ...shardQuery(shard), ProjectionExpression: 'outboxSince', Limit: 1 }, call);
        const since = oldest.Items[0]?.outboxSince;
        if (typeof since !== 'number') return { count: 0, oldestSince: undefined };
        let count = 0;
        let startKey: Item | undefined;
        for (let page = 0; page < maxPages; page++) {
          const answer = await this.options.dynamo.query({ ...shardQuery(shard), Select: 'COUNT', ExclusiveStartKey: startKey }, call);
          count += answer.Count;
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
