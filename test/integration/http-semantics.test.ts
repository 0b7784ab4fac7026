import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { testApp, uniqueId } from '../support/app.ts';
import { expectProblem } from '../support/problem.ts';

// What a careful HTTP client expects of the documents and orders routes
// (issue 22, "HTTP semantics"), through the real app on the local stack.

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp({ config: { INLINE_CONTENT_MAX_BYTES: 1024, MAX_DOCUMENT_BYTES: 200_000 } });
});
afterAll(async () => {
  await app.close();
});

const digest = (algorithm: 'sha256' | 'sha512', data: string | Buffer) => createHash(algorithm).update(data).digest('base64');

const create = (payload: string | Buffer, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/documents', payload, headers: { 'content-type': 'text/plain', ...headers } });

describe('Range', () => {
  it('a first byte past 2^53 is 416, never a silent 200 of the whole', async () => {
    const url = `/documents/${(await create('ranged')).json().id}`;
    const response = await app.inject({ method: 'GET', url, headers: { range: 'bytes=99999999999999999999-' } });
    expectProblem(response, 416, 'RANGE_NOT_SATISFIABLE');
    expect(response.headers['content-range']).toBe('bytes */6');
    // A last byte past 2^53 is past the end like any other: cut to it.
    const cut = await app.inject({ method: 'GET', url, headers: { range: 'bytes=2-99999999999999999999' } });
    expect(cut.statusCode).toBe(206);
    expect(cut.body).toBe('nged');
  });
});

describe('digests', () => {
  const body = 'digest me';
  it.each(['content-digest', 'repr-digest'])('%s with only sha-512 is checked: a wrong one is 400 DIGEST_MISMATCH and stores nothing', async (field) => {
    const id = uniqueId('d512');
    const wrong = await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: body, headers: { 'content-type': 'text/plain', [field]: `sha-512=:${digest('sha512', 'other')}:` } });
    const problem = expectProblem(wrong, 400, 'DIGEST_MISMATCH');
    expect(problem.detail).toContain('sha-512');
    expectProblem(await app.inject({ method: 'GET', url: `/documents/${id}` }), 404, 'DOCUMENT_NOT_FOUND');
    const right = await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: body, headers: { 'content-type': 'text/plain', [field]: `sha-512=:${digest('sha512', body)}:` } });
    expect(right.statusCode, right.body).toBe(201);
  });

  it('a large body is checked against its sha-512 as it streams to S3', async () => {
    const large = Buffer.alloc(50_000, 7);
    const wrong = await create(large, { 'content-digest': `sha-512=:${digest('sha512', Buffer.alloc(50_000, 8))}:` });
    expectProblem(wrong, 400, 'DIGEST_MISMATCH');
    const right = await create(large, { 'content-digest': `sha-256=:${digest('sha256', large)}:, sha-512=:${digest('sha512', large)}:` });
    expect(right.statusCode, right.body).toBe(201);
  });

  it('a digest naming no algorithm the service supports is 400 INVALID_DIGEST, naming those it does', async () => {
    const problem = expectProblem(await create(body, { 'content-digest': 'md5=:AAAAAAAAAAAAAAAAAAAAAA==:' }), 400, 'INVALID_DIGEST');
    expect(problem.detail).toContain('sha-256');
    expect(problem.detail).toContain('sha-512');
  });

  it('a resumable upload, which checks sha-256 only, refuses a sha-512 alone rather than leave it unchecked', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/documents',
      headers: { 'tus-resumable': '1.0.0', 'upload-length': '5', 'repr-digest': `sha-512=:${digest('sha512', 'hello')}:` },
    });
    const problem = expectProblem(response, 400, 'INVALID_DIGEST');
    expect(problem.detail).not.toContain('sha-512');
  });
});

describe('Idempotency-Key fingerprints', () => {
  it('compare the media type as RFC 9110 does: TEXT/PLAIN after text/plain with the same key and bytes is a replay', async () => {
    const key = uniqueId('case');
    const first = await create('same bytes', { 'content-type': 'text/plain; charset=utf-8', 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    const again = await create('same bytes', { 'content-type': 'TEXT/Plain;Charset=UTF-8', 'idempotency-key': key });
    expect(again.statusCode, again.body).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    // Another type with the key is still another request.
    expectProblem(await create('same bytes', { 'content-type': 'text/html', 'idempotency-key': key }), 422, 'IDEMPOTENCY_KEY_REUSED');
  });
});

describe('bodies the service would misread are 415, saying what is taken', () => {
  it.each(['gzip', 'br', 'identity, gzip'])('a document create with Content-Encoding %s is refused, never stored as the content', async (coding) => {
    const id = uniqueId('enc');
    const put = await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'compressed?', headers: { 'content-type': 'text/plain', 'content-encoding': coding } });
    const problem = expectProblem(put, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(problem.detail).toContain('identity');
    expect(put.headers['accept-encoding']).toBe('identity');
    expectProblem(await app.inject({ method: 'GET', url: `/documents/${id}` }), 404, 'DOCUMENT_NOT_FOUND');
    expectProblem(await create('compressed?', { 'content-encoding': coding }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('Content-Encoding: identity is the bytes as sent, and accepted', async () => {
    expect((await create('plain', { 'content-encoding': 'Identity' })).statusCode).toBe(201);
  });

  it('a resumable upload in a content coding is refused too', async () => {
    const response = await app.inject({ method: 'POST', url: '/documents', headers: { 'tus-resumable': '1.0.0', 'upload-length': '5', 'content-encoding': 'gzip' } });
    expectProblem(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('a malformed document Content-Type names what a document takes', async () => {
    const problem = expectProblem(await create('x', { 'content-type': 'not a media type' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(problem.detail).toContain('type/subtype');
  });

  const order = () => JSON.stringify({ customerId: 'CUST-00000022', items: [{ sku: `SEM-${uniqueId().slice(2, 10).toUpperCase()}`, quantity: 1 }] });
  const placeOrder = (payload: string, contentType: string) => app.inject({ method: 'POST', url: '/orders', payload, headers: { 'content-type': contentType } });

  it.each(['application/json; charset=iso-8859-1', 'application/json; charset="utf-16"', 'text/plain', 'application/xml'])('an order as %s is 415 naming application/json in UTF-8', async (type) => {
    const problem = expectProblem(await placeOrder(order(), type), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(problem.detail).toContain('application/json');
    expect(problem.detail).toContain('utf-8');
  });

  it.each(['application/json', 'application/json; charset=utf-8', 'Application/JSON;Charset="UTF-8"'])('an order as %s is taken', async (type) => {
    const response = await placeOrder(order(), type);
    expect(response.statusCode, response.body).toBe(201);
  });

  it('an order body without Content-Type is 415 naming application/json', async () => {
    const response = await app.inject({ method: 'POST', url: '/orders', payload: Buffer.from(order()) });
    expect(expectProblem(response, 415, 'UNSUPPORTED_MEDIA_TYPE').detail).toContain('application/json');
  });

  it('an order over 1024 bytes is 413 naming the limit, declared or chunked', async () => {
    const padded = order().replace('{', `{${' '.repeat(1100)}`);
    const problem = expectProblem(await placeOrder(padded, 'application/json'), 413, 'PAYLOAD_TOO_LARGE');
    expect(problem.detail).toContain('1024 bytes');
  });
});
