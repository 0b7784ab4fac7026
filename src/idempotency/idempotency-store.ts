import { Type, type Static } from 'typebox';
import { conditionalWrite, itemParser, type DynamoDb } from '../adapters/dynamodb.ts';

const StoredResponse = Type.Object({ statusCode: Type.Integer(), headers: Type.Record(Type.String(), Type.String()), body: Type.Unknown() });
export type StoredResponse = Static<typeof StoredResponse>;

export type IdempotencyClaim =
  | { kind: 'started'; resourceId: string; token: string }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'mismatch' }
  | { kind: 'in-flight' };

const RecordFields = {
  pk: Type.String(),
  fingerprint: Type.String(),
  resourceId: Type.String(),
  token: Type.String(),
  expiresAt: Type.Number(),
};
/** A record as written: in progress under a lock, or completed with its response (and the lock removed). */
const IdempotencyRecord = Type.Union([
  Type.Object({ ...RecordFields, status: Type.Literal('IN_PROGRESS'), lockExpiresAt: Type.Number() }),
  Type.Object({ ...RecordFields, status: Type.Literal('COMPLETED'), response: StoredResponse }),
]);
type IdempotencyRecord = Static<typeof IdempotencyRecord>;
const parseRecord = itemParser('idempotency record', IdempotencyRecord);

export type IdempotencyOptions = {
  dynamo: DynamoDb;
  table: string;
  ttlSeconds: number;
  lockSeconds: number;
  now?: () => number;
};

/**
 * Idempotency records in DynamoDB, one conditional write per decision. The
 * record names the resource id before the work starts, so a request that
 * takes over a crashed one finishes the same resource instead of a new one.
 * Expiry is checked in the conditions: DynamoDB TTL deletes up to 48 h late.
 */
export class IdempotencyStore {
  private readonly options: IdempotencyOptions;
  private readonly now: () => number;

  constructor(options: IdempotencyOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  async claim(pk: string, fingerprint: string, resourceId: string): Promise<IdempotencyClaim> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.now();
      const token = `${now}-${Math.random().toString(36).slice(2)}`;
      const record: IdempotencyRecord = {
        pk,
        fingerprint,
        status: 'IN_PROGRESS',
        resourceId,
        token,
        lockExpiresAt: now + this.options.lockSeconds * 1000,
        expiresAt: Math.floor(now / 1000) + this.options.ttlSeconds,
      };
      const started = await conditionalWrite(
        this.options.dynamo.putItem({
          TableName: this.options.table,
          Item: record,
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
          ExpressionAttributeValues: { ':now': Math.floor(now / 1000) },
        }),
      );
      if (started) return { kind: 'started', resourceId, token };

      const existing = await this.read(pk);
      if (!existing || existing.expiresAt < Math.floor(this.now() / 1000)) continue;
      // Our own put: an attempt the client retried after a timeout had committed.
      if (existing.token === token) return { kind: 'started', resourceId: existing.resourceId, token };
      if (existing.fingerprint !== fingerprint) return { kind: 'mismatch' };
      if (existing.status === 'COMPLETED') return { kind: 'replay', response: existing.response };
      if (existing.lockExpiresAt >= this.now()) return { kind: 'in-flight' };
      const takenOver = await this.takeOver(existing);
      if (takenOver) return { kind: 'started', resourceId: existing.resourceId, token: takenOver };
    }
    return { kind: 'in-flight' };
  }

  /** Claims a record whose owner stopped renewing it (crashed or timed out). */
  private async takeOver(existing: IdempotencyRecord): Promise<string | undefined> {
    const now = this.now();
    const token = `${now}-${Math.random().toString(36).slice(2)}`;
    const taken = await conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: { pk: existing.pk },
        UpdateExpression: 'SET lockExpiresAt = :lock, #token = :token',
        ConditionExpression: '#status = :inProgress AND #token = :seen',
        ExpressionAttributeNames: { '#status': 'status', '#token': 'token' },
        ExpressionAttributeValues: {
          ':lock': now + this.options.lockSeconds * 1000,
          ':token': token,
          ':inProgress': 'IN_PROGRESS',
          ':seen': existing.token,
        },
      }),
    );
    return taken ? token : undefined;
  }

  async complete(pk: string, token: string, response: StoredResponse): Promise<void> {
    // A failed condition: someone took the record over; it finishes the same resource, so its answer is ours.
    await conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: { pk },
        UpdateExpression: 'SET #status = :completed, #response = :response REMOVE lockExpiresAt',
        ConditionExpression: '#token = :token',
        ExpressionAttributeNames: { '#status': 'status', '#response': 'response', '#token': 'token' },
        ExpressionAttributeValues: { ':completed': 'COMPLETED', ':response': response, ':token': token },
      }),
    );
  }

  /**
   * After a failure the lock ends at once, so the client's retry need not wait
   * for it; the record keeps its resource id, because the failed attempt may
   * have committed (a timeout does not say) and the retry must finish that.
   */
  async release(pk: string, token: string): Promise<void> {
    await conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: { pk },
        UpdateExpression: 'SET lockExpiresAt = :expired',
        ConditionExpression: '#token = :token AND #status = :inProgress',
        ExpressionAttributeNames: { '#token': 'token', '#status': 'status' },
        ExpressionAttributeValues: { ':token': token, ':inProgress': 'IN_PROGRESS', ':expired': 0 },
      }),
    );
  }

  /** The resource a live record names, without claiming it. */
  async peek(pk: string): Promise<string | undefined> {
    const existing = await this.read(pk);
    if (!existing || existing.expiresAt < Math.floor(this.now() / 1000)) return undefined;
    return existing.resourceId;
  }

  private async read(pk: string): Promise<IdempotencyRecord | undefined> {
    const { Item } = await this.options.dynamo.getItem({ TableName: this.options.table, Key: { pk }, ConsistentRead: true });
    return Item ? parseRecord(Item) : undefined;
  }
}
