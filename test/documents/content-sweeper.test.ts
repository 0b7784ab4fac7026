import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { tableDefinitions } from '../../src/bootstrap/resources.ts';
import type { Config } from '../../src/config.ts';
import { ContentSweeper } from '../../src/documents/content-sweeper.ts';
import { ContentStore } from '../../src/documents/content-store.ts';
import { DocumentStore } from '../../src/documents/document-store.ts';
import { contentStoreOptions, documentStores } from '../../src/documents/stores.ts';
import { uploadHome } from '../../src/documents/uploads/upload-home.ts';
import { testApp, testConfig } from '../support/app.ts';
import { bucketContents, overwriteObject, uploadWithPartAndTail } from './support.ts';

// The content sweeper on a table and bucket of its own (a sweep looks at the
// whole bucket; the shared one holds other files' uploads in progress). Time
// is moved forward instead of waited for: `now` past the grace period.

const GRACE_MS = 60_000;
const silent = { info() {}, warn() {}, error() {} };

let config: Config;
let aws: AwsClients;
let app: FastifyInstance;

beforeAll(async () => {
  const suffix = randomUUID().slice(0, 8);
  const names = { DOCUMENTS_TABLE: `documents-lifecycle-${suffix}`, DOCUMENTS_BUCKET: `documents-lifecycle-${suffix}` };
  config = testConfig(names);
  aws = createAwsClients(config);
  const [table] = tableDefinitions(config).filter((definition) => definition.name === config.DOCUMENTS_TABLE);
  await aws.dynamoAdmin.send(new CreateTableCommand({ TableName: table!.name, ...table!.input }));
  await aws.s3.send(new CreateBucketCommand({ Bucket: config.DOCUMENTS_BUCKET }));
  app = await testApp({ config: { ...names, INLINE_CONTENT_MAX_BYTES: 1024 } });
});
afterAll(async () => {
  await app?.close();
  aws?.destroy();
});

function worker(registry: Registry, now = () => Date.now() + GRACE_MS + 1000) {
  return new ContentSweeper({
    ...documentStores(config, aws),
    uploads: uploadHome(config, aws),
    log: silent,
    graceMs: GRACE_MS,
    leaseMs: 30_000,
    intervalMs: 60_000,
    registry,
    now,
  });
}

async function counter(registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric(name)!.get();
  return Object.fromEntries(metric.values.map((value) => [String(value.labels.kind ?? value.labels.state), value.value]));
}

const create = async (id: string, content: Buffer) =>
  (await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: content })).statusCode;

