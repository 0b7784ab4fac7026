import { randomUUID } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { conditionalWrite, itemParser, type DynamoDb } from '../adapters/dynamodb.ts';
import { pendingEvent, type OutboxStore } from '../outbox/outbox-store.ts';
import { documentOutbox, type DocumentEvent } from './document-events.ts';
import type { TraceCarrier } from '../telemetry/message-spans.ts';
import type { DocumentMetadata } from './schemas.ts';
import { comparableMediaType } from './media-type.ts';

/** Where a document's bytes are: in its item, or in an S3 object the item names. */
export type ContentPlace = { content: Buffer } | { s3Key: string };

/** A committed document as the table holds it. */
/** writer: the create that committed inline content (see create). */
export type DocumentRecord = { metadata: DocumentMetadata } & Partial<{ content: Buffer; s3Key: string; writer: string }>;

export type Lookup = { state: 'active'; record: DocumentRecord } | { state: 'deleted'; s3Key?: string; deletedAt?: string } | { state: 'absent' };

export type CreateResult =
  | { outcome: 'created'; metadata: DocumentMetadata }
  | { outcome: 'identical'; metadata: DocumentMetadata }
  | { outcome: 'conflict'; metadata: DocumentMetadata }
  | { outcome: 'deleted' };

/**
 * `deletedAt`: when the tombstone was committed (ISO-8601), known for every
 * tombstone this service wrote. `retained` and `held`: the document stays,
 * as its retention or its legal hold says.
 */
export type DeleteResult =
  | { outcome: 'deleted' | 'already-deleted'; s3Key?: string; deletedAt?: string }
  | { outcome: 'absent' }
  | { outcome: 'retained'; retainUntil: string }
  | { outcome: 'held' };

const Bytes = Type.Unsafe<Uint8Array>(Type.Refine(Type.Unknown(), (value) => value instanceof Uint8Array));

/** A document's item as read; checked at the boundary (the table may hold what an older version wrote). */
const DocumentItem = Type.Object({
  pk: Type.String(),
  id: Type.String(),
  status: Type.Union([Type.Literal('ACTIVE'), Type.Literal('DELETED')]),
  contentType: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  checksum: Type.String(),
  createdAt: Type.String(),
  retainUntil: Type.Optional(Type.String()),
  legalHold: Type.Optional(Type.Literal('ON')),
  content: Type.Optional(Bytes),
  s3Key: Type.Optional(Type.String()),
  writer: Type.Optional(Type.String()),
  deletedAt: Type.Optional(Type.String()),
});
type DocumentItem = Static<typeof DocumentItem>;
const parseItem = itemParser('document', DocumentItem);
/** What the `tombstones` index gives of a tombstone. */
const parseTombstone = itemParser('tombstone', Type.Object({ pk: Type.String(), deleteAt: Type.Integer() }));

export const LISTING_INDEX = 'listing';

const METADATA_ATTRIBUTES = ['pk', 'id', 'status', 'contentType', 'size', 'checksum', 'createdAt', 'retainUntil', 'legalHold'];
/** What a listing reads of each item (status and size are reserved words: every name goes through a placeholder). */
const METADATA_PROJECTION = {
  ProjectionExpression: METADATA_ATTRIBUTES.map((_, i) => `#m${i}`).join(', '),
  ExpressionAttributeNames: Object.fromEntries(METADATA_ATTRIBUTES.map((name, i) => [`#m${i}`, name])),
};

/** A position in a tenant's listing: the last item of a page, as the index keys it. */
export type ListingPosition = { pk: string; listSk: string };

/** When a create or delete made its event pending, and the trace context of its request. */
export type EventOrigin = { now: number; traceContext?: TraceCarrier };

export const TOMBSTONES_INDEX = 'tombstones';
/** Tombstones are spread over a few index partitions so that no single one is hot. */
export const TOMBSTONE_SHARDS = ['0', '1', '2', '3'] as const;

/**
 * The item of the lifecycle worker's lease, one per region: the table is
 * global, and each region sweeps its own homes (content-sweeper.ts), so a
 * lease replicated from another region must not stop this one's sweep. No
 * document key has this shape (they hold a '#').
 */
const sweepLeaseKey = (region: string) => `__lifecycle__:${region}`;

/** `region`: the region of the table, whose relay publishes the events written to it. */
export type DocumentStoreOptions = { dynamo: DynamoDb; table: string; tombstoneSeconds: number; region: string };

export function metadataOf(item: DocumentItem): DocumentMetadata {
  return {
    id: item.id,
    status: 'ACTIVE',
    contentType: item.contentType,
    size: item.size,
    checksum: item.checksum,
    createdAt: item.createdAt,
    ...(item.retainUntil ? { retainUntil: item.retainUntil } : {}),
    legalHold: item.legalHold ?? 'OFF',
  };
}

/** The key of the item that holds a deleted document's event until it is published. */
export function deletionEventKey(tenant: string, id: string): string {
  return `${tenant}#${id}#deleted`;
}

