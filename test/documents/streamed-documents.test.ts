import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import type { Config } from '../../src/config.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';
import { expectProblem } from '../support/problem.ts';
import { bucketContents, eventually, ownTenant } from './support.ts';

// The Documents and Large documents rows of the contract with bodies that
// are streamed: inline ones, ones stored in S3 and read whole (cached), and
// ones above DOCUMENT_CACHE_MAX_BYTES that always stream from S3, including
// multipart uploads (bodies over one 5 MiB part).

const INLINE = 1024;
const CACHEABLE = 64 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const digestOf = (data: Buffer) => `sha-256=:${createHash('sha256').update(data).digest('base64')}:`;

const own = ownTenant('streamed');
let config: Config;
let aws: AwsClients;
let app: FastifyInstance;
/** Range header of every GetObject the service sent for streamed content. */
const objectRanges: (string | undefined)[] = [];

beforeAll(async () => {
  const settings = {
    ...own.config,
    INLINE_CONTENT_MAX_BYTES: INLINE,
    DOCUMENT_CACHE_MAX_BYTES: CACHEABLE,
    MAX_DOCUMENT_BYTES: 64 * 1024 * 1024,
    MAX_CONCURRENT_UPLOADS: 32,
    // Twenty uploads of one tenant at once below: its share is the whole process's here.
    MAX_CONCURRENT_UPLOADS_PER_TENANT: 32,
    // These tests are about documents, not shedding: on a loaded machine the event loop can go
    // unsampled for a moment, which under-pressure takes for overload.
    LOAD_SHED_EVENT_LOOP_DELAY_MS: 0,
  };
  config = testConfig(settings);
  aws = createAwsClients(config);
  aws.s3Transfer.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'GetObjectCommand') objectRanges.push((args.input as { Range?: string }).Range);
      return next(args);
    },
    { step: 'initialize', name: 'recordObjectRanges' },
  );
  app = await testApp({ config: settings, overrides: { aws } });
});
afterAll(async () => {
  await app?.close();
  aws?.destroy();
});

const call = (options: InjectOptions) => app.inject({ ...options, headers: { ...own.headers, ...options.headers } });
const put = (id: string, body: Buffer | Readable, headers: Record<string, string> = {}) =>
  call({ method: 'PUT', url: `/documents/${id}`, payload: body, headers: { 'content-type': 'application/pdf', ...headers } });
const post = (body: Buffer | Readable, headers: Record<string, string> = {}) =>
  call({ method: 'POST', url: '/documents', payload: body, headers: { 'content-type': 'application/pdf', ...headers } });
const get = (id: string, headers: Record<string, string> = {}) => call({ method: 'GET', url: `/documents/${id}`, headers });
/** A body of unknown length, as a chunked upload sends it. */
const chunked = (data: Buffer) => Readable.from([data.subarray(0, 1000), data.subarray(1000)]);
const objectsOf = (id: string) => bucketContents(aws, config, `${own.tenant}/${id}/`);
const objectsOfTenant = async () => (await bucketContents(aws, config, `${own.tenant}/`)).objects;
/** Of the tenant's objects not there `before`, once the removals settle, exactly one is left: document `id`'s. */
async function expectOnlyNewObjectOf(id: string, before: string[]) {
  const added = await eventually(
    async () => (await objectsOfTenant()).filter((object) => !before.includes(object)),
    (objects) => objects.length === 1,
  );
  expect(added).toHaveLength(1);
  expect(added[0]!.startsWith(`${own.tenant}/${id}/`)).toBe(true);
}

