import { Type, type Static } from 'typebox';
import { conditionalWrite, isConditionFailure, itemParser, type DynamoDb, type Item } from '../../adapters/dynamodb.ts';
import type { StoredPart } from '../../adapters/s3-parts.ts';
import { DocumentMetadata } from '../schemas.ts';

/**
 * OPEN: takes bytes. COMPLETING: every byte is stored and hashed, the
 * document not committed yet (any request finishes it). COMPLETED: the
 * document is committed. FAILED: it never will be (a digest that did not
 * match, an id taken). CANCELLED, EXPIRED: its bytes are gone or going.
 */
export type UploadState = 'OPEN' | 'COMPLETING' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'EXPIRED';

/** Bytes as the DynamoDB client hands them over. */
const Bytes = Type.Unsafe<Uint8Array>(Type.Refine(Type.Unknown(), (value) => value instanceof Uint8Array));

/** The small object holding the bytes after the last part. */
const Tail = Type.Object({ key: Type.String(), size: Type.Integer({ minimum: 1 }), crc32: Type.String() });
export type Tail = Static<typeof Tail>;

/** [number, size, ETag, CRC32]: compact, since an upload of 5 GiB has a thousand. */
const PartEntry = Type.Tuple([Type.Integer({ minimum: 1, maximum: 10_000 }), Type.Integer({ minimum: 1 }), Type.String(), Type.String()]);

/** The item of an upload in the documents table, as written; a read one is checked against it. */
const UploadItem = Type.Object({
  pk: Type.String(),
  kind: Type.Literal('upload'),
  tenant: Type.String(),
  uploadId: Type.String(),
  documentId: Type.String(),
  region: Type.String(),
  route: Type.Union([Type.Literal('POST'), Type.Literal('PUT')]),
  protocol: Type.Union([Type.Literal('tus'), Type.Literal('ietf')]),
  contentType: Type.String(),
  metadata: Type.Optional(Type.String()),
  length: Type.Optional(Type.Integer({ minimum: 1 })),
  reprSha256: Type.Optional(Bytes),
  retainUntil: Type.Optional(Type.String()),
  state: Type.Union([
    Type.Literal('OPEN'),
    Type.Literal('COMPLETING'),
    Type.Literal('COMPLETED'),
    Type.Literal('FAILED'),
    Type.Literal('CANCELLED'),
    Type.Literal('EXPIRED'),
  ]),
  offset: Type.Integer({ minimum: 0 }),
  s3Key: Type.String(),
  s3UploadId: Type.String(),
  parts: Type.Array(PartEntry),
  nextPart: Type.Integer({ minimum: 1 }),
  tail: Type.Optional(Tail),
  hashFormat: Type.String(),
  hashState: Bytes,
  owner: Type.Optional(Type.String()),
  createdAt: Type.String(),
  expiresAt: Type.Integer(),
  deleteAt: Type.Integer(),
  uploadShard: Type.Optional(Type.String()),
  checksum: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
  result: Type.Optional(Type.Object({ statusCode: Type.Union([Type.Literal(200), Type.Literal(201)]), metadata: DocumentMetadata })),
  failure: Type.Optional(Type.String()),
});
type UploadItem = Static<typeof UploadItem>;
/** Compiled: an item holds a thousand parts at most, each checked on every read (70 times faster than Value.Check). */
const parseUploadItem = itemParser('upload', UploadItem);

/** An upload as the service sees it. */
export type Upload = {
  tenant: string;
  uploadId: string;
  documentId: string;
  /** Where its bytes and its item live. */
  region: string;
  /** PUT: the client chose the id, and an identical document there is a 200; POST: a new id. */
  route: 'POST' | 'PUT';
  protocol: 'tus' | 'ietf';
  contentType: string;
  /** Upload-Metadata as sent (tus answers it back on HEAD). */
  metadata?: string;
  /** Upload-Length, once known. */
  length?: number;
  /** The SHA-256 a Repr-Digest declared at creation. */
  reprSha256?: Buffer;
  /** The Retain-Until asked at creation (ISO-8601), committed with the document. */
  retainUntil?: string;
  state: UploadState;
  /** Bytes stored: the parts' and the tail's. */
  offset: number;
  s3Key: string;
  s3UploadId: string;
  parts: StoredPart[];
  /** The part number the next part gets. */
  nextPart: number;
  tail?: Tail;
  /** The SHA-256 of the first `offset` bytes, as a state to continue from (UploadHash). */
  hashFormat: string;
  hashState: Buffer;
  /** The request appending to it now, if any. */
  owner?: string;
  createdAt: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  checksum?: string;
  result?: { statusCode: 200 | 201; metadata: DocumentMetadata };
  failure?: string;
};

/** What one append stored, recorded in one conditional write. */
export type Progress = {
  offset: number;
  hashState: Uint8Array;
  parts: StoredPart[];
  nextPart: number;
  /** The new tail; null: none any more; undefined: unchanged. */
  tail?: Tail | null;
  /** The request lets go of the upload with this write. */
  release?: boolean;
};

