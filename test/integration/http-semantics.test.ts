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