describe('Range requests', () => {
  const kinds = [
    ['inline', 700],
    ['in S3, cached', 20_000],
    ['in S3, streamed', 300_000],
  ] as const;
  const documents = new Map<string, { id: string; content: Buffer; etag: string }>();

  beforeAll(async () => {
    for (const [kind, size] of kinds) {
      const id = uniqueId('range');
      const content = randomBytes(size);
      const created = await put(id, content);
      expect(created.statusCode).toBe(201);
      documents.set(kind, { id, content, etag: created.headers.etag as string });
    }
  });

  const cases: [string, (size: number) => string, (size: number) => [number, number]][] = [
    ['the first bytes', () => 'bytes=0-99', () => [0, 99]],
    ['the middle', () => 'bytes=300-449', () => [300, 449]],
    ['the last n', () => 'bytes=-77', (size) => [size - 77, size - 1]],
    ['open-ended', (size) => `bytes=${size - 200}-`, (size) => [size - 200, size - 1]],
    ['past the last byte (clipped)', (size) => `bytes=${size - 10}-${size + 1000}`, (size) => [size - 10, size - 1]],
    ['one byte', () => 'bytes=5-5', () => [5, 5]],
  ];

  for (const [kind] of kinds) {
    it.each(cases)(`${kind}: %s is a 206 with exactly those bytes`, async (_name, range, slice) => {
      const { id, content, etag } = documents.get(kind)!;
      const [start, end] = slice(content.length);
      const before = objectRanges.length;
      const response = await get(id, { range: range(content.length) });
      expect(response.statusCode).toBe(206);
      expect(response.headers['content-range']).toBe(`bytes ${start}-${end}/${content.length}`);
      expect(response.headers['content-length']).toBe(String(end - start + 1));
      expect(response.headers['accept-ranges']).toBe('bytes');
      expect(response.headers.etag).toBe(etag);
      expect(response.rawPayload.equals(content.subarray(start, end + 1))).toBe(true);
      // A streamed document's slice is an S3 ranged GET, not a slice of a full read.
      if (kind === 'in S3, streamed') expect(objectRanges.slice(before)).toEqual([`bytes=${start}-${end}`]);
    });

    it(`${kind}: a range past the end is 416 with Content-Range bytes */size`, async () => {
      const { id, content } = documents.get(kind)!;
      const response = await get(id, { range: `bytes=${content.length}-` });
      expectProblem(response, 416, 'RANGE_NOT_SATISFIABLE');
      expect(response.headers['content-range']).toBe(`bytes */${content.length}`);
      expect(response.headers.etag).toBeUndefined();
    });

    it(`${kind}: If-Range with the ETag is the 206, with another validator the whole 200`, async () => {
      const { id, content, etag } = documents.get(kind)!;
      const matching = await get(id, { range: 'bytes=0-9', 'if-range': etag });
      expect(matching.statusCode).toBe(206);
      expect(matching.rawPayload.equals(content.subarray(0, 10))).toBe(true);
      for (const other of ['"another"', `W/${etag}`, 'Tue, 01 Dec 2026 08:00:00 GMT']) {
        const whole = await get(id, { range: 'bytes=0-9', 'if-range': other });
        expect(whole.statusCode).toBe(200);
        expect(whole.rawPayload.equals(content)).toBe(true);
      }
    });

    it(`${kind}: several ranges, or a malformed one, get the whole document; HEAD ignores Range`, async () => {
      const { id, content } = documents.get(kind)!;
      for (const range of ['bytes=0-9,20-29', 'bytes=9-5', 'lines=1-2']) {
        const whole = await get(id, { range });
        expect(whole.statusCode).toBe(200);
        expect(whole.headers['content-range']).toBeUndefined();
        expect(whole.rawPayload.equals(content)).toBe(true);
      }
      const head = await call({ method: 'HEAD', url: `/documents/${id}`, headers: { range: 'bytes=0-9' } });
      expect(head.statusCode).toBe(200);
      expect(head.headers['content-length']).toBe(String(content.length));
      expect(head.body).toBe('');
    });
  }
});