describe('the content sweeper', () => {
  it('removes orphans once, with two workers at once, and leaves committed documents alone', async () => {
    const kept = randomBytes(5000);
    expect(await create('kept', kept)).toBe(201);
    expect(await create('kept-inline', randomBytes(100))).toBe(201);
    // A document deleted while its content could not be removed: the tombstone still names it.
    expect(await create('deleted', randomBytes(5000))).toBe(201);
    const [deletedKey] = (await bucketContents(aws, config, 'public/deleted/')).objects;
    await documentStores(config, aws).store.delete('public', 'deleted');
    // What a create that died between its upload and its commit leaves, and a loser's object.
    await overwriteObject(aws, config, 'public/never-committed/01a2-dead', randomBytes(3000));
    await overwriteObject(aws, config, 'public/kept/01a2-loser', randomBytes(3000));
    // Not a key this service writes: not its to judge.
    await overwriteObject(aws, config, 'foreign-object', randomBytes(10));

    const registries = [new Registry(), new Registry()];
    const results = await Promise.all(registries.map((registry) => worker(registry).sweep()));
    const found = await Promise.all(registries.map((registry) => counter(registry, 'orphans_found_total')));
    const removed = await Promise.all(registries.map((registry) => counter(registry, 'orphans_removed_total')));
    const total = (counts: Record<string, number>[], kind: string) => counts.reduce((sum, count) => sum + (count[kind] ?? 0), 0);
    expect(results.filter((result) => result === 'not-leader').length).toBeLessThanOrEqual(1);
    expect(total(found, 'deleted')).toBe(1);
    expect(total(found, 'unreferenced')).toBe(2);
    expect(total(removed, 'deleted')).toBe(1);
    expect(total(removed, 'unreferenced')).toBe(2);

    const left = (await bucketContents(aws, config, '')).objects;
    expect(left).not.toContain(deletedKey);
    expect(left).not.toContain('public/never-committed/01a2-dead');
    expect(left).not.toContain('public/kept/01a2-loser');
    expect(left).toContain('foreign-object');
    expect(left.filter((key) => key.startsWith('public/kept/'))).toHaveLength(1);
    const read = await app.inject({ method: 'GET', url: '/documents/kept' });
    expect(read.statusCode).toBe(200);
    expect(read.rawPayload.equals(kept)).toBe(true);
    expect((await app.inject({ method: 'GET', url: '/documents/kept-inline' })).statusCode).toBe(200);

    // A second sweep finds nothing more.
    const again = await worker(new Registry()).sweep();
    expect(again).toMatchObject({ found: { deleted: 0, unreferenced: 0 } });
  });

  it('never removes the content of a retained or held document, however late it sweeps', async () => {
    const retained = randomBytes(4000);
    const held = randomBytes(4000);
    const until = new Date(Date.now() + 3600_000).toISOString();
    expect((await app.inject({ method: 'PUT', url: '/documents/retained', headers: { 'retain-until': until }, payload: retained })).statusCode).toBe(201);
    expect(await create('held', held)).toBe(201);
    expect((await app.inject({ method: 'PUT', url: '/documents/held/legal-hold', payload: { status: 'ON' } })).statusCode).toBe(200);
    const keys = [...(await bucketContents(aws, config, 'public/retained/')).objects, ...(await bucketContents(aws, config, 'public/held/')).objects];
    expect(keys).toHaveLength(2);

    // Ten years on: past the retention, past every grace period; the hold still on.
    const decadeLater = () => Date.now() + 10 * 365 * 24 * 3600_000;
    const result = await worker(new Registry(), decadeLater).sweep();
    expect(result).not.toBe('not-leader');
    const left = (await bucketContents(aws, config, '')).objects;
    for (const key of keys) expect(left).toContain(key);
    for (const [id, content] of [['retained', retained], ['held', held]] as const) {
      const read = await app.inject({ method: 'GET', url: `/documents/${id}` });
      expect(read.statusCode).toBe(200);
      expect(read.rawPayload.equals(content)).toBe(true);
      expect((await app.inject({ method: 'DELETE', url: `/documents/${id}` })).statusCode).toBe(409);
    }
  });

  it('leaves an object younger than the grace period: an upload still committing', async () => {
    await overwriteObject(aws, config, 'public/committing/01a2-young', randomBytes(3000));
    const result = await worker(new Registry(), Date.now).sweep();
    expect(result).toMatchObject({ found: { unreferenced: 0 } });
    expect((await bucketContents(aws, config, 'public/committing/')).objects).toEqual(['public/committing/01a2-young']);
  });

  it('counts an orphan S3 refuses to remove (AccessDenied: locked) as retained, without a warning, and asks again next sweep', async () => {
    // A stand-in for that one call. Real S3 refuses the delete of a locked
    // version; the sweep's delete names no version, so on a versioned bucket
    // S3 adds a delete marker and the locked version stays, noncurrent, until
    // its date (then the bucket's noncurrent-version rule removes it). A
    // refusal is still possible (a bucket policy, a bucket without versions),
    // and must cost no warning and no back-off, every sweep.
    const locked = 'public/locked-orphan/01a2-locked';
    await overwriteObject(aws, config, locked, randomBytes(300));
    class LockedContent extends ContentStore {
      override async remove(key: string): Promise<void> {
        if (key === locked) throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 } });
        return super.remove(key);
      }
    }
    const warnings: unknown[] = [];
    const sweep = (registry: Registry) =>
      new ContentSweeper({
        ...documentStores(config, aws),
        content: new LockedContent(contentStoreOptions(config, aws)),
        uploads: uploadHome(config, aws),
        log: { ...silent, warn: (...args: unknown[]) => warnings.push(args) },
        graceMs: GRACE_MS,
        leaseMs: 30_000,
        intervalMs: 60_000,
        registry,
        now: () => Date.now() + GRACE_MS + 1000,
      }).sweep();
    for (const round of [1, 2]) {
      const registry = new Registry();
      const result = await sweep(registry);
      expect(result, `sweep ${round}`).toMatchObject({ retained: { unreferenced: 1 } });
      expect(await counter(registry, 'orphans_retained_total')).toEqual({ unreferenced: 1 });
    }
    expect(warnings).toEqual([]);
    expect((await bucketContents(aws, config, 'public/locked-orphan/')).objects).toEqual([locked]);
    await documentStores(config, aws).content.remove(locked);
  });

  it('reports how far past its deleteAt the oldest tombstone is (DynamoDB TTL late)', async () => {
    const registry = new Registry();
    worker(registry, Date.now);
    const gauge = async () => (await registry.getSingleMetric('tombstone_oldest_overdue_seconds')!.get()).values[0]?.value;
    expect(await create('overdue', randomBytes(10))).toBe(201);
    const tenDaysAgo = Date.now() - 10 * 24 * 3600 * 1000;
    // Deleted ten days ago with a one-second retention: TTL should have removed it long since.
    await new DocumentStore({ dynamo: aws.dynamo, table: config.DOCUMENTS_TABLE, tombstoneSeconds: 1, region: 'us-east-1' }).delete('public', 'overdue', tenDaysAgo);
    const overdue = await gauge();
    expect(overdue).toBeGreaterThan(10 * 24 * 3600 - 60);
    expect(overdue).toBeLessThan(10 * 24 * 3600 + 60);
  });

  describe('resumable uploads', () => {
    const MiB = 1024 * 1024;
    const tus = { 'tus-resumable': '1.0.0' };
    const home = () => uploadHome(config, aws);

    /** An upload with a part (5 MiB) and a tail (1 MiB) stored: what an abandoned one leaves. */
    const abandoned = () => uploadWithPartAndTail(app, 20 * MiB);

    /** Whether S3 still has the upload's multipart upload (the emulator lists none: a part sent to it tells). */
    async function multipartAlive(s3Key: string, s3UploadId: string): Promise<boolean> {
      return home()
        .parts.put(s3Key, s3UploadId, 9999, [Buffer.from('x')])
        .then(() => true, (error: Error) => (error.name === 'NoSuchUpload' ? false : Promise.reject(error)));
    }

    it('ends an upload past its expiry: its parts aborted, its tail removed, counted once; the upload is 410 after', async () => {
      const uploadId = await abandoned();
      const before = (await home().records.get('public', uploadId))!;
      expect(before.tail).toBeDefined();
      const afterExpiry = () => before.expiresAt + 1000;

      const registry = new Registry();
      const result = await worker(registry, afterExpiry).sweep();
      expect(result).toMatchObject({ uploadsEnded: 1 });
      expect(await counter(registry, 'resumable_uploads_cleaned_total')).toEqual({ EXPIRED: 1 });
      expect(await multipartAlive(before.s3Key, before.s3UploadId)).toBe(false);
      const left = (await bucketContents(aws, config, `public/${before.documentId}/`)).objects;
      expect(left).toEqual([]);
      expect((await home().records.get('public', uploadId))!.state).toBe('EXPIRED');
      const head = await app.inject({ method: 'HEAD', url: `/uploads/${uploadId}`, headers: tus });
      expect(head.statusCode).toBe(410);

      // Out of the index: the next sweep has nothing more to end.
      expect(await worker(new Registry(), afterExpiry).sweep()).toMatchObject({ uploadsEnded: 0 });
    });

    it('keeps what a live upload still needs, and removes the tails nothing needs', async () => {
      const uploadId = await abandoned();
      const upload = (await home().records.get('public', uploadId))!;
      const stale = `${upload.s3Key}.tail.${randomUUID()}`;
      await overwriteObject(aws, config, stale, randomBytes(100));
      // Young: maybe the tail of an append about to record it.
      await worker(new Registry(), Date.now).sweep();
      expect((await bucketContents(aws, config, `public/${upload.documentId}/`)).objects).toEqual([stale, upload.tail!.key].sort());
      // Past the grace period (but before the upload expires): another's for good.
      const registry = new Registry();
      await worker(registry, () => Date.now() + GRACE_MS + 1000).sweep();
      expect((await bucketContents(aws, config, `public/${upload.documentId}/`)).objects).toEqual([upload.tail!.key]);
      expect(await multipartAlive(upload.s3Key, upload.s3UploadId)).toBe(true);

      // Cancelled (its own cleanup done): a tail written late by an append that had not heard of it goes at once.
      const cancelled = await app.inject({ method: 'DELETE', url: `/uploads/${uploadId}`, headers: tus });
      expect(cancelled.statusCode).toBe(204);
      const late = `${upload.s3Key}.tail.${randomUUID()}`;
      await overwriteObject(aws, config, late, randomBytes(100));
      const after = new Registry();
      await worker(after, Date.now).sweep();
      expect((await counter(after, 'orphans_removed_total')).upload).toBe(1);
      expect((await bucketContents(aws, config, `public/${upload.documentId}/`)).objects).toEqual([]);
    });
  });
});
