import { conditionalWrite, type DynamoDb } from '../adapters/dynamodb.ts';
import type { DocumentMetadata } from './schemas.ts';

/** Where a document's bytes are: in its item, or in an S3 object the item names. */
export type ContentPlace = { content: Buffer } | { s3Key: string };

/** A committed document as the table holds it. */
export type DocumentRecord = { metadata: DocumentMetadata } & Partial<{ content: Buffer; s3Key: string }>;

export type Lookup = { state: 'active'; record: DocumentRecord } | { state: 'deleted'; s3Key?: string; deletedAt?: string } | { state: 'absent' };

export type CreateResult =
  | { outcome: 'created'; metadata: DocumentMetadata }
  | { outcome: 'identical'; metadata: DocumentMetadata }
  | { outcome: 'conflict'; metadata: DocumentMetadata }
  | { outcome: 'deleted' };

/** `deletedAt`: when the tombstone was committed (ISO-8601), known for every tombstone this service wrote. */
export type DeleteResult = { outcome: 'deleted' | 'already-deleted'; s3Key?: string; deletedAt?: string } | { outcome: 'absent' };

type DocumentItem = Omit<DocumentMetadata, 'status'> & {
  pk: string;
  status: 'ACTIVE' | 'DELETED';
  content?: Uint8Array;
  s3Key?: string;
  deleteAt?: number;
  deletedAt?: string;
  tombstoneShard?: string;
};

export const TOMBSTONES_INDEX = 'tombstones';
/** Tombstones are spread over a few index partitions so that no single one is hot. */
export const TOMBSTONE_SHARDS = ['0', '1', '2', '3'] as const;

/** The item of the lifecycle worker's lease; no document key has this shape (they hold a '#'). */
const SWEEP_LEASE_KEY = '__lifecycle__';

export type DocumentStoreOptions = { dynamo: DynamoDb; table: string; tombstoneSeconds: number };

function metadataOf(item: DocumentItem): DocumentMetadata {
  return {
    id: item.id,
    status: 'ACTIVE',
    contentType: item.contentType,
    size: item.size,
    checksum: item.checksum,
    createdAt: item.createdAt,
  };
}

function shardOf(id: string): string {
  let sum = 0;
  for (let i = 0; i < id.length; i++) sum += id.charCodeAt(i);
  return TOMBSTONE_SHARDS[sum % TOMBSTONE_SHARDS.length]!;
}

/**
 * Document metadata in DynamoDB, one item per document. The item is the
 * commit point of a create: content (inline, or an S3 object staged before)
 * is the document's only once a conditional put of its item succeeded, so
 * two writers of one id can never both win. A delete turns the item into a
 * tombstone, which is found again through the sparse `tombstones` index.
 */
export class DocumentStore {
  private readonly options: DocumentStoreOptions;

  constructor(options: DocumentStoreOptions) {
    this.options = options;
  }

  private pk(tenant: string, id: string) {
    return `${tenant}#${id}`;
  }

