import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { appPlugin, serverOptions } from '../../src/app.ts';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { DocumentStore } from '../../src/documents/document-store.ts';
import { hashApiKey } from '../support/config.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';
import { expectProblem } from '../support/problem.ts';

// Retention (Retain-Until, and a tenant's default) and legal holds, through
// the API on the local stack. Tenants of this file's own: `keeper` has a key
// that may change holds and one that may not; `policy` has a default
// retention of 30 days; `other` is someone else.

const suffix = randomUUID().slice(0, 8);
const tenants = { keeper: `keeper-${suffix}`, policy: `policy-${suffix}`, other: `other-${suffix}` };
const keys = { holder: `holder-${randomUUID()}`, plain: `plain-${randomUUID()}`, policy: `policy-${randomUUID()}`, other: `other-${randomUUID()}` };
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const DAY = 86_400_000;

let app: FastifyInstance;
let aws: AwsClients;

beforeAll(async () => {
  const config = {
    AUTH_MODE: 'api-key',
    API_KEYS: [
      `${tenants.keeper}:${hashApiKey(keys.holder)}:legal-hold`,
      `${tenants.keeper}:${hashApiKey(keys.plain)}`,
      `${tenants.policy}:${hashApiKey(keys.policy)}`,
      `${tenants.other}:${hashApiKey(keys.other)}`,
    ].join(','),
    RATE_LIMIT_PER_MINUTE: 1_000_000,
    RETENTION_DEFAULTS: `${tenants.policy}=30`,
    INLINE_CONTENT_MAX_BYTES: 1024,
  } as const;
  app = await testApp({ config });
  aws = createAwsClients(testConfig(config));
});
afterAll(async () => {
  await app?.close();
  aws?.destroy();
});

const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();

async function put(id: string, headers: Record<string, string>, payload: Buffer | string = 'kept for the record') {
  return app.inject({ method: 'PUT', url: `/documents/${id}`, headers: { 'content-type': 'text/plain', ...headers }, payload });
}

const metadataOf = async (id: string, key = keys.plain) => app.inject({ method: 'GET', url: `/documents/${id}/metadata`, headers: bearer(key) });
const remove = (id: string, key = keys.plain) => app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: bearer(key) });
const hold = (id: string, status: 'ON' | 'OFF', key = keys.holder) =>
  app.inject({ method: 'PUT', url: `/documents/${id}/legal-hold`, headers: bearer(key), payload: { status } });

describe('Retain-Until', () => {
  it.each([
    ['inline', 'a few bytes'],
    ['in S3', randomBytes(5000)],
  ])('keeps a document %s until the date: DELETE is 409 DOCUMENT_RETAINED naming it, and nothing changes', async (_where, payload) => {
    const id = uniqueId('retained');
    const until = inAnHour();
    const created = await put(id, { ...bearer(keys.plain), 'retain-until': until }, payload);
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id, retainUntil: until, legalHold: 'OFF' });

    const refused = await remove(id);
    expectProblem(refused, 409, 'DOCUMENT_RETAINED');
    expect(refused.json().detail).toContain(until);
    expect((await metadataOf(id)).json()).toEqual(created.json());
    const read = await app.inject({ method: 'GET', url: `/documents/${id}`, headers: bearer(keys.plain) });
    expect(read.statusCode).toBe(200);
    expect(read.rawPayload.equals(Buffer.from(payload))).toBe(true);
  });

  it('is deletable once the date has passed (the store decides with the time of the delete)', async () => {
    const id = uniqueId('expiring');
    expect((await put(id, { ...bearer(keys.plain), 'retain-until': inAnHour() })).statusCode).toBe(201);
    const store = new DocumentStore({ dynamo: aws.dynamo, table: testConfig().DOCUMENTS_TABLE, tombstoneSeconds: 60, region: 'us-east-1' });
    expect(await store.delete(tenants.keeper, id, Date.now())).toMatchObject({ outcome: 'retained' });
    expect(await store.delete(tenants.keeper, id, Date.now() + 2 * 3600_000)).toMatchObject({ outcome: 'deleted' });
    expect((await metadataOf(id)).statusCode).toBe(404);
  });

  it('is normalised to UTC milliseconds, and POST takes it as PUT does', async () => {
    const offset = '2031-06-15T14:30:00.5+02:00';
    const created = await app.inject({
      method: 'POST',
      url: '/documents',
      headers: { ...bearer(keys.plain), 'retain-until': offset },
      payload: 'posted',
    });
    expect(created.statusCode).toBe(201);
    expect(created.json().retainUntil).toBe('2031-06-15T12:30:00.500Z');
    expectProblem(await remove(created.json().id), 409, 'DOCUMENT_RETAINED');
  });

  it.each([
    ['not a date', 'next tuesday'],
    ['a date without a time', '2031-01-01'],
    ['a time without an offset', '2031-01-01T00:00:00'],
    ['a day that does not exist', '2031-02-30T00:00:00Z'],
    ['a time in the past', '2020-01-01T00:00:00Z'],
    ['more than a hundred years ahead', '2227-01-01T00:00:00Z'],
  ])('refuses %s with 400 INVALID_RETAIN_UNTIL, before a byte is stored', async (_case, value) => {
    const id = uniqueId('bad-retention');
    expectProblem(await put(id, { ...bearer(keys.plain), 'retain-until': value }, randomBytes(5000)), 400, 'INVALID_RETAIN_UNTIL');
    expectProblem(await metadataOf(id), 404, 'DOCUMENT_NOT_FOUND');
    const posted = await app.inject({ method: 'POST', url: '/documents', headers: { ...bearer(keys.plain), 'retain-until': value }, payload: 'x' });
    expectProblem(posted, 400, 'INVALID_RETAIN_UNTIL');
  });

  it('makes the retention part of an Idempotency-Key\'s request: another Retain-Until with the same key is 422', async () => {
    const key = randomUUID();
    const headers = { ...bearer(keys.plain), 'idempotency-key': key };
    const first = await app.inject({ method: 'POST', url: '/documents', headers: { ...headers, 'retain-until': inAnHour() }, payload: 'same bytes' });
    expect(first.statusCode).toBe(201);
    const other = await app.inject({ method: 'POST', url: '/documents', headers: { ...headers, 'retain-until': new Date(Date.now() + DAY).toISOString() }, payload: 'same bytes' });
    expectProblem(other, 422, 'IDEMPOTENCY_KEY_REUSED');
  });
});

