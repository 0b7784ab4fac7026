import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { IdempotencyStore } from '../../src/idempotency/idempotency-store.ts';
import { fingerprint } from '../../src/idempotency/idempotency-key.ts';
import { createHash } from 'node:crypto';
import { testApp, testConfig, uniqueId } from '../support/app.ts';

let aws: AwsClients;
let app: FastifyInstance;
const config = testConfig({ IDEMPOTENCY_LOCK_SECONDS: 1 });

beforeAll(async () => {
  aws = createAwsClients(config);
  app = await testApp({ config: { IDEMPOTENCY_LOCK_SECONDS: 1 } });
});
afterAll(async () => {
  await app.close();
  aws.destroy();
});

describe('IdempotencyStore', () => {
  it('claims once, reports the key in flight, and expires a dead claim keeping its resource id', async () => {
    const store = new IdempotencyStore({ dynamo: aws.dynamo, table: config.IDEMPOTENCY_TABLE, ttlSeconds: 60, lockSeconds: 1 });
    const pk = uniqueId('pk');
    const first = await store.claim(pk, 'fp', 'resource-1');
    expect(first).toMatchObject({ kind: 'started', resourceId: 'resource-1' });
    expect(await store.claim(pk, 'fp', 'resource-2')).toEqual({ kind: 'in-flight' });
    expect(await store.claim(pk, 'other', 'resource-2')).toEqual({ kind: 'mismatch' });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const takeover = await store.claim(pk, 'fp', 'resource-2');
    expect(takeover).toMatchObject({ kind: 'started', resourceId: 'resource-1' });
    // The crashed owner cannot complete over the new owner's claim; the new owner can.
    await store.complete(pk, (first as { token: string }).token, { statusCode: 201, headers: {}, body: 'stale' });
    await store.complete(pk, (takeover as { token: string }).token, { statusCode: 201, headers: {}, body: 'fresh' });
    expect(await store.claim(pk, 'fp', 'resource-3')).toEqual({
      kind: 'replay',
      response: { statusCode: 201, headers: {}, body: 'fresh' },
    });
  });

  it('treats an expired record as absent, by the condition and not by TTL', async () => {
    let now = Date.now();
    const store = new IdempotencyStore({ dynamo: aws.dynamo, table: config.IDEMPOTENCY_TABLE, ttlSeconds: 5, lockSeconds: 1, now: () => now });
    const pk = uniqueId('pk');
    const claim = await store.claim(pk, 'fp-a', 'r-1');
    await store.complete(pk, (claim as { token: string }).token, { statusCode: 201, headers: {}, body: 'a' });
    expect((await store.claim(pk, 'fp-b', 'r-2')).kind).toBe('mismatch');
    now += 6000;
    expect(await store.claim(pk, 'fp-b', 'r-2')).toMatchObject({ kind: 'started', resourceId: 'r-2' });
  });
});

describe('POST /documents after a crash mid-flight', () => {
  it('a request that died holding the key does not lock it forever, and its id is finished, not replaced', async () => {
    const key = uniqueId('key');
    const store = new IdempotencyStore({ dynamo: aws.dynamo, table: config.IDEMPOTENCY_TABLE, ttlSeconds: 60, lockSeconds: 1 });
    // What a process that crashed after claiming the key leaves behind.
    const print = fingerprint(['POST /documents', 'text/plain', createHash('sha256').update('crash').digest('hex')]);
    const crashedId = uniqueId('crashed');
    await store.claim(`public#POST /documents#${key}`, print, crashedId);

    const blocked = await app.inject({ method: 'POST', url: '/documents', payload: 'crash', headers: { 'content-type': 'text/plain', 'idempotency-key': key } });
    expect(blocked.statusCode).toBe(201);
    expect(blocked.json().id).toBe(crashedId);
  });

  it('answers 409 IDEMPOTENCY_KEY_IN_USE with Retry-After while another request holds the key', async () => {
    const key = uniqueId('key');
    const store = new IdempotencyStore({ dynamo: aws.dynamo, table: config.IDEMPOTENCY_TABLE, ttlSeconds: 60, lockSeconds: 30 });
    const print = fingerprint(['POST /documents', 'text/plain', createHash('sha256').update('busy').digest('hex')]);
    await store.claim(`public#POST /documents#${key}`, print, uniqueId());
    const response = await app.inject({ method: 'POST', url: '/documents', payload: 'busy', headers: { 'content-type': 'text/plain', 'idempotency-key': key } });
    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('IDEMPOTENCY_KEY_IN_USE');
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
  });
});
