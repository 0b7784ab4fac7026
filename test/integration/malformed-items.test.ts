import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import { appPlugin, serverOptions } from '../../src/app.ts';
import { createAwsClients } from '../../src/adapters/aws.ts';
import { MalformedItemError, type Item } from '../../src/adapters/dynamodb.ts';
import { AppliedOrderStore } from '../../src/consumer/applied-orders.ts';
import { documentEventOf } from '../../src/documents/document-events.ts';
import { DocumentStore } from '../../src/documents/document-store.ts';
import { UploadRecords, uploadPk } from '../../src/documents/uploads/upload-records.ts';
import { IdempotencyStore } from '../../src/idempotency/idempotency-store.ts';
import { OrderStore } from '../../src/orders/order-store.ts';
import { pendingEvent } from '../../src/outbox/outbox-store.ts';
import { testConfig, uniqueId } from '../support/app.ts';
import { isolatedStack } from '../orders/support.ts';

// What a table holds is checked as it is read: an item that is not what its
// store writes (a bug, a hand edit, an older version's shape) is refused as a
// MalformedItemError, never handed on as a wrong value, and a request that
// meets one gets a 500 that says nothing of it while the log names the item.
// Each bad item is written into the local DynamoDB as it is, through the port.

const config = testConfig();
const aws = createAwsClients(config);
afterAll(() => aws.destroy());

const put = (table: string, item: Item) => aws.dynamo.putItem({ TableName: table, Item: item });

async function refused(read: Promise<unknown>, kind: string, pk: string, problem: RegExp) {
  const error = await read.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(MalformedItemError);
  expect(error).toMatchObject({ kind, pk, code: 'INTERNAL_ERROR', statusCode: 500 });
  expect((error as Error).message).toMatch(problem);
}

const tenant = () => uniqueId('tenant').slice(0, 40);
const documentItem = (pk: string, id: string) => ({
  pk,
  id,
  status: 'ACTIVE',
  contentType: 'text/plain',
  size: 5,
  checksum: 'c'.repeat(64),
  createdAt: new Date().toISOString(),
  content: Buffer.from('hello'),
});