describe("a tenant's default retention (RETENTION_DEFAULTS)", () => {
  it('retains every document of the tenant for its days; a Retain-Until can only lengthen it', async () => {
    const plain = await app.inject({ method: 'POST', url: '/documents', headers: bearer(keys.policy), payload: 'policy' });
    expect(plain.statusCode).toBe(201);
    const { createdAt, retainUntil, id } = plain.json();
    expect(Date.parse(retainUntil) - Date.parse(createdAt)).toBe(30 * DAY);
    expectProblem(await remove(id, keys.policy), 409, 'DOCUMENT_RETAINED');

    const shorter = await app.inject({ method: 'POST', url: '/documents', headers: { ...bearer(keys.policy), 'retain-until': inAnHour() }, payload: 'x' });
    expect(Date.parse(shorter.json().retainUntil) - Date.parse(shorter.json().createdAt)).toBe(30 * DAY);
    const longer = new Date(Date.now() + 90 * DAY).toISOString();
    const asked = await app.inject({ method: 'POST', url: '/documents', headers: { ...bearer(keys.policy), 'retain-until': longer }, payload: 'x' });
    expect(asked.json().retainUntil).toBe(longer);
  });

  it('leaves the other tenants alone', async () => {
    const created = await app.inject({ method: 'POST', url: '/documents', headers: bearer(keys.other), payload: 'free' });
    expect(created.json().retainUntil).toBeUndefined();
    expect((await remove(created.json().id, keys.other)).statusCode).toBe(204);
  });
});

