import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DocumentDb } from '../adapters/aws.ts';
import { isConditionFailure } from '../adapters/aws.ts';
import type { OrderAcceptedEvent } from '../orders/schemas.ts';

/**
 * The consumer's own table:
 *
 * - `EVENT#<event id>`: the dedup marker, APPLYING (with a lease) then
 *   APPLIED, remembered until `expiresAt` (epoch seconds, checked in the
 *   condition; TTL only cleans up).
 * - `ORDER#<orderId>`: the side effect, a record of the accepted order,
 *   written with attribute_not_exists so that redoing it is harmless.
 *
 * The marker is claimed first and completed last; a consumer that dies in
 * between leaves an APPLYING marker whose lease runs out with the message's
 * visibility timeout, so the redelivery redoes the (idempotent) side effect
 * instead of skipping it.
 */

export type Claim = 'claimed' | 'applied' | 'busy';

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

export type AppliedOrderStoreOptions = {
  dynamo: DocumentDb;
  table: string;
  /** How long an applied event id is remembered. */
  dedupSeconds: number;
};

export class AppliedOrderStore {
  private readonly options: AppliedOrderStoreOptions;

  constructor(options: AppliedOrderStoreOptions) {
    this.options = options;
  }

  private markerKey(eventId: string) {
    return `EVENT#${eventId}`;
  }

  recordKey(orderId: string) {
    return `ORDER#${orderId}`;
  }

  /** Claims an event id for `leaseMs`; 'applied' when it was already applied, 'busy' while another consumer holds it. */
  async claim(eventId: string, now: number, leaseMs: number): Promise<Claim> {
    const marker: Marker = {
      pk: this.markerKey(eventId),
      status: 'APPLYING',
      leaseUntil: now + leaseMs,
      expiresAt: Math.floor(now / 1000) + this.options.dedupSeconds,
      claimedAt: new Date(now).toISOString(),
    };
    try {
      await this.options.dynamo.send(
        new PutCommand({
          TableName: this.options.table,
          Item: marker,
          ConditionExpression:
            'attribute_not_exists(pk) OR expiresAt < :nowSeconds OR (#status = :applying AND leaseUntil < :now)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':nowSeconds': Math.floor(now / 1000), ':now': now, ':applying': 'APPLYING' },
        }),
      );
      return 'claimed';
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const { Item } = await this.options.dynamo.send(
      new GetCommand({ TableName: this.options.table, Key: { pk: this.markerKey(eventId) }, ConsistentRead: true }),
    );
    return (Item as Marker | undefined)?.status === 'APPLIED' ? 'applied' : 'busy';
  }

  /** The side effect; false when an earlier delivery already did it. */
  async record(event: OrderAcceptedEvent, now: number): Promise<boolean> {
    const record: AppliedOrder & { pk: string } = {
      pk: this.recordKey(event.data.orderId),
      orderId: event.data.orderId,
      tenant: event.tenant,
      customerId: event.data.customerId,
      items: event.data.items.map((line) => ({ sku: line.sku, quantity: line.quantity })),
      acceptedAt: event.data.acceptedAt,
      eventId: event.id,
      appliedAt: new Date(now).toISOString(),
    };
    try {
      await this.options.dynamo.send(
        new PutCommand({ TableName: this.options.table, Item: record, ConditionExpression: 'attribute_not_exists(pk)' }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async complete(eventId: string, now: number): Promise<void> {
    try {
      await this.options.dynamo.send(
        new UpdateCommand({
          TableName: this.options.table,
          Key: { pk: this.markerKey(eventId) },
          UpdateExpression: 'SET #status = :applied, appliedAt = :at REMOVE leaseUntil',
          // Never creates a marker (one without expiresAt would stay forever).
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':applied': 'APPLIED', ':at': new Date(now).toISOString() },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async read(orderId: string): Promise<AppliedOrder | undefined> {
    const { Item } = await this.options.dynamo.send(
      new GetCommand({ TableName: this.options.table, Key: { pk: this.recordKey(orderId) }, ConsistentRead: true }),
    );
    if (!Item) return undefined;
    const { pk: _pk, ...record } = Item as AppliedOrder & { pk: string };
    return record;
  }
}