function recordOf(item: DocumentItem): DocumentRecord {
  const record: DocumentRecord = { metadata: metadataOf(item) };
  if (item.content) record.content = Buffer.from(item.content);
  if (item.s3Key) record.s3Key = item.s3Key;
  if (item.writer) record.writer = item.writer;
  return record;
}

function lookupOf(item: DocumentItem): Lookup {
  if (item.status === 'DELETED') {
    return { state: 'deleted', ...(item.s3Key ? { s3Key: item.s3Key } : {}), ...(item.deletedAt ? { deletedAt: item.deletedAt } : {}) };
  }
  return { state: 'active', record: recordOf(item) };
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
  /** The document events still to publish, on the items of this table (this region's). */
  readonly outbox: OutboxStore<DocumentEvent>;

  constructor(options: DocumentStoreOptions) {
    this.options = options;
    this.outbox = documentOutbox(options.dynamo, options.table, options.region);
  }

  /** An event of this table is on the topic: out of the outbox. */
  async eventPublished(key: string, now: number): Promise<void> {
    await this.outbox.markPublished(key, now);
  }

  private pk(tenant: string, id: string) {
    return `${tenant}#${id}`;
  }

  /**
   * The commit of a create: the item, in the tenant's listing (`listPk`,
   * `listSk`: the sparse `listing` index, newest first) and with its
   * document.created event pending in the outbox, in one conditional put.
   */
  async create(tenant: string, metadata: DocumentMetadata, place: ContentPlace, origin?: EventOrigin): Promise<CreateResult> {
    const { legalHold: _hold, ...fields } = metadata;
    // Inline content has no object of its own to tell this create's commit from
    // another's: a token does (two creates of one id in one millisecond have
    // the same createdAt).
    const writer = 's3Key' in place ? undefined : randomUUID();
    const item = {
      ...fields,
      status: 'ACTIVE',
      pk: this.pk(tenant, metadata.id),
      ...place,
      ...(writer ? { writer } : {}),
      tenant,
      listPk: tenant,
      listSk: `${metadata.createdAt}#${metadata.id}`,
      ...(origin ? { ...pendingEvent(metadata.id, origin.now, origin.traceContext), eventRegion: this.options.region } : {}),
    };
    const put = this.options.dynamo.putItem({ TableName: this.options.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' });
    if (await conditionalWrite(put)) return { outcome: 'created', metadata };
    const existing = await this.lookup(tenant, metadata.id);
    if (existing.state === 'absent') throw new Error(`document ${metadata.id} vanished after a failed conditional put`);
    if (existing.state === 'deleted') return { outcome: 'deleted' };
    const stored = existing.record;
    // Our own put, committed by an attempt whose answer was lost and retried by the client:
    // it names our staged object (or, inline, our token). Reporting it as
    // someone else's would have the caller remove the object the document now points to.
    const ours = 's3Key' in place ? stored.s3Key === place.s3Key : stored.writer === writer;
    const same = stored.metadata.checksum === metadata.checksum && comparableMediaType(stored.metadata.contentType) === comparableMediaType(metadata.contentType);
    if (same && ours) return { outcome: 'created', metadata: stored.metadata };
    return { outcome: same ? 'identical' : 'conflict', metadata: stored.metadata };
  }

  async lookup(tenant: string, id: string): Promise<Lookup> {
    const { Item } = await this.options.dynamo.getItem({ TableName: this.options.table, Key: { pk: this.pk(tenant, id) }, ConsistentRead: true });
    if (!Item) return { state: 'absent' };
    return lookupOf(parseItem(Item));
  }

  /** Its retention and legal hold, as read now (they are not cached: a hold changes). */
  private static stays(item: DocumentItem, nowIso: string): DeleteResult | undefined {
    if (item.legalHold === 'ON') return { outcome: 'held' };
    if (item.retainUntil && item.retainUntil > nowIso) return { outcome: 'retained', retainUntil: item.retainUntil };
    return undefined;
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
            'SET #status = :deleted, deleteAt = :deleteAt, deletedAt = :deletedAt, tombstoneShard = :shard REMOVE content, listPk, listSk',
          // Neither retained nor held: both are checked by the write itself, so that a hold placed
          // at the same moment either comes first (and the delete is refused) or finds a tombstone.
          ConditionExpression:
            'attribute_exists(pk) AND #status = :active AND (attribute_not_exists(retainUntil) OR retainUntil <= :deletedAt) AND attribute_not_exists(legalHold)',
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
          s3Key = typeof Attributes?.s3Key === 'string' ? Attributes.s3Key : undefined;
        }),
    );
    if (tombstoned) return { outcome: 'deleted', deletedAt, ...(s3Key ? { s3Key } : {}) };
    const { Item } = await this.options.dynamo.getItem({ TableName: this.options.table, Key: { pk: this.pk(tenant, id) }, ConsistentRead: true });
    if (!Item) return { outcome: 'absent' };
    const item = parseItem(Item);
    if (item.status === 'ACTIVE') {
      // Active and neither retained nor held: absent when the condition was checked (a create of
      // this id committed after the delete found nothing). The delete came first: it deleted
      // nothing (404), and the document created after it stays.
      return DocumentStore.stays(item, deletedAt) ?? { outcome: 'absent' };
    }
    // A repeated delete finishes a content removal (and an announcement) that may have failed before.
    return { outcome: 'already-deleted', ...(item.s3Key ? { s3Key: item.s3Key } : {}), ...(item.deletedAt ? { deletedAt: item.deletedAt } : {}) };
  }

  /**
   * The document.deleted event of a delete, pending in the outbox on an item
   * of its own (the tombstone may still carry the document.created event),
   * written before the delete answers: once, whatever the retries (a repeated
   * delete finds it there), gone with the tombstone's TTL.
   */
  async recordDeletion(tenant: string, id: string, deletedAt: string, origin: EventOrigin): Promise<void> {
    await conditionalWrite(
      this.options.dynamo.putItem({
        TableName: this.options.table,
        Item: {
          pk: deletionEventKey(tenant, id),
          kind: 'event',
          type: 'document.deleted',
          tenant,
          id,
          deletedAt,
          deleteAt: Math.floor(origin.now / 1000) + this.options.tombstoneSeconds,
          ...pendingEvent(id, origin.now, origin.traceContext),
          eventRegion: this.options.region,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  /**
   * Places (ON) or lifts (OFF) a document's legal hold, conditional on the
   * document being active: a delete racing it either comes first (and this
   * finds a tombstone: undefined) or finds the hold. The metadata as it now is.
   */
  async setLegalHold(tenant: string, id: string, on: boolean): Promise<DocumentRecord | undefined> {
    let record: DocumentRecord | undefined;
    await conditionalWrite(
      this.options.dynamo
        .updateItem({
          TableName: this.options.table,
          Key: { pk: this.pk(tenant, id) },
          UpdateExpression: on ? 'SET legalHold = :on' : 'REMOVE legalHold',
          ConditionExpression: 'attribute_exists(pk) AND #status = :active',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':active': 'ACTIVE', ...(on ? { ':on': 'ON' } : {}) },
          ReturnValues: 'ALL_NEW',
        })
        .then(({ Attributes }) => {
          if (Attributes) record = recordOf(parseItem(Attributes));
        }),
    );
    return record;
  }

  /**
   * A page of the tenant's active documents, newest first, after `after`.
   * The index is eventually consistent; the page's items are read again from
   * the table (consistently), so that a document whose DELETE answered is
   * never listed. Fewer than `limit` items with a `next`: some the index
   * still listed were deleted.
   */
  async list(tenant: string, limit: number, after?: ListingPosition): Promise<{ items: DocumentMetadata[]; next?: ListingPosition }> {
    const page = await this.options.dynamo.query({
      TableName: this.options.table,
      IndexName: LISTING_INDEX,
      KeyConditionExpression: 'listPk = :tenant',
      ExpressionAttributeValues: { ':tenant': tenant },
      ScanIndexForward: false,
      Limit: limit,
      ...(after ? { ExclusiveStartKey: { pk: after.pk, listPk: tenant, listSk: after.listSk } } : {}),
    });
    const keys = page.Items.flatMap((key) => (typeof key.pk === 'string' ? [{ pk: key.pk }] : []));
    // The metadata only: a page of inline documents would otherwise carry all their content.
    const read = { TableName: this.options.table, Keys: keys, ConsistentRead: true, ...METADATA_PROJECTION };
    const { Items } = keys.length > 0 ? await this.options.dynamo.batchGetItem(read) : { Items: [] };
    const active = new Map(Items.map(parseItem).filter((item) => item.status === 'ACTIVE').map((item) => [item.pk, item]));
    const items = keys.flatMap(({ pk }) => {
      const item = active.get(pk);
      return item ? [metadataOf(item)] : [];
    });
    const last = page.LastEvaluatedKey;
    const next = last && typeof last.pk === 'string' && typeof last.listSk === 'string' ? { pk: last.pk, listSk: last.listSk } : undefined;
    return { items, ...(next ? { next } : {}) };
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
        return Items[0] ? parseTombstone(Items[0]).deleteAt : undefined;
      }),
    );
    const found = oldest.filter((deleteAt) => deleteAt !== undefined);
    return found.length > 0 ? Math.min(...found) : undefined;
  }

  /**
   * Takes (or renews) the region's lease of the lifecycle sweep: replicas of
   * the worker sweep one at a time, so an orphan is removed and counted once.
   */
  async claimSweep(owner: string, now: number, leaseMs: number): Promise<boolean> {
    return conditionalWrite(
      this.options.dynamo.putItem({
        TableName: this.options.table,
        Item: { pk: sweepLeaseKey(this.options.region), owner, leaseUntil: now + leaseMs },
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
        Key: { pk: sweepLeaseKey(this.options.region) },
        UpdateExpression: 'SET leaseUntil = :expired',
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': owner, ':expired': 0 },
      }),
    );
  }
}