describe('GET and HEAD headers of every kind of document', () => {
  it.each([
    ['inline', 500],
    ['cached', 30_000],
    ['streamed', 200_000],
  ])('%s: Accept-Ranges, Repr-Digest of the bytes, ETag; 304 without Content-Type or Content-Length', async (_kind, size) => {
    const content = randomBytes(size);
    const id = uniqueId('headers');
    await put(id, content, { 'content-type': 'text/plain' });
    for (const method of ['GET', 'HEAD'] as const) {
      const response = await call({ method, url: `/documents/${id}` });
      expect(response.statusCode).toBe(200);
      expect(response.headers['accept-ranges']).toBe('bytes');
      expect(response.headers['repr-digest']).toBe(digestOf(content));
      expect(response.headers.etag).toBe(`"${sha256(content)}"`);
      expect(response.headers['content-length']).toBe(String(size));
      expect(response.headers['content-type']).toBe('text/plain');
      if (method === 'GET') expect(response.rawPayload.equals(content)).toBe(true);
    }
    const notModified = await get(id, { 'if-none-match': `"${sha256(content)}"` });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.body).toBe('');
    expect(notModified.headers.etag).toBe(`"${sha256(content)}"`);
    expect(notModified.headers['content-type']).toBeUndefined();
    expect(notModified.headers['content-length']).toBeUndefined();
  });

  it('any content type is kept and served back, form-encoded included, whatever the store', async () => {
    for (const size of [300, 30_000, 200_000]) {
      const content = randomBytes(size);
      const id = uniqueId('headers');
      expect((await put(id, content, { 'content-type': 'application/x-www-form-urlencoded' })).statusCode).toBe(201);
      const read = await get(id);
      expect(read.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(read.rawPayload.equals(content)).toBe(true);
    }
  });
});

describe('Content-Digest and Repr-Digest on creates', () => {
  it.each([
    ['inline', 300],
    ['in S3', 100_000],
    ['multipart', 6 * 1024 * 1024],
  ])('%s: a right digest is accepted, a wrong one is 400 DIGEST_MISMATCH and nothing exists afterwards', async (_kind, size) => {
    const content = randomBytes(size);
    const right = uniqueId('digest');
    expect((await put(right, content, { 'content-digest': digestOf(content) })).statusCode).toBe(201);
    expect((await put(uniqueId('digest'), chunked(content), { 'repr-digest': digestOf(content) })).statusCode).toBe(201);

    for (const [field, body] of [
      ['content-digest', content],
      ['repr-digest', chunked(content)],
    ] as const) {
      const wrong = uniqueId('digest');
      const response = await put(wrong, body, { [field]: digestOf(Buffer.from('other bytes')) });
      const problem = expectProblem(response, 400, 'DIGEST_MISMATCH');
      expect(problem.detail).toContain(field === 'content-digest' ? 'Content-Digest' : 'Repr-Digest');
      expectProblem(await get(wrong), 404, 'DOCUMENT_NOT_FOUND');
      const left = await eventually(() => objectsOf(wrong), (found) => found.objects.length === 0 && found.uploads.length === 0);
      expect(left).toEqual({ objects: [], uploads: [] });
    }
  });

  it('a malformed sha-256 is 400 INVALID_DIGEST, before the body is read', async () => {
    const response = await put(uniqueId('digest'), Buffer.from('x'), { 'content-digest': 'sha-256=:c2hvcnQ=:' });
    expectProblem(response, 400, 'INVALID_DIGEST');
  });
});