describe('legal hold', () => {
  it('ON keeps a document (DELETE 409 DOCUMENT_ON_LEGAL_HOLD), shows in the metadata, is idempotent, and OFF lets it go', async () => {
    const id = uniqueId('held');
    expect((await put(id, bearer(keys.plain), randomBytes(5000))).statusCode).toBe(201);

    const placed = await hold(id, 'ON');
    expect(placed.statusCode).toBe(200);
    expect(placed.json()).toMatchObject({ id, legalHold: 'ON', status: 'ACTIVE' });
    expect((await hold(id, 'ON')).json().legalHold).toBe('ON');
    expect((await metadataOf(id)).json().legalHold).toBe('ON');
    expectProblem(await remove(id), 409, 'DOCUMENT_ON_LEGAL_HOLD');
    expect((await app.inject({ method: 'GET', url: `/documents/${id}`, headers: bearer(keys.plain) })).statusCode).toBe(200);

    const lifted = await hold(id, 'OFF');
    expect(lifted.json().legalHold).toBe('OFF');
    expect((await hold(id, 'OFF')).json().legalHold).toBe('OFF');
    expect((await metadataOf(id)).json().legalHold).toBe('OFF');
    expect((await remove(id)).statusCode).toBe(204);
    expectProblem(await hold(id, 'ON'), 404, 'DOCUMENT_NOT_FOUND');
  });

  it('outlasts a retention that has ended, and a retained document can be held too', async () => {
    const id = uniqueId('both');
    expect((await put(id, { ...bearer(keys.plain), 'retain-until': inAnHour() })).statusCode).toBe(201);
    expect((await hold(id, 'ON')).statusCode).toBe(200);
    const store = new DocumentStore({ dynamo: aws.dynamo, table: testConfig().DOCUMENTS_TABLE, tombstoneSeconds: 60, region: 'us-east-1' });
    expect(await store.delete(tenants.keeper, id, Date.now() + 2 * 3600_000)).toEqual({ outcome: 'held' });
    expectProblem(await remove(id), 409, 'DOCUMENT_ON_LEGAL_HOLD');
  });

  it('may be changed only by a key marked :legal-hold (403 FORBIDDEN otherwise), each change logged and counted', async () => {
    const id = uniqueId('scoped');
    expect((await put(id, bearer(keys.plain))).statusCode).toBe(201);
    const counted = async (status: string) => {
      const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      return Number(new RegExp(`^document_legal_hold_changes_total\\{status="${status}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    };
    const before = await counted('ON');
    expectProblem(await hold(id, 'ON', keys.plain), 403, 'FORBIDDEN');
    expect((await metadataOf(id)).json().legalHold).toBe('OFF');
    expect(await counted('ON')).toBe(before);
    expect((await hold(id, 'ON', keys.holder)).statusCode).toBe(200);
    expect(await counted('ON')).toBe(before + 1);
    // Another tenant's key without the scope: refused before anything is looked up.
    expectProblem(await hold(id, 'OFF', keys.other), 403, 'FORBIDDEN');
    expect((await metadataOf(id)).json().legalHold).toBe('ON');
  });

  it("is another tenant's business (404 for its key, like an id that never existed); each change is logged with the key id", async () => {
    const lines: Record<string, unknown>[] = [];
    const config = testConfig({
      AUTH_MODE: 'api-key',
      API_KEYS: `${tenants.keeper}:${hashApiKey(keys.holder)}:legal-hold,${tenants.other}:${hashApiKey(keys.other)}:legal-hold`,
      RATE_LIMIT_PER_MINUTE: 1_000_000,
      LOG_LEVEL: 'info',
    });
    const logged = Fastify({ ...serverOptions(config), logger: { level: 'info', stream: { write: (line: string) => void lines.push(JSON.parse(line)) } } });
    await logged.register(appPlugin, { config });
    await logged.ready();
    try {
      const id = uniqueId('mine');
      expect((await logged.inject({ method: 'PUT', url: `/documents/${id}`, headers: bearer(keys.holder), payload: 'mine' })).statusCode).toBe(201);
      const theirs = await logged.inject({ method: 'PUT', url: `/documents/${id}/legal-hold`, headers: bearer(keys.other), payload: { status: 'ON' } });
      expectProblem(theirs, 404, 'DOCUMENT_NOT_FOUND');
      expect((await logged.inject({ method: 'GET', url: `/documents/${id}/metadata`, headers: bearer(keys.holder) })).json().legalHold).toBe('OFF');

      const placed = await logged.inject({ method: 'PUT', url: `/documents/${id}/legal-hold`, headers: bearer(keys.holder), payload: { status: 'ON' } });
      expect(placed.statusCode).toBe(200);
      const audit = lines.filter((line) => line.audit === 'legal-hold');
      expect(audit).toEqual([expect.objectContaining({ documentId: id, status: 'ON', keyId: hashApiKey(keys.holder).slice(0, 12), requestId: placed.headers['x-request-id'] })]);
      // The key itself is never logged, nor its full hash.
      expect(JSON.stringify(lines)).not.toContain(keys.holder);
      expect(JSON.stringify(lines)).not.toContain(hashApiKey(keys.holder));
    } finally {
      await logged.close();
    }
  });

  it.each([
    ['an unknown status', { status: 'MAYBE' }, 400, 'VALIDATION_FAILED'],
    ['no status', {}, 400, 'VALIDATION_FAILED'],
    ['another property', { status: 'ON', until: 'forever' }, 400, 'VALIDATION_FAILED'],
  ])('refuses %s with a problem, and changes nothing', async (_case, body, status, code) => {
    const id = uniqueId('bad-hold');
    expect((await put(id, bearer(keys.plain))).statusCode).toBe(201);
    expectProblem(await app.inject({ method: 'PUT', url: `/documents/${id}/legal-hold`, headers: bearer(keys.holder), payload: body }), status, code);
    expect((await metadataOf(id)).json().legalHold).toBe('OFF');
  });

  it('refuses a body that is not JSON (415), malformed JSON (400) and a bad id (400)', async () => {
    const id = uniqueId('bad-hold');
    expect((await put(id, bearer(keys.plain))).statusCode).toBe(201);
    const url = `/documents/${id}/legal-hold`;
    expectProblem(await app.inject({ method: 'PUT', url, headers: { ...bearer(keys.holder), 'content-type': 'text/plain' }, payload: 'ON' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectProblem(await app.inject({ method: 'PUT', url, headers: { ...bearer(keys.holder), 'content-type': 'application/json' }, payload: '{"status":' }), 400, 'MALFORMED_JSON');
    expectProblem(await app.inject({ method: 'PUT', url: '/documents/no%20spaces/legal-hold', headers: bearer(keys.holder), payload: { status: 'ON' } }), 400, 'INVALID_DOCUMENT_ID');
    expectProblem(await app.inject({ method: 'PUT', url: `/documents/${uniqueId('never')}/legal-hold`, headers: bearer(keys.holder), payload: { status: 'ON' } }), 404, 'DOCUMENT_NOT_FOUND');
    expect((await metadataOf(id)).json().legalHold).toBe('OFF');
  });
});
