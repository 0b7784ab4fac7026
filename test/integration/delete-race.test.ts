import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { DocumentCache } from '../../src/documents/document-cache.ts';
import type { WholeDocument } from '../../src/documents/schemas.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';

/** A cache whose fills wait at a gate the test opens: the slow reader of the race. */
class GatedCache extends DocumentCache {
  gate: Promise<void> = Promise.resolve();
  onFill: () => void = () => {};
  override async fill(tenant: string, id: string, document: WholeDocument): Promise<void> {
    this.onFill();
    await this.gate;
    return super.fill(tenant, id, document);
  }
}

let app: FastifyInstance;
let cache: GatedCache | undefined;
let redis: Redis;

beforeAll(async () => {
  app = await testApp({
    overrides: {
      documentCache: (options) => (cache = new GatedCache(options)),
    },
  });
  redis = new Redis(testConfig().REDIS_URL);
});
afterAll(async () => {
  await app.close();
  redis.disconnect();
});

describe('the delete race of cache-aside', () => {
  it('a GET whose cache fill lands after a DELETE answered cannot bring the document back', async () => {
    const id = uniqueId('race');
    expect((await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'doomed' })).statusCode).toBe(201);

    let open!: () => void;
    cache!.gate = new Promise((resolve) => (open = resolve));
    const fillStarted = new Promise<void>((resolve) => (cache!.onFill = resolve));

    // The slow reader: has read the document from the store, not yet filled the cache.
    const slowRead = app.inject({ method: 'GET', url: `/documents/${id}` });
    await fillStarted;

    const deleted = await app.inject({ method: 'DELETE', url: `/documents/${id}` });
    expect(deleted.statusCode).toBe(204);

    open();
    await slowRead;

    const value = await redis.getBuffer(`doc:public:${id}`);
    expect(value?.toString()).toBe('D');
    for (let i = 0; i < 3; i++) {
      const after = await app.inject({ method: 'GET', url: `/documents/${id}` });
      expect(after.statusCode).toBe(404);
      expect(after.json().code).toBe('DOCUMENT_NOT_FOUND');
    }
  });

  it('a GET that finds the tombstone in the store caches it, and later GETs never reach the store', async () => {
    const id = uniqueId('race');
    await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'gone' });
    await app.inject({ method: 'DELETE', url: `/documents/${id}` });
    await redis.del(`doc:public:${id}`); // as if the cache had been flushed
    expect((await app.inject({ method: 'GET', url: `/documents/${id}` })).statusCode).toBe(404);
    expect((await redis.getBuffer(`doc:public:${id}`))?.toString()).toBe('D');
  });
});

describe('a DELETE that races a create of the same id', () => {
  it('finds nothing to delete when the create commits between its tombstone and its lookup: 404, and the document stays', async () => {
    const { DocumentStore } = await import('../../src/documents/document-store.ts');
    const { createAwsClients } = await import('../../src/adapters/aws.ts');
    const config = testConfig();
    const aws = createAwsClients(config);
    const id = uniqueId('race-create');
    const { createHash } = await import('node:crypto');
    const checksum = createHash('sha256').update('born').digest('hex');
    const metadata = { id, status: 'ACTIVE' as const, contentType: 'text/plain', size: 4, checksum, createdAt: new Date().toISOString() };
    const real = new DocumentStore({ dynamo: aws.dynamo, table: config.DOCUMENTS_TABLE, tombstoneSeconds: 60, region: 'us-east-1' });
    // The interleaving, forced: the tombstone's condition fails on an absent item, then the create commits.
    const dynamo = {
      ...aws.dynamo,
      getItem: aws.dynamo.getItem.bind(aws.dynamo),
      putItem: aws.dynamo.putItem.bind(aws.dynamo),
      query: aws.dynamo.query.bind(aws.dynamo),
      async updateItem(input: Parameters<typeof aws.dynamo.updateItem>[0]) {
        try {
          return await aws.dynamo.updateItem(input);
        } finally {
          expect(await real.create('public', metadata, { content: Buffer.from('born') })).toMatchObject({ outcome: 'created' });
        }
      },
    };
    const racing = new DocumentStore({ dynamo, table: config.DOCUMENTS_TABLE, tombstoneSeconds: 60, region: 'us-east-1' });
    try {
      expect(await racing.delete('public', id)).toEqual({ outcome: 'absent' });
      const after = await real.lookup('public', id);
      expect(after.state).toBe('active');
      const read = await app.inject({ method: 'GET', url: `/documents/${id}` });
      expect(read.statusCode).toBe(200);
      expect(read.body).toBe('born');
    } finally {
      aws.destroy();
    }
  });
});