describe('the documents table', () => {
  const store = new DocumentStore({ dynamo: aws.dynamo, table: config.DOCUMENTS_TABLE, tombstoneSeconds: 60, region: config.AWS_REGION });

  it('a document item without its checksum, or with a size that is a string, is refused on lookup', async () => {
    const [t, missing, wrong] = [tenant(), uniqueId('d'), uniqueId('d')];
    const { checksum: _checksum, ...withoutChecksum } = documentItem(`${t}#${missing}`, missing);
    await put(config.DOCUMENTS_TABLE, withoutChecksum);
    await put(config.DOCUMENTS_TABLE, { ...documentItem(`${t}#${wrong}`, wrong), size: '5' });
    await refused(store.lookup(t, missing), 'document', `${t}#${missing}`, /checksum/);
    await refused(store.lookup(t, wrong), 'document', `${t}#${wrong}`, /\/size/);
    // The well-formed item next to them reads as ever.
    const fine = uniqueId('d');
    await put(config.DOCUMENTS_TABLE, documentItem(`${t}#${fine}`, fine));
    expect(await store.lookup(t, fine)).toMatchObject({ state: 'active', record: { metadata: { id: fine, size: 5 } } });
  });

  it('a status no version writes is refused by the delete that reads it after its condition failed', async () => {
    const [t, id] = [tenant(), uniqueId('d')];
    await put(config.DOCUMENTS_TABLE, { ...documentItem(`${t}#${id}`, id), status: 'ARCHIVED' });
    await refused(store.delete(t, id), 'document', `${t}#${id}`, /\/status/);
  });

  it('a listed item whose metadata is malformed is refused by the listing, not skipped', async () => {
    const [t, id] = [tenant(), uniqueId('d')];
    const item = documentItem(`${t}#${id}`, id);
    await put(config.DOCUMENTS_TABLE, { ...item, createdAt: 20240101, listPk: t, listSk: `${item.createdAt}#${id}` });
    await refused(store.list(t, 10), 'document', `${t}#${id}`, /\/createdAt/);
  });

  it('an outbox item is refused as the event it stands for', () => {
    const deletion = { pk: 't#d#deleted', kind: 'event', tenant: 't', id: 'd' };
    expect(() => documentEventOf(deletion)).toThrow(MalformedItemError);
    expect(() => documentEventOf(deletion)).toThrow(/deletion event item t#d#deleted is malformed: .*deletedAt/);
    const created = { pk: 't#d', tenant: 't', id: 'd', contentType: 'text/plain', size: -0.5, checksum: 'c', createdAt: 'x' };
    expect(() => documentEventOf(created)).toThrow(/document \(for its event\) item t#d is malformed: \/size/);
  });

  it('an upload item with a part that is not [number, size, etag, crc32] is refused', async () => {
    const [t, uploadId] = [tenant(), uniqueId('u')];
    const pk = uploadPk(t, uploadId);
    await put(config.DOCUMENTS_TABLE, {
      pk,
      kind: 'upload',
      tenant: t,
      uploadId,
      documentId: uniqueId('d'),
      region: config.AWS_REGION,
      route: 'POST',
      protocol: 'tus',
      contentType: 'text/plain',
      state: 'OPEN',
      offset: 0,
      s3Key: 'k',
      s3UploadId: 'u',
      parts: [[1, 5 * 1024 * 1024, 'etag']],
      nextPart: 2,
      hashFormat: 'f',
      hashState: Buffer.alloc(4),
      createdAt: new Date().toISOString(),
      expiresAt: Date.now() + 60_000,
      deleteAt: Math.ceil(Date.now() / 1000) + 60,
    });
    const uploads = new UploadRecords({ dynamo: aws.dynamo, table: config.DOCUMENTS_TABLE });
    await refused(uploads.get(t, uploadId), 'upload', pk, /\/parts\/0/);
  });
});

describe('the orders table', () => {
  const store = new OrderStore({ dynamo: aws.dynamo, table: config.ORDERS_TABLE });
  const order = (pk: string, orderId: string, t: string) => ({
    pk,
    tenant: t,
    orderId,
    status: 'ACCEPTED',
    acceptedAt: new Date().toISOString(),
    customerId: 'CUST-00000001',
    items: [{ sku: 'SKU-1', quantity: 1 }],
    eventStatus: 'PENDING',
  });

  it('an order without its lines, or with an event status no version writes, is refused', async () => {
    const t = tenant();
    const [missing, wrong] = [uuidv7(), uuidv7()];
    const { items: _items, ...withoutLines } = order(`ORDER#${t}#${missing}`, missing, t);
    await put(config.ORDERS_TABLE, withoutLines);
    await put(config.ORDERS_TABLE, { ...order(`ORDER#${t}#${wrong}`, wrong, t), eventStatus: 'SENT' });
    await refused(store.get(t, missing), 'order', `ORDER#${t}#${missing}`, /items/);
    await refused(store.get(t, wrong), 'order', `ORDER#${t}#${wrong}`, /\/eventStatus/);
  });

  it('an order whose event is pending is refused as that event, by the relay that reads the outbox', async () => {
    // A table of its own: the relays of other tests sweep the shared one.
    const s = await isolatedStack();
    try {
      const t = tenant();
      const orderId = uuidv7();
      await put(s.config.ORDERS_TABLE, { ...order(`ORDER#${t}#${orderId}`, orderId, t), customerId: 7, ...pendingEvent(orderId, Date.now() - 1000) });
      await refused(s.orders.outbox.pending(Date.now(), Date.now(), 10), 'order', `ORDER#${t}#${orderId}`, /\/customerId/);
    } finally {
      s.close();
    }
  });

  it('a dedup record whose window end is a string is refused', async () => {
    const t = tenant();
    const hash = uniqueId('h');
    await put(config.ORDERS_TABLE, {
      pk: `DEDUP#${t}#${hash}`,
      orderId: uuidv7(),
      acceptedAt: new Date().toISOString(),
      windowEndsAt: String(Date.now()),
      expiresAt: 0,
    });
    await refused(store.readDedup(t, hash), 'order dedup', `DEDUP#${t}#${hash}`, /\/windowEndsAt/);
  });
});

describe('the idempotency table', () => {
  const store = new IdempotencyStore({ dynamo: aws.dynamo, table: config.IDEMPOTENCY_TABLE, ttlSeconds: 3600, lockSeconds: 30 });
  const record = (pk: string) => ({
    pk,
    fingerprint: 'f',
    resourceId: uniqueId('r'),
    token: 't',
    expiresAt: Math.floor(Date.now() / 1000) + 3600,
  });

  it('a completed record without its response, or one whose resource id is a number, is refused', async () => {
    const [completed, numbered] = [uniqueId('idem'), uniqueId('idem')];
    await put(config.IDEMPOTENCY_TABLE, { ...record(completed), status: 'COMPLETED' });
    await put(config.IDEMPOTENCY_TABLE, { ...record(numbered), status: 'IN_PROGRESS', lockExpiresAt: Date.now(), resourceId: 42 });
    // Both in the way of a claim (live), so the claim reads them.
    await refused(store.claim(completed, 'f', 'mine'), 'idempotency record', completed, /./);
    await refused(store.peek(numbered), 'idempotency record', numbered, /./);
    // A well-formed completed one replays.
    const fine = uniqueId('idem');
    const response = { statusCode: 201, headers: { location: '/x' }, body: { id: 'x' } };
    await put(config.IDEMPOTENCY_TABLE, { ...record(fine), status: 'COMPLETED', response });
    expect(await store.claim(fine, 'f', 'mine')).toEqual({ kind: 'replay', response });
  });
});

describe("the order consumer's table", () => {
  it('an applied-event marker with a status no version writes is refused when a claim meets it', async () => {
    const store = new AppliedOrderStore({ dynamo: aws.dynamo, table: config.CONSUMER_TABLE, dedupSeconds: 3600 });
    const event = { tenant: tenant(), id: uuidv7() };
    const pk = `EVENT#${event.tenant}#${event.id}`;
    await put(config.CONSUMER_TABLE, { pk, status: 'DONE', expiresAt: Math.floor(Date.now() / 1000) + 3600, claimedAt: 'x' });
    await refused(store.claim(event, Date.now(), 1000), 'applied-event marker', pk, /\/status/);
  });
});

describe('a request that meets a malformed item', () => {
  let app: FastifyInstance;
  const lines: { level: number; msg: string; err?: { type?: string; message?: string } }[] = [];

  beforeAll(async () => {
    const stream = { write: (line: string) => void lines.push(JSON.parse(line)) };
    const resolved = testConfig({ LOG_LEVEL: 'error' });
    app = Fastify({ ...serverOptions(resolved), logger: { level: 'error', stream } });
    await app.register(appPlugin, { config: resolved });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
  });

  it('answers a generic 500 and logs what was malformed', async () => {
    const id = uniqueId('d');
    const { checksum: _checksum, ...withoutChecksum } = documentItem(`public#${id}`, id);
    await put(config.DOCUMENTS_TABLE, withoutChecksum);
    const orderId = uuidv7();
    await put(config.ORDERS_TABLE, {
      pk: `ORDER#public#${orderId}`,
      tenant: 'public',
      orderId,
      status: 'ACCEPTED',
      acceptedAt: new Date().toISOString(),
      customerId: 'CUST-00000001',
      items: 'SKU-1 x1',
      eventStatus: 'PENDING',
    });

    for (const [url, pk] of [
      [`/documents/${id}/metadata`, `public#${id}`],
      [`/orders/${orderId}`, `ORDER#public#${orderId}`],
    ] as const) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, response.body).toBe(500);
      expect(response.json()).toMatchObject({ code: 'INTERNAL_ERROR', detail: 'An unexpected error occurred' });
      expect(response.body).not.toContain('malformed');
      expect(response.body).not.toContain(pk);
      const logged = lines.filter((line) => line.err?.type === 'MalformedItemError' && line.err.message?.includes(pk));
      expect(logged, JSON.stringify(lines)).toHaveLength(1);
      expect(logged[0]).toMatchObject({ level: 50, msg: 'request failed' });
    }
  });
});
