import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { testApp, uniqueId } from '../support/app.ts';
import { expectProblem } from '../support/problem.ts';

// Every row of the Documents table of the contract, through the real app on
// the real local stack.

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp({ config: { INLINE_CONTENT_MAX_BYTES: 1024, MAX_DOCUMENT_BYTES: 200_000 } });
});
afterAll(async () => {
  await app.close();
});

const post = (payload: string | Buffer, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/documents', payload, headers: { 'content-type': 'text/plain', ...headers } });

describe('POST /documents', () => {
  it('creates a document with a UUIDv7 id, Location, ETag and metadata', async () => {
    const before = Date.now();
    const response = await post('hello world');
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(body).toEqual({
      id: body.id,
      status: 'ACTIVE',
      contentType: 'text/plain',
      size: 11,
      checksum: sha256('hello world'),
      createdAt: expect.any(String),
      legalHold: 'OFF',
    });
    expect(Date.parse(body.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(response.headers.location).toBe(`/documents/${body.id}`);
    expect(response.headers.etag).toBe(`"${sha256('hello world')}"`);
  });

  it('defaults the content type to application/octet-stream', async () => {
    const response = await app.inject({ method: 'POST', url: '/documents', payload: Buffer.from([1, 2, 3]) });
    expect(response.statusCode).toBe(201);
    expect(response.json().contentType).toBe('application/octet-stream');
  });

  it('stores JSON bodies as opaque bytes, not parsed', async () => {
    const json = '{ "b": 1,   "a": 2 }';
    const created = await post(json, { 'content-type': 'application/json' });
    expect(created.statusCode).toBe(201);
    const read = await app.inject({ method: 'GET', url: `/documents/${created.json().id}` });
    expect(read.body).toBe(json);
    expect(read.headers['content-type']).toBe('application/json');
  });

  it('replays the original 201 for the same key, body and content type', async () => {
    const key = uniqueId('key');
    const first = await post('same', { 'idempotency-key': key });
    const second = await post('same', { 'idempotency-key': `"${key}"` });
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json()).toEqual(first.json());
    expect(second.headers.location).toBe(first.headers.location);
  });

  it('answers 422 for the same key with another body or content type, and writes nothing', async () => {
    const key = uniqueId('key');
    const first = await post('original', { 'idempotency-key': key });
    const otherBody = await post('changed', { 'idempotency-key': key });
    expectProblem(otherBody, 422, 'IDEMPOTENCY_KEY_REUSED');
    const otherType = await post('original', { 'idempotency-key': key, 'content-type': 'text/html' });
    expectProblem(otherType, 422, 'IDEMPOTENCY_KEY_REUSED');
    const replay = await post('original', { 'idempotency-key': key });
    expect(replay.json().id).toBe(first.json().id);
  });

  it('scopes keys by route: the same key on PUT is not a reuse', async () => {
    const key = uniqueId('key');
    await post('a', { 'idempotency-key': key });
    const put = await app.inject({ method: 'PUT', url: `/documents/${uniqueId()}`, payload: 'b', headers: { 'idempotency-key': key } });
    expect(put.statusCode).toBe(201);
  });

  it.each([
    ['empty', ''],
    ['too long', 'k'.repeat(256)],
    ['non-ASCII', 'ключ'],
    ['a broken RFC 8941 string', '"abc'],
  ])('refuses a %s Idempotency-Key with 400', async (_name, key) => {
    const response = await post('x', { 'idempotency-key': key });
    expectProblem(response, 400, 'INVALID_IDEMPOTENCY_KEY');
  });

  it('refuses an empty body with 400 EMPTY_DOCUMENT', async () => {
    expectProblem(await post(''), 400, 'EMPTY_DOCUMENT');
    expectProblem(await app.inject({ method: 'POST', url: '/documents' }), 400, 'EMPTY_DOCUMENT');
  });

  it('refuses a body over MAX_DOCUMENT_BYTES with 413 and writes nothing', async () => {
    const key = uniqueId('key');
    const response = await post(Buffer.alloc(200_001, 7), { 'idempotency-key': key });
    expectProblem(response, 413, 'PAYLOAD_TOO_LARGE');
    // The key was never used: a valid body with it is a fresh create, not a 422.
    const fresh = await post('small', { 'idempotency-key': key });
    expect(fresh.statusCode).toBe(201);
    expect(fresh.headers['idempotent-replayed']).toBeUndefined();
  });

  it('accepts a body of exactly MAX_DOCUMENT_BYTES, stored in S3', async () => {
    const content = Buffer.alloc(200_000, 9);
    const response = await post(content, { 'content-type': 'application/octet-stream' });
    expect(response.statusCode).toBe(201);
    const read = await app.inject({ method: 'GET', url: `/documents/${response.json().id}` });
    expect(read.rawPayload.equals(content)).toBe(true);
  });

  it('refuses a malformed Content-Type with 415', async () => {
    expectProblem(await post('x', { 'content-type': 'not a media type' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('PUT /documents/{id}', () => {
  it('creates with 201 when the id is new', async () => {
    const id = uniqueId('put');
    const response = await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'v1', headers: { 'content-type': 'text/plain' } });
    expect(response.statusCode).toBe(201);
    expect(response.headers.location).toBe(`/documents/${id}`);
    expect(response.json()).toMatchObject({ id, status: 'ACTIVE', size: 2, checksum: sha256('v1'), contentType: 'text/plain' });
  });

  it('answers 200 with the same metadata for an identical retry', async () => {
    const id = uniqueId('put');
    const first = await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'v1', headers: { 'content-type': 'text/plain' } });
    const again = await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'v1', headers: { 'content-type': 'text/plain' } });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(first.json());
  });

  it('answers 409 DOCUMENT_EXISTS for other content or type, and keeps the original', async () => {
    const id = uniqueId('put');
    const big = Buffer.alloc(5000, 1);
    await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: big });
    const otherContent = await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: Buffer.alloc(5000, 2) });
    expectProblem(otherContent, 409, 'DOCUMENT_EXISTS');
    const otherType = await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: big, headers: { 'content-type': 'image/png' } });
    expectProblem(otherType, 409, 'DOCUMENT_EXISTS');
    const read = await app.inject({ method: 'GET', url: `/documents/${id}` });
    expect(read.rawPayload.equals(big)).toBe(true);
  });

  it('answers 409 DOCUMENT_DELETED for a deleted id', async () => {
    const id = uniqueId('put');
    await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'v1' });
    expect((await app.inject({ method: 'DELETE', url: `/documents/${id}` })).statusCode).toBe(204);
    const again = await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'v1' });
    expectProblem(again, 409, 'DOCUMENT_DELETED');
  });

  it.each(['a b', 'a.b', 'x'.repeat(129), '%2E%2E%2Fetc'])('refuses the id %j with 400 INVALID_DOCUMENT_ID', async (id) => {
    const response = await app.inject({ method: 'PUT', url: `/documents/${encodeURIComponent(id)}`, payload: 'v' });
    expectProblem(response, 400, 'INVALID_DOCUMENT_ID');
  });

  it('refuses an empty body and an oversized one', async () => {
    expectProblem(await app.inject({ method: 'PUT', url: `/documents/${uniqueId()}`, payload: '' }), 400, 'EMPTY_DOCUMENT');
    expectProblem(
      await app.inject({ method: 'PUT', url: `/documents/${uniqueId()}`, payload: Buffer.alloc(200_001) }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
  });
});