  async create(tenant: string, metadata: DocumentMetadata, place: ContentPlace): Promise<CreateResult> {
    const item: DocumentItem = { ...metadata, status: 'ACTIVE', pk: this.pk(tenant, metadata.id), ...place };
    const put = this.options.dynamo.putItem({ TableName: this.options.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' });
    if (await conditionalWrite(put)) return { outcome: 'created', metadata };
    const existing = await this.lookup(tenant, metadata.id);
    if (existing.state === 'absent') throw new Error(`document ${metadata.id} vanished after a failed conditional put`);
    if (existing.state === 'deleted') return { outcome: 'deleted' };
    const stored = existing.record;
    // Our own put, committed by an attempt whose answer was lost and retried by the client:
    // it names our staged object (or, inline, was made at our instant). Reporting it as
    // someone else's would have the caller remove the object the document now points to.
    const ours = 's3Key' in place ? stored.s3Key === place.s3Key : stored.metadata.createdAt === metadata.createdAt;
    const same = stored.metadata.checksum === metadata.checksum && stored.metadata.contentType === metadata.contentType;
    if (same && ours) return { outcome: 'created', metadata: stored.metadata };
    return { outcome: same ? 'identical' : 'conflict', metadata: stored.metadata };
  }

  async lookup(tenant: string, id: string): Promise<Lookup> {
    const { Item } = await this.options.dynamo.getItem({ TableName: this.options.table, Key: { pk: this.pk(tenant, id) }, ConsistentRead: true });
    const item = Item as DocumentItem | undefined;
    if (!item) return { state: 'absent' };
    if (item.status === 'DELETED') {
      return { state: 'deleted', ...(item.s3Key ? { s3Key: item.s3Key } : {}), ...(item.deletedAt ? { deletedAt: item.deletedAt } : {}) };
    }
    const record: DocumentRecord = { metadata: metadataOf(item) };
    if (item.content) record.content = Buffer.from(item.content);
    if (item.s3Key) record.s3Key = item.s3Key;
    return { state: 'active', record };
  }

  /** Logical delete: the item becomes a tombstone with a TTL; its S3 object (if any) is the caller's to remove. */
  async delete(tenant: string, id: string, now = Date.now()): Promise<DeleteResult> {
    const deletedAt = new Date(now).toISOString();
    let s3Key: string | undefined;
    const tombstoned = await conditionalWrite(
      this.options.dynamo
        .updateItem({
          TableName: this.options.table,
          Key: { pk: this.pk(tenant, id) },
          UpdateExpression:
            'SET #status = :deleted, deleteAt = :deleteAt, deletedAt = :deletedAt, tombstoneShard = :shard REMOVE content',
          ConditionExpression: 'attribute_exists(pk) AND #status = :active',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':deleted': 'DELETED',
            ':active': 'ACTIVE',
            ':deleteAt': Math.floor(now / 1000) + this.options.tombstoneSeconds,
            ':deletedAt': deletedAt,
            ':shard': shardOf(id),
          },
          ReturnValues: 'ALL_NEW',
        })
        .then(({ Attributes }) => {
          s3Key = (Attributes as DocumentItem | undefined)?.s3Key;
        }),
    );
    if (tombstoned) return { outcome: 'deleted', deletedAt, ...(s3Key ? { s3Key } : {}) };
    const existing = await this.lookup(tenant, id);
    // Active now, so absent when the condition was checked: a create of this id committed after
    // the delete found nothing. The delete came first: it deleted nothing (404), and the document
    // created after it stays.
    if (existing.state === 'absent' || existing.state === 'active') return { outcome: 'absent' };
    // A repeated delete finishes a content removal (and an announcement) that may have failed before.
    const { s3Key: left, deletedAt: committedAt } = existing;
    return { outcome: 'already-deleted', ...(left ? { s3Key: left } : {}), ...(committedAt ? { deletedAt: committedAt } : {}) };
  }

  /** The earliest `deleteAt` of any tombstone still in the table (epoch seconds). */
  async oldestTombstoneDeleteAt(abortSignal?: AbortSignal): Promise<number | undefined> {
    const oldest = await Promise.all(
      TOMBSTONE_SHARDS.map(async (shard) => {
        const { Items } = await this.options.dynamo.query({
          TableName: this.options.table,
          IndexName: TOMBSTONES_INDEX,
          KeyConditionExpression: 'tombstoneShard = :shard',
          ExpressionAttributeValues: { ':shard': shard },
          ScanIndexForward: true,
          Limit: 1,
        }, { abortSignal });
        return (Items[0] as { deleteAt?: number } | undefined)?.deleteAt;
      }),
    );
    const found = oldest.filter((deleteAt) => deleteAt !== undefined);
    return found.length > 0 ? Math.min(...found) : undefined;
  }

  /**
   * Takes (or renews) the one lease of the lifecycle sweep: replicas of the
   * worker sweep one at a time, so an orphan is removed and counted once.
   */
  async claimSweep(owner: string, now: number, leaseMs: number): Promise<boolean> {
    return conditionalWrite(
      this.options.dynamo.putItem({
        TableName: this.options.table,
        Item: { pk: SWEEP_LEASE_KEY, owner, leaseUntil: now + leaseMs },
        ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :now OR #owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':now': now, ':owner': owner },
      }),
    );
  }

  /** Gives the lease back at once, so that another replica need not wait for it to run out. */
  async releaseSweep(owner: string): Promise<void> {
    await conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: { pk: SWEEP_LEASE_KEY },
        UpdateExpression: 'SET leaseUntil = :expired',
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': owner, ':expired': 0 },
      }),
    );
  }
}
