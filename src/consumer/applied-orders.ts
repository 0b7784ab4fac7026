import { Type } from 'typebox';
import { conditionalWrite, itemParser, type DynamoDb } from '../adapters/dynamodb.ts';
import type { OrderAcceptedEvent } from '../orders/schemas.ts';

/**
 * The consumer's own table, every key scoped by tenant (an event of one
 * tenant never meets another tenant's records):
 *
 * - `EVENT#<tenant>#<event id>`: the dedup marker, APPLYING (with a lease)
 *   then APPLIED, remembered until `expiresAt` (epoch seconds, checked in
 *   the condition; TTL only cleans up).
 * - `ORDER#<tenant>#<orderId>`: the side effect, a record of the accepted
 *   order, written with attribute_not_exists so that redoing it is harmless.
 *
 * The marker is claimed first and completed last; a consumer that dies in
 * between leaves an APPLYING marker whose lease runs out with the message's
 * visibility timeout, so the redelivery redoes the (idempotent) side effect
 * instead of skipping it.
 */

export type MarkerClaim = 'claimed' | 'applied' | 'busy';

export type AppliedOrder = {
  orderId: string;
  tenant: string;
  customerId: string;
  items: { sku: string; quantity: number }[];
  acceptedAt: string;
  eventId: string;
  appliedAt: string;
};

type Marker = { pk: string; status: 'APPLYING' | 'APPLIED'; leaseUntil: number; expiresAt: number; claimedAt: string };
/** What `claim` reads of a marker it could not take (completing one removes its lease). */
const parseMarker = itemParser(
  'applied-event marker',
  Type.Object({ pk: Type.String(), status: Type.Union([Type.Literal('APPLYING'), Type.Literal('APPLIED')]), expiresAt: Type.Number() }),
);

/** What identifies an event here: its tenant and its id. */
export type EventKey = Pick<OrderAcceptedEvent, 'tenant' | 'id'>;

export type AppliedOrderStoreOptions = {
  dynamo: DynamoDb;
  table: string;
  /** How long an applied event id is remembered. */
  dedupSeconds: number;
};

function markerKey(event: EventKey) {
  return `EVENT#${event.tenant}#${event.id}`;
}

function recordKey(tenant: string, orderId: string) {
  return `ORDER#${tenant}#${orderId}`;
}

export class AppliedOrderStore {
  private readonly options: AppliedOrderStoreOptions;

  constructor(options: AppliedOrderStoreOptions) {
    this.options = options;
  }

  /** Claims an event for `leaseMs`; 'applied' when it was already applied, 'busy' while another consumer holds it. */
  async claim(event: EventKey, now: number, leaseMs: number): Promise<MarkerClaim> {
    const marker: Marker = {
      pk: markerKey(event),
      status: 'APPLYING',
      leaseUntil: now + leaseMs,
      expiresAt: Math.floor(now / 1000) + this.options.dedupSeconds,
      claimedAt: new Date(now).toISOString(),
    };
    const claimed = await conditionalWrite(
      this.options.dynamo.putItem({
        TableName: this.options.table,
        Item: marker,
        ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :nowSeconds OR (#status = :applying AND leaseUntil < :now)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':nowSeconds': Math.floor(now / 1000), ':now': now, ':applying': 'APPLYING' },
      }),
    );
    if (claimed) return 'claimed';
    const { Item } = await this.options.dynamo.getItem({ TableName: this.options.table, Key: { pk: markerKey(event) }, ConsistentRead: true });
    // Gone since the failed put (its TTL): another delivery will claim it.
    if (!Item) return 'busy';
    return parseMarker(Item).status === 'APPLIED' ? 'applied' : 'busy';
  }

  /** The side effect; false when an earlier delivery already did it. */
  record(event: OrderAcceptedEvent, now: number): Promise<boolean> {
    const record: AppliedOrder & { pk: string } = {
      pk: recordKey(event.tenant, event.data.orderId),
      orderId: event.data.orderId,
      tenant: event.tenant,
      customerId: event.data.customerId,
      items: event.data.items.map((line) => ({ sku: line.sku, quantity: line.quantity })),
      acceptedAt: event.data.acceptedAt,
      eventId: event.id,
      appliedAt: new Date(now).toISOString(),
    };
    return conditionalWrite(
      this.options.dynamo.putItem({ TableName: this.options.table, Item: record, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
  }

  async complete(event: EventKey, now: number): Promise<void> {
    await conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: { pk: markerKey(event) },
        UpdateExpression: 'SET #status = :applied, appliedAt = :at REMOVE leaseUntil',
        // Never creates a marker (one without expiresAt would stay forever).
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':applied': 'APPLIED', ':at': new Date(now).toISOString() },
      }),
    );
  }
}