export const UPLOADS_INDEX = 'uploads';
/** Uploads that may still hold bytes in S3 are spread over a few index partitions. */
export const UPLOAD_SHARDS = ['u0', 'u1', 'u2', 'u3'] as const;
/** How long the item of an upload outlives its expiry, so that a late client gets 410 rather than 404. */
const LINGER_SECONDS = 24 * 3600;
/** Part numbers a request that takes over from a live one leaves unused: what the other may still be sending. */
export const TAKEOVER_PART_GAP = 32;

export function uploadPk(tenant: string, uploadId: string): string {
  return `${tenant}#upload#${uploadId}`;
}

function shardOf(uploadId: string): string {
  let sum = 0;
  for (let i = 0; i < uploadId.length; i++) sum += uploadId.charCodeAt(i);
  return UPLOAD_SHARDS[sum % UPLOAD_SHARDS.length]!;
}

const partEntry = (part: StoredPart) => [part.number, part.size, part.etag, part.crc32];

function uploadOf(item: Item): Upload {
  const { pk: _pk, kind: _kind, deleteAt: _deleteAt, uploadShard: _shard, parts, reprSha256, hashState, ...rest } = parseUploadItem(item);
  return {
    ...rest,
    parts: parts.map(([number, size, etag, crc32]) => ({ number, size, etag, crc32 })),
    hashState: Buffer.from(hashState),
    ...(reprSha256 ? { reprSha256: Buffer.from(reprSha256) } : {}),
  };
}

export type UploadRecordsOptions = { dynamo: DynamoDb; table: string; now?: () => number };

/**
 * Resumable uploads in the documents table, one item each, next to the
 * documents (their keys hold `#upload#`, which no document key can). Every
 * change is one conditional write: a request appends only while it owns the
 * upload and the offset is the one it started from, so two requests can
 * never both record bytes at one offset. Uploads that may hold bytes in S3
 * carry `uploadShard`, which the sparse `uploads` index lists by expiry for
 * the content sweeper.
 */
export class UploadRecords {
  private readonly options: UploadRecordsOptions;
  private readonly now: () => number;

