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

  it('and so does a PUT retried on its id: the same bytes as TEXT/PLAIN after text/plain are the same document (200), another type a conflict', async () => {
    const id = uniqueId('case-put');
    const put = (type: string) => app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'same bytes', headers: { 'content-type': type } });
    expect((await put('text/plain; charset=utf-8')).statusCode).toBe(201);
    const again = await put('TEXT/Plain;Charset=UTF-8');
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json().contentType).toBe('text/plain; charset=utf-8');
    expectProblem(await put('text/html'), 409, 'DOCUMENT_EXISTS');
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

describe('conditional requests (RFC 9110 §13)', () => {
  const put = (id: string, payload: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'PUT', url: `/documents/${id}`, payload, headers: { 'content-type': 'text/plain', ...headers } });

  it('If-None-Match: * on PUT creates only: 201 for a new id, 412 over a document, even these very bytes', async () => {
    const id = uniqueId('only');
    expect((await put(id, 'first', { 'if-none-match': '*' })).statusCode).toBe(201);
    expectProblem(await put(id, 'first', { 'if-none-match': '*' }), 412, 'PRECONDITION_FAILED');
    expectProblem(await put(id, 'other', { 'if-none-match': '*' }), 412, 'PRECONDITION_FAILED');
    // Without the condition the retry is still the safe 200.
    expect((await put(id, 'first')).statusCode).toBe(200);
  });

  it('If-None-Match: * holds to the commit: of two create-only PUTs of one new id, one is 201 and the other 412', async () => {
    const id = uniqueId('race');
    const answers = await Promise.all([put(id, 'a', { 'if-none-match': '*' }), put(id, 'a', { 'if-none-match': '*' })]);
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([201, 412]);
  });

  it('two creates of one id in one millisecond are told apart: create-only is 201 and 412, a plain PUT 201 and 200', async () => {
    // A clock the test stops during the creates: both are made at one instant,
    // the case where the time of a create cannot tell whose commit is stored.
    let stopped: number | undefined;
    const still = await testApp({ config: { INLINE_CONTENT_MAX_BYTES: 1024 }, overrides: { now: () => stopped ?? Date.now() } });
    stopped = Date.now();
    try {
      const putAt = (id: string, headers: Record<string, string> = {}) =>
        still.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'same', headers: { 'content-type': 'text/plain', ...headers } });
      for (const [headers, statuses] of [[{ 'if-none-match': '*' }, [201, 412]], [{}, [200, 201]]] as const) {
        const id = uniqueId('instant');
        // One after the other: the second's conditional put fails on the first's commit, deterministically.
        const first = await putAt(id, headers);
        const second = await putAt(id, headers);
        expect([first.statusCode, second.statusCode].sort()).toEqual(statuses);
      }
    } finally {
      await still.close();
    }
  });

  it('If-None-Match: * on a large PUT is 412 before the body is uploaded', async () => {
    const id = uniqueId('onlybig');
    const body = 'x'.repeat(5000);
    expect((await put(id, body)).statusCode).toBe(201);
    expectProblem(await put(id, body, { 'if-none-match': '*' }), 412, 'PRECONDITION_FAILED');
  });

  it('If-Match on GET and HEAD: strong comparison, * for any document; 412 otherwise', async () => {
    const created = await create('conditional read');
    const url = `/documents/${created.json().id}`;
    const etag = created.headers.etag as string;
    for (const ifMatch of [etag, '*', `"nope", ${etag}`]) {
      const read = await app.inject({ method: 'GET', url, headers: { 'if-match': ifMatch } });
      expect(read.statusCode, ifMatch).toBe(200);
      expect(read.body).toBe('conditional read');
    }
    for (const ifMatch of ['"nope"', `W/${etag}`]) {
      expectProblem(await app.inject({ method: 'GET', url, headers: { 'if-match': ifMatch } }), 412, 'PRECONDITION_FAILED');
      const head = await app.inject({ method: 'HEAD', url, headers: { 'if-match': ifMatch } });
      expect(head.statusCode).toBe(412);
      expect(head.headers.etag).toBeUndefined();
    }
    // The second read is a memory hit: the same answer.
    expectProblem(await app.inject({ method: 'GET', url, headers: { 'if-match': '"nope"' } }), 412, 'PRECONDITION_FAILED');
  });

  it('If-Match takes precedence over If-Unmodified-Since, and If-None-Match comes after both', async () => {
    const created = await create('precedence');
    const url = `/documents/${created.json().id}`;
    const etag = created.headers.etag as string;
    const past = new Date(Date.parse(created.json().createdAt) - 86_400_000).toUTCString();
    // Unmodified-Since a day before the creation: 412 alone, ignored next to a matching If-Match.
    expectProblem(await app.inject({ method: 'GET', url, headers: { 'if-unmodified-since': past } }), 412, 'PRECONDITION_FAILED');
    expect((await app.inject({ method: 'GET', url, headers: { 'if-match': etag, 'if-unmodified-since': past } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url, headers: { 'if-match': etag, 'if-none-match': etag } })).statusCode).toBe(304);
    expectProblem(await app.inject({ method: 'GET', url, headers: { 'if-match': '"nope"', 'if-none-match': etag } }), 412, 'PRECONDITION_FAILED');
  });

  it('If-Unmodified-Since against the creation time, to the second; a date that does not parse is ignored', async () => {
    const created = await create('dated');
    const url = `/documents/${created.json().id}`;
    const createdAt = Date.parse(created.json().createdAt);
    const sameSecond = new Date(createdAt).toUTCString();
    const later = new Date(createdAt + 86_400_000).toUTCString();
    const earlier = new Date(createdAt - 1000).toUTCString();
    for (const date of [sameSecond, later, 'not a date', '2026-01-01']) {
      expect((await app.inject({ method: 'GET', url, headers: { 'if-unmodified-since': date } })).statusCode, date).toBe(200);
    }
    expectProblem(await app.inject({ method: 'GET', url, headers: { 'if-unmodified-since': earlier } }), 412, 'PRECONDITION_FAILED');
  });

  it('DELETE with a condition that does not hold is 412 and deletes nothing; one that holds deletes', async () => {
    const created = await create('conditional delete');
    const url = `/documents/${created.json().id}`;
    const etag = created.headers.etag as string;
    expectProblem(await app.inject({ method: 'DELETE', url, headers: { 'if-match': '"nope"' } }), 412, 'PRECONDITION_FAILED');
    expectProblem(await app.inject({ method: 'DELETE', url, headers: { 'if-none-match': etag } }), 412, 'PRECONDITION_FAILED');
    expect((await app.inject({ method: 'GET', url })).statusCode).toBe(200);
    expect((await app.inject({ method: 'DELETE', url, headers: { 'if-match': etag } })).statusCode).toBe(204);
    // Deleted: the delete already happened, whatever the condition.
    expect((await app.inject({ method: 'DELETE', url, headers: { 'if-match': '"nope"' } })).statusCode).toBe(204);
    // Never existed: the 404 it would be without conditions (§13.2.1).
    expectProblem(await app.inject({ method: 'DELETE', url: `/documents/${uniqueId()}`, headers: { 'if-match': '*' } }), 404, 'DOCUMENT_NOT_FOUND');
  });

  it('PUT with If-Match on an id that holds no document is 412; with its ETag, the retry it is', async () => {
    const id = uniqueId('ifm');
    expectProblem(await put(id, 'body', { 'if-match': '*' }), 412, 'PRECONDITION_FAILED');
    expect((await put(id, 'body')).statusCode).toBe(201);
    const etag = (await app.inject({ method: 'GET', url: `/documents/${id}` })).headers.etag as string;
    expect((await put(id, 'body', { 'if-match': etag })).statusCode).toBe(200);
    expectProblem(await put(id, 'body', { 'if-match': '"nope"' }), 412, 'PRECONDITION_FAILED');
  });
});