describe('GET and HEAD /documents/{id}', () => {
  it('serves the exact bytes with type, ETag, length and Cache-Status (miss, then hit)', async () => {
    const content = Buffer.from([0xff, 0x00, 0x10, 0x80, 0x7f]);
    const created = await post(content, { 'content-type': 'application/x-thing; v=1' });
    const url = `/documents/${created.json().id}`;
    const first = await app.inject({ method: 'GET', url });
    expect(first.statusCode).toBe(200);
    expect(first.rawPayload.equals(content)).toBe(true);
    expect(first.headers['content-type']).toBe('application/x-thing; v=1');
    expect(first.headers['content-length']).toBe('5');
    expect(first.headers.etag).toBe(`"${sha256(content)}"`);
    expect(first.headers['cache-status']).toMatch(/; fwd=miss$/);
    const second = await app.inject({ method: 'GET', url });
    expect(second.headers['cache-status']).toMatch(/; hit$/);
    expect(second.rawPayload.equals(content)).toBe(true);
  });

  it('serves S3-stored content the same way', async () => {
    const content = Buffer.alloc(50_000, 3);
    const created = await post(content);
    const read = await app.inject({ method: 'GET', url: `/documents/${created.json().id}` });
    expect(read.statusCode).toBe(200);
    expect(read.rawPayload.equals(content)).toBe(true);
  });

  it('answers 304 to a matching If-None-Match, 200 to another', async () => {
    const created = await post('etag me');
    const url = `/documents/${created.json().id}`;
    const etag = created.headers.etag as string;
    const notModified = await app.inject({ method: 'GET', url, headers: { 'if-none-match': etag } });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.body).toBe('');
    expect(notModified.headers.etag).toBe(etag);
    const listed = await app.inject({ method: 'GET', url, headers: { 'if-none-match': `"nope", W/${etag}` } });
    expect(listed.statusCode).toBe(304);
    const other = await app.inject({ method: 'GET', url, headers: { 'if-none-match': '"other"' } });
    expect(other.statusCode).toBe(200);
  });

  it('answers HEAD as GET without the body', async () => {
    const created = await post('head me');
    const head = await app.inject({ method: 'HEAD', url: `/documents/${created.json().id}` });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe('7');
    expect(head.headers.etag).toBe(created.headers.etag);
    expect(head.headers['content-type']).toBe('text/plain');
  });

  it('answers 404 DOCUMENT_NOT_FOUND for an unknown id, and 400 for a malformed one', async () => {
    expectProblem(await app.inject({ method: 'GET', url: `/documents/${uniqueId()}` }), 404, 'DOCUMENT_NOT_FOUND');
    expectProblem(await app.inject({ method: 'GET', url: '/documents/bad.id' }), 400, 'INVALID_DOCUMENT_ID');
  });
});

