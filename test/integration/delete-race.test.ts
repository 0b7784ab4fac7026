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

describe('a DELETE that races a legal hold', () => {
  /**
   * The app on a DynamoDB whose writes of one kind wait at a gate the test
   * opens: the write is sent (and its condition checked) only then, so the
   * test decides which of two requests reaches the table first.
   */
  async function gatedApp() {
    const { createAwsClients } = await import('../../src/adapters/aws.ts');
    const aws = createAwsClients(testConfig());
    const gates = new Map<string, { reached: () => void; open: Promise<void> }>();
    const gate = (expression: string) => {
      let open!: () => void;
      let reached!: () => void;
      const reachedGate = new Promise<void>((resolve) => (reached = resolve));
      gates.set(expression, { reached, open: new Promise<void>((resolve) => (open = resolve)) });
      return { reached: reachedGate, open };
    };
    const dynamo: typeof aws.dynamo = {
      getItem: (input, options) => aws.dynamo.getItem(input, options),
      putItem: (input, options) => aws.dynamo.putItem(input, options),
      query: (input, options) => aws.dynamo.query(input, options),
      batchGetItem: (input, options) => aws.dynamo.batchGetItem(input, options),
      async updateItem(input, options) {
        const waiting = [...gates].find(([expression]) => input.UpdateExpression.startsWith(expression));
        if (waiting) {
          gates.delete(waiting[0]);
          waiting[1].reached();
          await waiting[1].open;
        }
        return aws.dynamo.updateItem(input, options);
      },
    };
    const gated = await testApp({ overrides: { aws: { ...aws, dynamo } } });
    return { app: gated, gate, close: async () => (await gated.close(), aws.destroy()) };
  }
  const TOMBSTONE = 'SET #status = :deleted';
  const HOLD = 'SET legalHold = :on';

  it('a hold placed while the DELETE is on its way to the table wins: the DELETE is refused, the document stays', async () => {
    const { app: gated, gate, close } = await gatedApp();
    try {
      const id = uniqueId('race-hold');
      expect((await gated.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'evidence' })).statusCode).toBe(201);
      const tombstone = gate(TOMBSTONE);
      const deleting = gated.inject({ method: 'DELETE', url: `/documents/${id}` });
      await tombstone.reached;
      const held = await gated.inject({ method: 'PUT', url: `/documents/${id}/legal-hold`, payload: { status: 'ON' } });
      expect(held.statusCode).toBe(200);
      tombstone.open();
      const deleted = await deleting;
      expect(deleted.statusCode).toBe(409);
      expect(deleted.json().code).toBe('DOCUMENT_ON_LEGAL_HOLD');
      const read = await gated.inject({ method: 'GET', url: `/documents/${id}` });
      expect(read.statusCode).toBe(200);
      expect(read.body).toBe('evidence');
      expect((await gated.inject({ method: 'GET', url: `/documents/${id}/metadata` })).json().legalHold).toBe('ON');
    } finally {
      await close();
    }
  });

  it('a DELETE that reaches the table before the hold deletes: the hold answers 404, and the document is gone', async () => {
    const { app: gated, gate, close } = await gatedApp();
    try {
      const id = uniqueId('race-hold');
      expect((await gated.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'shredded' })).statusCode).toBe(201);
      const hold = gate(HOLD);
      const holding = gated.inject({ method: 'PUT', url: `/documents/${id}/legal-hold`, payload: { status: 'ON' } });
      await hold.reached;
      expect((await gated.inject({ method: 'DELETE', url: `/documents/${id}` })).statusCode).toBe(204);
      hold.open();
      const held = await holding;
      expect(held.statusCode).toBe(404);
      expect(held.json().code).toBe('DOCUMENT_NOT_FOUND');
      expect((await gated.inject({ method: 'GET', url: `/documents/${id}` })).statusCode).toBe(404);
    } finally {
      await close();
    }
  });
});