describe('Cache-Control', () => {
  it('a document read is private, no-cache (kept, revalidated: a delete is final); the rest no-store; the OpenAPI document public', async () => {
    const created = await create('cached?');
    expect(created.headers['cache-control']).toBe('no-store');
    const url = `/documents/${created.json().id}`;
    const etag = created.headers.etag as string;
    for (const headers of [{}, { range: 'bytes=0-1' }, { 'if-none-match': etag }]) {
      const read = await app.inject({ method: 'GET', url, headers });
      expect([200, 206, 304]).toContain(read.statusCode);
      expect(read.headers['cache-control'], JSON.stringify(headers)).toBe('private, no-cache');
    }
    expect((await app.inject({ method: 'HEAD', url })).headers['cache-control']).toBe('private, no-cache');
    expect((await app.inject({ method: 'GET', url: `${url}/metadata` })).headers['cache-control']).toBe('no-store');
    expect((await app.inject({ method: 'GET', url: '/documents' })).headers['cache-control']).toBe('no-store');
    const order = await app.inject({
      method: 'POST',
      url: '/orders',
      payload: { customerId: 'CUST-00000023', items: [{ sku: `CC-${uniqueId().slice(2, 10).toUpperCase()}`, quantity: 1 }] },
    });
    expect(order.headers['cache-control']).toBe('no-store');
    expect((await app.inject({ method: 'GET', url: order.headers.location as string })).headers['cache-control']).toBe('no-store');
    expect((await app.inject({ method: 'GET', url: '/openapi.json' })).headers['cache-control']).toBe('public, max-age=300');
    // Errors too: a cached 404 would hide a document created after it.
    expect((await app.inject({ method: 'GET', url: `/documents/${uniqueId()}` })).headers['cache-control']).toBe('no-store');
    expect((await app.inject({ method: 'GET', url, headers: { range: 'bytes=99-' } })).headers['cache-control']).toBe('no-store');
  });
});

