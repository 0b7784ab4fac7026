import { createHash } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { translateAwsError } from '../adapters/aws-errors.ts';
import { isConditionFailure, type DynamoDb } from '../adapters/dynamodb.ts';
import type { DocumentMetadata } from './schemas.ts';

export type StoredDocument = { metadata: DocumentMetadata; content: Buffer };

type DocumentItem = Omit<DocumentMetadata, 'status'> & {
  pk: string;
  status: 'ACTIVE' | 'DELETED';
  content?: Uint8Array;
  s3Key?: string;
  deleteAt?: number;
  deletedAt?: string;
};

export type CreateResult =
  | { outcome: 'created'; metadata: DocumentMetadata }
  | { outcome: 'identical'; metadata: DocumentMetadata }
  | { outcome: 'conflict' }
  | { outcome: 'deleted' };

export type ReadResult = { state: 'active'; document: StoredDocument } | { state: 'deleted' } | { state: 'absent' };

export type DeleteResult = 'deleted' | 'already-deleted' | 'absent';

export type DocumentStoreOptions = {
  dynamo: DynamoDb;
  s3: S3Client;
  table: string;
  bucket: string;
  inlineMaxBytes: number;
  tombstoneSeconds: number;
  onContentCleanupFailure?: (error: unknown, s3Key: string) => void;
};

export function sha256Hex(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

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

export class ContentIntegrityError extends Error {
  constructor(id: string) {
    super(`content of document ${id} does not match its checksum`);
    this.name = 'ContentIntegrityError';
  }
}

/**
 * Documents in DynamoDB (metadata, and content up to a threshold) and S3
 * (larger content). Every write is a single-item conditional write, so that
 * two writers of one id can never both win.
 */
export class DocumentStore {
  private readonly options: DocumentStoreOptions;

  constructor(options: DocumentStoreOptions) {
    this.options = options;
  }

  private pk(tenant: string, id: string) {
    return `${tenant}#${id}`;
  }

  /**
   * The S3 key names the checksum: a losing writer of an existing id can
   * never overwrite the winner's bytes.
   */
  private s3Key(tenant: string, id: string, checksum: string) {
    return `${tenant}/${id}/${checksum}`;
  }

  async create(tenant: string, metadata: DocumentMetadata, content: Buffer): Promise<CreateResult> {
    const inline = content.length <= this.options.inlineMaxBytes;
    const s3Key = inline ? undefined : this.s3Key(tenant, metadata.id, metadata.checksum);
    if (s3Key) {
      await this.options.s3.send(
        new PutObjectCommand({ Bucket: this.options.bucket, Key: s3Key, Body: content, ContentType: metadata.contentType }),
      );
    }
    const item: DocumentItem = {
      ...metadata,
      status: 'ACTIVE',
      pk: this.pk(tenant, metadata.id),
      ...(inline ? { content } : { s3Key }),
    };
    try {
      await this.options.dynamo.putItem({ TableName: this.options.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' });
      return { outcome: 'created', metadata };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const existing = await this.item(tenant, metadata.id);
    if (!existing) throw new Error(`document ${metadata.id} vanished after a failed conditional put`);
    if (existing.status === 'DELETED') return { outcome: 'deleted' };
    if (existing.checksum === metadata.checksum && existing.contentType === metadata.contentType) {
      return { outcome: 'identical', metadata: metadataOf(existing) };
    }
    if (s3Key && existing.s3Key !== s3Key) this.removeContent(s3Key);
    return { outcome: 'conflict' };
  }

  async read(tenant: string, id: string): Promise<ReadResult> {
    const item = await this.item(tenant, id);
    if (!item) return { state: 'absent' };
    if (item.status === 'DELETED') return { state: 'deleted' };
    const content = item.content ? Buffer.from(item.content) : await this.fetchContent(item.s3Key!);
    // Content removed between the two reads: the document was deleted meanwhile.
    if (!content) return { state: 'deleted' };
    if (sha256Hex(content) !== item.checksum) throw new ContentIntegrityError(id);
    return { state: 'active', document: { metadata: metadataOf(item), content } };
  }

  /** The metadata alone, from the table. */
  async metadata(tenant: string, id: string): Promise<DocumentMetadata | 'deleted' | undefined> {
    const item = await this.item(tenant, id);
    if (!item) return undefined;
    return item.status === 'DELETED' ? 'deleted' : metadataOf(item);
  }

  /** Logical delete: the item becomes a tombstone with a TTL; the content goes after. */
  async delete(tenant: string, id: string, now = Date.now()): Promise<DeleteResult> {
    try {
      const { Attributes } = await this.options.dynamo.updateItem({
        TableName: this.options.table,
        Key: { pk: this.pk(tenant, id) },
        UpdateExpression: 'SET #status = :deleted, deleteAt = :deleteAt, deletedAt = :deletedAt REMOVE content',
        ConditionExpression: 'attribute_exists(pk) AND #status = :active',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':deleted': 'DELETED',
          ':active': 'ACTIVE',
          ':deleteAt': Math.floor(now / 1000) + this.options.tombstoneSeconds,
          ':deletedAt': new Date(now).toISOString(),
        },
        ReturnValues: 'ALL_NEW',
      });
      const s3Key = (Attributes as DocumentItem | undefined)?.s3Key;
      if (s3Key) this.removeContent(s3Key);
      return 'deleted';
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const existing = await this.item(tenant, id);
    if (!existing) return 'absent';
    // A repeated delete finishes a content removal that may have failed before.
    if (existing.s3Key) this.removeContent(existing.s3Key);
    return 'already-deleted';
  }

  private async item(tenant: string, id: string): Promise<DocumentItem | undefined> {
    const { Item } = await this.options.dynamo.getItem({ TableName: this.options.table, Key: { pk: this.pk(tenant, id) }, ConsistentRead: true });
    return Item as DocumentItem | undefined;
  }

  private async fetchContent(s3Key: string): Promise<Buffer | undefined> {
    try {
      const { Body } = await this.options.s3.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: s3Key }));
      return Buffer.from(await Body!.transformToByteArray());
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      // A body cut off mid-way fails after the SDK call returned: translated here.
      throw translateAwsError(error, 'S3 GetObject body');
    }
  }

  private removeContent(s3Key: string): void {
    this.options.s3
      .send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: s3Key }))
      .catch((error: unknown) => this.options.onContentCleanupFailure?.(error, s3Key));
  }
}