  constructor(options: UploadRecordsOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  private key(tenant: string, uploadId: string) {
    return { pk: uploadPk(tenant, uploadId) };
  }

  async create(upload: Upload): Promise<void> {
    const { parts, reprSha256, ...rest } = upload;
    const item: UploadItem = {
      ...rest,
      ...(reprSha256 ? { reprSha256 } : {}),
      pk: uploadPk(upload.tenant, upload.uploadId),
      kind: 'upload',
      parts: parts.map(partEntry) as UploadItem['parts'],
      deleteAt: Math.ceil(upload.expiresAt / 1000) + LINGER_SECONDS,
      uploadShard: shardOf(upload.uploadId),
    };
    await this.options.dynamo.putItem({ TableName: this.options.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' });
  }

  async get(tenant: string, uploadId: string): Promise<Upload | undefined> {
    const { Item } = await this.options.dynamo.getItem({ TableName: this.options.table, Key: this.key(tenant, uploadId), ConsistentRead: true });
    return Item ? uploadOf(Item) : undefined;
  }

  /**
   * Makes `owner` the one request appending to an open upload at `offset`.
   * One that another request owns is taken over (that one finds out at its
   * next write and stops), and its next parts are numbered past what the
   * other may still be sending. Undefined when the upload is not open at
   * that offset (the caller reads it again to say why).
   */
  async claim(tenant: string, uploadId: string, offset: number, owner: string): Promise<Upload | undefined> {
    const now = this.now();
    for (const takeover of [false, true]) {
      try {
        const { Attributes } = await this.options.dynamo.updateItem({
          TableName: this.options.table,
          Key: this.key(tenant, uploadId),
          UpdateExpression: takeover ? 'SET #owner = :owner, nextPart = nextPart + :gap' : 'SET #owner = :owner',
          ConditionExpression: `#state = :open AND #offset = :offset AND expiresAt > :now AND ${takeover ? 'attribute_exists(#owner)' : 'attribute_not_exists(#owner)'}`,
          ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state', '#offset': 'offset' },
          ExpressionAttributeValues: { ':owner': owner, ':open': 'OPEN', ':offset': offset, ':now': now, ...(takeover ? { ':gap': TAKEOVER_PART_GAP } : {}) },
          ReturnValues: 'ALL_NEW',
        });
        if (Attributes) return uploadOf(Attributes);
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    }
    return undefined;
  }

  /**
   * Records what an append stored, while `owner` still owns the upload;
   * false when another request took it over (nothing is written).
   */
  async record(tenant: string, uploadId: string, owner: string, progress: Progress, completing?: { checksum: string }): Promise<boolean> {
    const set = ['#offset = :offset', 'hashState = :hash', 'nextPart = :nextPart', 'parts = list_append(parts, :parts)'];
    const remove: string[] = [];
    const values: Item = {
      ':offset': progress.offset,
      ':hash': progress.hashState,
      ':nextPart': progress.nextPart,
      ':parts': progress.parts.map(partEntry),
      ':owner': owner,
      ':open': 'OPEN',
    };
    if (progress.tail) {
      set.push('tail = :tail');
      values[':tail'] = progress.tail;
    } else if (progress.tail === null) remove.push('tail');
    if (progress.release || completing) remove.push('#owner');
    if (completing) {
      set.push('#state = :completing', 'checksum = :checksum');
      values[':completing'] = 'COMPLETING';
      values[':checksum'] = completing.checksum;
    }
    return conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: this.key(tenant, uploadId),
        UpdateExpression: `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`,
        ConditionExpression: '#owner = :owner AND #state = :open',
        ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state', '#offset': 'offset' },
        ExpressionAttributeValues: values,
      }),
    );
  }

  /** Whether `owner` still owns the upload (a request asks now and then while its body arrives). */
  async stillOwns(tenant: string, uploadId: string, owner: string): Promise<boolean> {
    const { Item } = await this.options.dynamo.getItem({
      TableName: this.options.table,
      Key: this.key(tenant, uploadId),
      ConsistentRead: true,
      ProjectionExpression: '#owner, #state',
      ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state' },
    });
    return Item?.owner === owner && Item.state === 'OPEN';
  }

  /** Lets go of an upload without recording anything. */
  async release(tenant: string, uploadId: string, owner: string): Promise<void> {
    await conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: this.key(tenant, uploadId),
        UpdateExpression: 'REMOVE #owner',
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': owner },
      }),
    );
  }

  /** Sets the length of an upload created without one (tus creation-defer-length). */
  async setLength(tenant: string, uploadId: string, owner: string, length: number): Promise<boolean> {
    return conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: this.key(tenant, uploadId),
        UpdateExpression: 'SET #length = :length',
        ConditionExpression: '#owner = :owner AND #state = :open AND (attribute_not_exists(#length) OR #length = :length)',
        ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state', '#length': 'length' },
        ExpressionAttributeValues: { ':owner': owner, ':open': 'OPEN', ':length': length },
      }),
    );
  }

  /** COMPLETING → COMPLETED: the document is committed; nothing of the upload is left in S3. */
  async completed(tenant: string, uploadId: string, result: NonNullable<Upload['result']>): Promise<void> {
    await conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: this.key(tenant, uploadId),
        UpdateExpression: 'SET #state = :completed, #result = :result REMOVE uploadShard, #owner, tail',
        ConditionExpression: '#state = :completing',
        ExpressionAttributeNames: { '#state': 'state', '#result': 'result', '#owner': 'owner' },
        ExpressionAttributeValues: { ':completed': 'COMPLETED', ':completing': 'COMPLETING', ':result': result },
      }),
    );
  }

  /**
   * Ends an upload that will never commit: FAILED (with the code of why),
   * CANCELLED or EXPIRED, from any state but COMPLETED. It keeps its shard,
   * so that the content sweeper removes what it left in S3 if the caller
   * cannot; `expiresAt` moves to now, so that the worker finds it at its
   * next sweep. False when it was COMPLETED (or is gone).
   */
  async end(tenant: string, uploadId: string, state: 'FAILED' | 'CANCELLED' | 'EXPIRED', failure?: string): Promise<boolean> {
    const now = this.now();
    return conditionalWrite(
      this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: this.key(tenant, uploadId),
        UpdateExpression: `SET #state = :state, expiresAt = :now${failure ? ', failure = :failure' : ''} REMOVE #owner`,
        ConditionExpression: 'attribute_exists(pk) AND #state <> :completed',
        ExpressionAttributeNames: { '#state': 'state', '#owner': 'owner' },
        ExpressionAttributeValues: { ':state': state, ':now': now, ':completed': 'COMPLETED', ...(failure ? { ':failure': failure } : {}) },
      }),
    );
  }

  /** Its bytes are gone from S3: the index no longer lists it. */
  async cleaned(tenant: string, uploadId: string): Promise<void> {
    await this.options.dynamo.updateItem({
      TableName: this.options.table,
      Key: this.key(tenant, uploadId),
      UpdateExpression: 'REMOVE uploadShard',
      ConditionExpression: 'attribute_exists(pk)',
    }).catch((error: unknown) => {
      if (!isConditionFailure(error)) throw error;
    });
  }

  /** Uploads the index lists as past their expiry: those whose bytes the content sweeper removes. */
  async *due(now: number, abortSignal?: AbortSignal): AsyncGenerator<{ tenant: string; uploadId: string }> {
    for (const shard of UPLOAD_SHARDS) {
      let start: Item | undefined;
      do {
        const page = await this.options.dynamo.query(
          {
            TableName: this.options.table,
            IndexName: UPLOADS_INDEX,
            KeyConditionExpression: 'uploadShard = :shard AND expiresAt < :now',
            ExpressionAttributeValues: { ':shard': shard, ':now': now },
            ...(start ? { ExclusiveStartKey: start } : {}),
          },
          { abortSignal },
        );
        for (const item of page.Items) {
          const [tenant, kind, uploadId] = String(item.pk).split('#');
          if (tenant && kind === 'upload' && uploadId) yield { tenant, uploadId };
        }
        start = page.LastEvaluatedKey;
      } while (start);
    }
  }
}