describe('idempotency and immutability with bodies in S3', () => {
  const large = () => randomBytes(200_000);

  it('same key and bytes replay the original 201; other bytes are 422 and are not kept', async () => {
    const key = uniqueId('key');
    const content = large();
    const before = await objectsOfTenant();
    const first = await post(content, { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    const id = first.json().id as string;
    const again = await post(chunked(content), { 'idempotency-key': key });
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());

    expectProblem(await post(large(), { 'idempotency-key': key }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectProblem(await post(content, { 'idempotency-key': key, 'content-type': 'image/png' }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect((await get(id)).rawPayload.equals(content)).toBe(true);
    // One object is the document's; the replay's and the refused bodies were removed.
    await expectOnlyNewObjectOf(id, before);
  });

  it('20 concurrent uploads with one key make one document', async () => {
    const key = uniqueId('key');
    const content = large();
    const before = await objectsOfTenant();
    const answers = await Promise.all(Array.from({ length: 20 }, () => post(chunked(content), { 'idempotency-key': key })));
    const created = answers.filter((answer) => answer.statusCode === 201);
    // The contract allows a 409 + Retry-After while the first is in flight; none is expected with a short commit.
    for (const answer of answers) {
      if (answer.statusCode !== 201) expectProblem(answer, 409, 'IDEMPOTENCY_KEY_IN_USE');
    }
    expect(created.length).toBeGreaterThan(0);
    expect(new Set(created.map((answer) => answer.json().id)).size).toBe(1);
    expect(created.filter((answer) => answer.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    const id = created[0]!.json().id as string;
    expect((await get(id)).rawPayload.equals(content)).toBe(true);
    // The 19 other uploads staged objects of their own, and removed them again.
    await expectOnlyNewObjectOf(id, before);
  });

  it('PUT over an existing id: identical bytes 200 without a new object, other bytes 409, deleted 409 DOCUMENT_DELETED', async () => {
    const id = uniqueId('put');
    const content = large();
    expect((await put(id, content)).statusCode).toBe(201);
    const stored = (await objectsOf(id)).objects;
    expect(stored).toHaveLength(1);

    const retry = await put(id, chunked(content));
    expect(retry.statusCode).toBe(200);
    expect(retry.json().checksum).toBe(sha256(content));
    expectProblem(await put(id, large()), 409, 'DOCUMENT_EXISTS');
    expectProblem(await put(id, content.subarray(1)), 409, 'DOCUMENT_EXISTS');
    expectProblem(await put(id, content, { 'content-type': 'text/plain' }), 409, 'DOCUMENT_EXISTS');
    expect((await objectsOf(id)).objects).toEqual(stored);
    expect((await get(id)).rawPayload.equals(content)).toBe(true);

    expect((await call({ method: 'DELETE', url: `/documents/${id}` })).statusCode).toBe(204);
    expectProblem(await put(id, content), 409, 'DOCUMENT_DELETED');
    expectProblem(await put(id, chunked(content)), 409, 'DOCUMENT_DELETED');
    // The tombstone's content is removed after the delete.
    expect(await eventually(() => objectsOf(id), (found) => found.objects.length === 0)).toEqual({ objects: [], uploads: [] });
  });

  it('two concurrent PUTs of one id with different bytes: one wins, and its bytes are what GET returns', async () => {
    for (let round = 0; round < 5; round++) {
      const id = uniqueId('race');
      const [a, b] = [large(), large()];
      const answers = await Promise.all([put(id, chunked(a)), put(id, chunked(b))]);
      const statuses = answers.map((answer) => answer.statusCode).sort();
      expect(statuses).toEqual([201, 409]);
      const winner = answers[0]!.statusCode === 201 ? a : b;
      const read = await get(id);
      expect(read.rawPayload.equals(winner)).toBe(true);
      expect(read.headers.etag).toBe(`"${sha256(winner)}"`);
      expect(await eventually(() => objectsOf(id), (found) => found.objects.length === 1)).toMatchObject({ uploads: [] });
    }
  });
});

describe('limits', () => {
  it('a chunked body that passes MAX_DOCUMENT_BYTES is 413 naming the limit, and leaves nothing', async () => {
    const small = await testApp({
      config: { ...own.config, MAX_DOCUMENT_BYTES: 6 * 1024 * 1024, INLINE_CONTENT_MAX_BYTES: INLINE, LOAD_SHED_EVENT_LOOP_DELAY_MS: 0 },
    });
    try {
      const id = uniqueId('limit');
      const response = await small.inject({
        method: 'PUT',
        url: `/documents/${id}`,
        headers: { ...own.headers, 'content-type': 'application/octet-stream' },
        payload: Readable.from(Array.from({ length: 8 }, () => randomBytes(1024 * 1024))),
      });
      const problem = expectProblem(response, 413, 'PAYLOAD_TOO_LARGE');
      expect(problem.detail).toBe('The body is larger than the limit of 6291456 bytes (6 MiB)');
      expectProblem(await small.inject({ method: 'GET', url: `/documents/${id}`, headers: own.headers }), 404, 'DOCUMENT_NOT_FOUND');
      expect(await eventually(() => objectsOf(id), (found) => found.uploads.length === 0)).toEqual({ objects: [], uploads: [] });

      const declared = await small.inject({
        method: 'POST',
        url: '/documents',
        headers: { ...own.headers, 'content-length': String(7 * 1024 * 1024) },
        payload: Buffer.alloc(7 * 1024 * 1024),
      });
      expect(expectProblem(declared, 413, 'PAYLOAD_TOO_LARGE').detail).toContain('6291456 bytes (6 MiB)');
    } finally {
      await small.close();
    }
  });
});