describe('the OpenAPI document says what the service does', () => {
  let spec: Record<string, any>;
  beforeAll(async () => {
    spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
  });
  const header = (operation: Record<string, any>, name: string) => operation.parameters.find((p: { in: string; name: string }) => p.in === 'header' && p.name === name);

  it('Idempotency-Key is 1-255 characters, as parsed', () => {
    for (const operation of [spec.paths['/documents'].post, spec.paths['/orders'].post]) {
      expect(header(operation, 'idempotency-key').schema).toMatchObject({ minLength: 1, maxLength: 255 });
    }
  });

  it('a document body is at least one byte', () => {
    for (const operation of [spec.paths['/documents'].post, spec.paths['/documents/{id}'].put]) {
      expect(operation.requestBody.content['*/*'].schema.minLength).toBe(1);
    }
  });

  it('every operation documents 431, and the document operations 412 where conditions apply', () => {
    for (const [path, item] of Object.entries(spec.paths) as [string, Record<string, any>][]) {
      for (const [method, operation] of Object.entries(item)) {
        if (method === 'parameters') continue;
        expect(Object.keys(operation.responses), `${method} ${path}`).toContain('431');
      }
    }
    for (const method of ['get', 'head', 'put', 'delete']) expect(Object.keys(spec.paths['/documents/{id}'][method].responses), method).toContain('412');
    expect(header(spec.paths['/documents/{id}'].delete, 'if-match')).toBeDefined();
    expect(header(spec.paths['/documents/{id}'].put, 'if-none-match')).toBeDefined();
  });

  it('every HEAD the server serves is documented, and served', async () => {
    const created = await create('head me');
    const served = {
      '/documents': 200,
      [`/documents/${created.json().id}`]: 200,
      [`/documents/${created.json().id}/metadata`]: 200,
      '/health/live': 200,
      '/openapi.json': 200,
    };
    for (const [url, status] of Object.entries(served)) expect((await app.inject({ method: 'HEAD', url })).statusCode, url).toBe(status);
    for (const path of ['/documents', '/documents/{id}', '/documents/{id}/metadata', '/orders/{orderId}', '/health/live', '/openapi.json']) {
      expect(spec.paths[path].head, path).toBeDefined();
      expect(spec.paths[path].head.operationId, path).toMatch(/^head/);
    }
  });
});
