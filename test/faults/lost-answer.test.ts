import { describe, expect, it } from 'vitest';
import type { DynamoDb, Item } from '../../src/adapters/dynamodb.ts';
import { DocumentStore } from '../../src/documents/document-store.ts';
import { IdempotencyStore } from '../../src/idempotency/idempotency-store.ts';

// A write whose answer was lost: the conditional put committed, the answer
// never came back (a timeout), and the client's automatic retry of the same
// put is refused by its own condition. Found by the DynamoDB blackhole test
// (dynamodb-blackhole.test.ts), where it turned a first POST /documents with a
// fresh Idempotency-Key into 409 IDEMPOTENCY_KEY_IN_USE, and kept that key
// locked for IDEMPOTENCY_LOCK_SECONDS. Here the same situation, made
// deterministic with a table that loses the answer of the first put.

class ConditionalCheckFailedException extends Error {
  override name = 'ConditionalCheckFailedException';
}

/**
 * A one-table DynamoDB (the store's port) whose first conditional put
 * commits and then "times out"; its retry then fails its condition. Only
 * what the idempotency claim calls is there.
 */
function losingFirstAnswer(): DynamoDb & { items: Map<string, Item> } {
  const items = new Map<string, Item>();
  let puts = 0;
  return {
    items,
    async putItem({ Item }) {
      puts += 1;
      if (puts === 1) items.set(String(Item.pk), Item); // committed...
      // ...and the client retried after its timeout: the retry meets its own item.
      throw new ConditionalCheckFailedException('The conditional request failed');
    },
    async getItem({ Key }) {
      const Item = items.get(String(Key.pk));
      return Item ? { Item } : {};
    },
    async updateItem() {
      throw new Error('not called by a claim');
    },
    async query() {
      throw new Error('not called by a claim');
    },
    async batchGetItem() {
      throw new Error('not called by a claim');
    },
  };
}

describe('a conditional write whose answer was lost, retried by the client', () => {
  it('an idempotency claim recognises its own record: started, not "in flight"', async () => {
    const dynamo = losingFirstAnswer();
    const store = new IdempotencyStore({ dynamo, table: 'keys', ttlSeconds: 3600, lockSeconds: 30 });
    const claim = await store.claim('public#POST /documents#key-1', 'fingerprint', 'doc-1');
    expect(claim).toMatchObject({ kind: 'started', resourceId: 'doc-1' });
    expect(dynamo.items.get('public#POST /documents#key-1')).toMatchObject({ status: 'IN_PROGRESS', token: (claim as { token: string }).token });
  });

  it('another request with the same key still sees it in flight', async () => {
    const dynamo = losingFirstAnswer();
    const store = new IdempotencyStore({ dynamo, table: 'keys', ttlSeconds: 3600, lockSeconds: 30 });
    await store.claim('public#POST /documents#key-2', 'fingerprint', 'doc-2');
    expect(await store.claim('public#POST /documents#key-2', 'fingerprint', 'doc-3')).toEqual({ kind: 'in-flight' });
  });
});

describe('a document put whose answer was lost, retried by the client', () => {
  const metadata = { id: 'doc-1', status: 'ACTIVE' as const, contentType: 'application/pdf', size: 3, checksum: 'c'.repeat(64), createdAt: '2026-12-01T10:00:00.000Z' };

  it('is our own create when the item names our staged object: the caller keeps it', async () => {
    const store = new DocumentStore({ dynamo: losingFirstAnswer(), table: 'documents', tombstoneSeconds: 60, region: 'us-east-1' });
    // Reported as "identical", the service removed the staged object the committed item names:
    // an acknowledged PUT then read as 404 (seen in dynamodb-blackhole.test.ts).
    expect(await store.create('public', metadata, { s3Key: 'public/doc-1/upload-a' })).toMatchObject({ outcome: 'created' });
  });

  it('is our own create inline when the item was made at our instant', async () => {
    const store = new DocumentStore({ dynamo: losingFirstAnswer(), table: 'documents', tombstoneSeconds: 60, region: 'us-east-1' });
    expect(await store.create('public', metadata, { content: Buffer.from('abc') })).toMatchObject({ outcome: 'created' });
  });

  it('is still another writer\'s identical document when the item names another object', async () => {
    const dynamo = losingFirstAnswer();
    // Another writer's put commits first (this table's one committing put)...
    await dynamo.putItem({ TableName: 'documents', Item: { ...metadata, pk: 'public#doc-1', status: 'ACTIVE', s3Key: 'public/doc-1/upload-b' } }).catch(() => {});
    const store = new DocumentStore({ dynamo, table: 'documents', tombstoneSeconds: 60, region: 'us-east-1' });
    expect(await store.create('public', metadata, { s3Key: 'public/doc-1/upload-a' })).toMatchObject({ outcome: 'identical' });
  });
});