describe('GET /documents/{id}/metadata', () => {
  it('returns the metadata, and 404 when unknown or deleted', async () => {
    const created = await post('meta');
    const url = `/documents/${created.json().id}/metadata`;
    const response = await app.inject({ method: 'GET', url });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual(created.json());
    await app.inject({ method: 'DELETE', url: `/documents/${created.json().id}` });
    expectProblem(await app.inject({ method: 'GET', url }), 404, 'DOCUMENT_NOT_FOUND');
    expectProblem(await app.inject({ method: 'GET', url: `/documents/${uniqueId()}/metadata` }), 404, 'DOCUMENT_NOT_FOUND');
  });
});

describe('DELETE /documents/{id}', () => {
  it('answers 204, then 204 again, and the document is gone from every read', async () => {
    const created = await post(Buffer.alloc(20_000, 5));
    const url = `/documents/${created.json().id}`;
    expect((await app.inject({ method: 'GET', url })).statusCode).toBe(200); // now cached
    const first = await app.inject({ method: 'DELETE', url });
    expect(first.statusCode).toBe(204);
    expect(first.body).toBe('');
    expect((await app.inject({ method: 'DELETE', url })).statusCode).toBe(204);
    expectProblem(await app.inject({ method: 'GET', url }), 404, 'DOCUMENT_NOT_FOUND');
    expect((await app.inject({ method: 'HEAD', url })).statusCode).toBe(404);
  });

  it('answers 404 for an id that never existed', async () => {
    expectProblem(await app.inject({ method: 'DELETE', url: `/documents/${uniqueId()}` }), 404, 'DOCUMENT_NOT_FOUND');
  });

  it('keeps the idempotent POST replay pointing at the deleted id (no new document)', async () => {
    const key = uniqueId('key');
    const created = await post('once', { 'idempotency-key': key });
    await app.inject({ method: 'DELETE', url: `/documents/${created.json().id}` });
    const replay = await post('once', { 'idempotency-key': key });
    expect(replay.json().id).toBe(created.json().id);
    expect(replay.headers['idempotent-replayed']).toBe('true');
  });
});
