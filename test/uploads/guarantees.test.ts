import { randomUUID } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketContents, eventually, ownTenant } from '../documents/support.ts';
import { scanAll } from '../support/dynamo.ts';
import {
  IETF_BODY,
  MiB,
  TUS,
  TUS_BODY,
  b64,
  bytesOf,
  expectProblem,
  expireUpload,
  gauge,
  gaugeReads,
  head,
  held,
  ietf,
  metadata,
  multipartUploadGone,
  readDocument,
  send,
  serve,
  sha256Hex,
  tusCreate,
  tusPatch,
  uploadIdOf,
  uploadItem,
  type Answer,
  type Served,
} from './support.ts';

// What resumable uploads guarantee beyond the protocols: idempotent
// creation, tenant isolation, cancellation, expiry, fair shares of the
// upload slots, a bound on creations, refusals that change nothing, and one
// winner between two appends at one offset.

type Tenant = ReturnType<typeof ownTenant>;

/** The config of an app serving these tenants (api-key auth, each its own key). */
function tenantsConfig(...tenants: Tenant[]) {
  return { ...tenants[0]!.config, API_KEYS: tenants.map((tenant) => tenant.config.API_KEYS).join(',') };
}

const IN_FLIGHT = 'document_uploads_in_flight';

describe('on one app', () => {
  const a = ownTenant('up-a');
  const b = ownTenant('up-b');
  const c = ownTenant('up-c');
  let served: Served;

  beforeAll(async () => {
    served = await serve({ ...tenantsConfig(a, b, c), MAX_CONCURRENT_UPLOADS: 4, MAX_CONCURRENT_UPLOADS_PER_TENANT: 2 });
  });
  afterAll(async () => served?.close());

  const tus = (tenant: Tenant, more: OutgoingHttpHeaders = {}) => ({ ...TUS, ...tenant.headers, ...more });

  async function create(tenant: Tenant, length: number, more: OutgoingHttpHeaders = {}, body?: Buffer) {
    const answer = await tusCreate(served, { length, headers: { ...tenant.headers, ...more }, ...(body ? { body } : {}) });
    expect(answer.statusCode, answer.body).toBe(201);
    return answer.header('location')!;
  }

  async function offsetOf(tenant: Tenant, location: string): Promise<number> {
    const answer = await head(served, location, tus(tenant));
    expect(answer.statusCode, answer.body).toBe(200);
    return Number(answer.header('upload-offset'));
  }

  /** The upload items of a tenant in the table (to show a refused creation made none). */
  async function uploadItems(tenant: Tenant) {
    return (await scanAll(served.app.aws, served.config.DOCUMENTS_TABLE, `${tenant.tenant}#upload#`)).length;
  }

  describe('Idempotency-Key', () => {
    it('the same key and request: the same upload, replayed; the same key with another Upload-Length: 422', async () => {
      const key = `idem-${randomUUID()}`;
      const headers = { ...a.headers, 'idempotency-key': key, 'upload-metadata': metadata({ filetype: 'text/plain' }) };
      const first = await tusCreate(served, { length: 5000, headers });
      expect(first.statusCode, first.body).toBe(201);
      expect(first.header('idempotent-replayed')).toBeUndefined();
      const second = await tusCreate(served, { length: 5000, headers });
      expect(second.statusCode, second.body).toBe(201);
      expect(second.header('location')).toBe(first.header('location'));
      expect(second.header('content-location')).toBe(first.header('content-location'));
      expect(second.header('idempotent-replayed')).toBe('true');

      const other = await tusCreate(served, { length: 5001, headers });
      expectProblem(other, 422, 'IDEMPOTENCY_KEY_REUSED');
      expect(other.header('location')).toBeUndefined();

      // The one upload works as any other.
      const data = bytesOf(5000, 201);
      const done = await tusPatch(served, first.header('location')!, 0, data, a.headers);
      expect(done.statusCode, done.body).toBe(204);
      expect((await readDocument(served, done.header('content-location')!, a.headers)).bytes.equals(data)).toBe(true);
      // Another tenant's same key is another upload.
      const theirs = await tusCreate(served, { length: 5000, headers: { ...headers, ...b.headers } });
      expect(theirs.statusCode, theirs.body).toBe(201);
      expect(theirs.header('location')).not.toBe(first.header('location'));
      expect(theirs.header('idempotent-replayed')).toBeUndefined();
    });
  });

  describe('tenants', () => {
    it("another tenant's upload is 404 UPLOAD_NOT_FOUND on HEAD, PATCH and DELETE, as an unknown id; nothing changes", async () => {
      const data = bytesOf(9000, 211);
      const location = await create(a, data.length, {}, data.subarray(0, 4000));
      const unknown = '/uploads/0f0e0d0c-0b0a-4908-8706-050403020100';

      const theirHead = await head(served, location, tus(b));
      const unknownHead = await head(served, unknown, tus(b));
      expect(theirHead.statusCode).toBe(404);
      expect(unknownHead.statusCode).toBe(404);
      const revealing = (answer: Answer) => ['content-type', 'upload-offset', 'upload-length', 'content-location', 'upload-metadata'].map((name) => answer.header(name));
      expect(revealing(theirHead)).toEqual(revealing(unknownHead));
      expect(theirHead.header('upload-offset')).toBeUndefined();

      const attempts: [string, (path: string) => Promise<Answer>][] = [
        ['PATCH', (path) => tusPatch(served, path, 4000, data.subarray(4000), b.headers)],
        ['DELETE', (path) => send(served.port, 'DELETE', path, { headers: tus(b) })],
      ];
      for (const [method, attempt] of attempts) {
        const theirs = await attempt(location);
        const none = await attempt(unknown);
        const problem = expectProblem(theirs, 404, 'UPLOAD_NOT_FOUND');
        const noneProblem = expectProblem(none, 404, 'UPLOAD_NOT_FOUND');
        expect({ ...problem, requestId: 0, detail: 0 }, method).toEqual({ ...noneProblem, requestId: 0, detail: 0 });
        // The detail names the id the client sent, nothing else.
        expect(problem.detail.replace(uploadIdOf(location), '<id>')).toBe(noneProblem.detail.replace(uploadIdOf(unknown), '<id>'));
        expect(revealing(theirs)).toEqual(revealing(none));
      }

      // Ids that are not upload ids at all: 404 too.
      for (const path of ['/uploads/not-an-id', '/uploads/0F0E0D0C-0B0A-4908-8706-050403020100', `/uploads/${uploadIdOf(location)}x`, '/uploads/%00']) {
        expectProblem(await tusPatch(served, path, 0, Buffer.from('abc'), a.headers), 404, 'UPLOAD_NOT_FOUND');
        expectProblem(await send(served.port, 'DELETE', path, { headers: tus(a) }), 404, 'UPLOAD_NOT_FOUND');
        expect((await head(served, path, tus(a))).statusCode).toBe(404);
      }
      // Without a key: 401.
      expect((await head(served, location, TUS)).statusCode).toBe(401);
      expectProblem(await tusPatch(served, location, 4000, data.subarray(4000)), 401, 'UNAUTHENTICATED');

      // The owner's upload is as it was, and completes.
      expect(await offsetOf(a, location)).toBe(4000);
      const done = await tusPatch(served, location, 4000, data.subarray(4000), a.headers);
      expect(done.statusCode, done.body).toBe(204);
      expect((await readDocument(served, done.header('content-location')!, a.headers)).bytes.equals(data)).toBe(true);
      expect((await readDocument(served, done.header('content-location')!, b.headers)).status).toBe(404);
    });
  });

  describe('cancellation', () => {
    it('DELETE: 204, then 404; the multipart upload is aborted and the tail removed', async () => {
      const location = await create(c, 11 * MiB + 9);
      const uploadId = uploadIdOf(location);
      // Chunked (no declared length): a part of 5 MiB is stored, and the 1 MiB after it is a tail.
      const appended = await send(served.port, 'PATCH', location, {
        headers: tus(c, { 'content-type': TUS_BODY, 'upload-offset': '0' }),
        body: bytesOf(6 * MiB, 221),
        chunked: true,
      });
      expect(appended.statusCode, appended.body).toBe(204);
      expect(appended.header('upload-offset')).toBe(String(6 * MiB));
      const item = (await uploadItem(served, c.tenant, uploadId))!;
      expect(item.parts).toHaveLength(1);
      expect(item.tail?.size).toBe(MiB);
      expect(await multipartUploadGone(served, item.s3Key, item.s3UploadId)).toBe(false);
      expect((await bucketContents(served.app.aws, served.config, `${c.tenant}/`)).objects).toEqual([item.tail!.key]);

      const cancelled = await send(served.port, 'DELETE', location, { headers: tus(c) });
      expect(cancelled.statusCode, cancelled.body).toBe(204);
      expect(cancelled.header('tus-resumable')).toBe('1.0.0');

      expect((await head(served, location, tus(c))).statusCode).toBe(404);
      expectProblem(await tusPatch(served, location, 6 * MiB, Buffer.from('more'), c.headers), 404, 'UPLOAD_NOT_FOUND');
      expectProblem(await send(served.port, 'DELETE', location, { headers: tus(c) }), 404, 'UPLOAD_NOT_FOUND');
      expect(await multipartUploadGone(served, item.s3Key, item.s3UploadId)).toBe(true);
      expect((await bucketContents(served.app.aws, served.config, `${c.tenant}/`)).objects).toEqual([]);
      expect((await uploadItem(served, c.tenant, uploadId))?.state).toBe('CANCELLED');
    });
  });

  describe('expiry', () => {
    it('an upload past its expiry is 410 UPLOAD_EXPIRED on HEAD and PATCH', async () => {
      const data = bytesOf(3000, 231);
      const location = await create(a, data.length, {}, data.subarray(0, 1000));
      await expireUpload(served, a.tenant, uploadIdOf(location));
      const status = await head(served, location, tus(a));
      expect(status.statusCode).toBe(410);
      expect(status.header('content-type')).toMatch(/^application\/problem\+json/);
      expectProblem(await tusPatch(served, location, 1000, data.subarray(1000), a.headers), 410, 'UPLOAD_EXPIRED');
      expect((await head(served, location, tus(a))).statusCode).toBe(410);
      // IETF speaks the same.
      expectProblem(
        await send(served.port, 'PATCH', location, {
          headers: { ...ietf(6), ...a.headers, 'content-type': IETF_BODY, 'upload-offset': '1000', 'upload-complete': '?1' },
          body: data.subarray(1000),
        }),
        410,
        'UPLOAD_EXPIRED',
      );
    });
  });

  describe('fair shares of the upload slots', () => {
    it("a tenant holding its share gets 503 OVERLOADED; another tenant still uploads", async () => {
      const length = 6 * MiB;
      const mine = [bytesOf(length, 241), bytesOf(length, 242)];
      const locations = [await create(a, length), await create(a, length)];
      const third = await create(a, 50_000);
      expect(await gauge(served, IN_FLIGHT)).toBe(0);

      const slow = locations.map((location) => held(served.port, 'PATCH', location, tus(a, { 'content-type': TUS_BODY, 'upload-offset': '0' }), length));
      await Promise.all(slow.map((request, i) => request.write(mine[i]!.subarray(0, 64 * 1024))));
      expect(await gaugeReads(served, IN_FLIGHT, 2)).toBe(2);

      // A's third append, and A's one-request upload above the inline size: 503 with Retry-After.
      const refused = await tusPatch(served, third, 0, bytesOf(50_000, 243), a.headers);
      expectProblem(refused, 503, 'OVERLOADED');
      expect(Number(refused.header('retry-after'))).toBeGreaterThan(0);
      expect(refused.header('upload-offset')).toBe('0');
      expect(await offsetOf(a, third)).toBe(0);
      const oneRequest = await send(served.port, 'POST', '/documents', {
        headers: { ...a.headers, 'content-type': 'application/octet-stream' },
        body: bytesOf(64 * 1024, 244),
      });
      expectProblem(oneRequest, 503, 'OVERLOADED');
      expect(Number(oneRequest.header('retry-after'))).toBeGreaterThan(0);

      // B meanwhile: a resumable upload and a one-request one.
      const theirs = bytesOf(MiB + 1, 245);
      const theirLocation = await create(b, theirs.length);
      const done = await tusPatch(served, theirLocation, 0, theirs, b.headers);
      expect(done.statusCode, done.body).toBe(204);
      expect((await readDocument(served, done.header('content-location')!, b.headers)).bytes.equals(theirs)).toBe(true);
      const posted = await send(served.port, 'POST', '/documents', { headers: { ...b.headers, 'content-type': 'application/octet-stream' }, body: bytesOf(64 * 1024, 246) });
      expect(posted.statusCode, posted.body).toBe(201);
      expect(await gauge(served, IN_FLIGHT)).toBe(2);

      // A's held appends finish, and their slots come back.
      const answers = await Promise.all(slow.map((request, i) => request.end(mine[i]!.subarray(64 * 1024))));
      for (const [i, answer] of answers.entries()) {
        expect(answer.statusCode, answer.body).toBe(204);
        expect(answer.header('etag')).toBe(`"${sha256Hex(mine[i]!)}"`);
      }
      expect(await gaugeReads(served, IN_FLIGHT, 0)).toBe(0);
      const now = await tusPatch(served, third, 0, bytesOf(50_000, 243), a.headers);
      expect(now.statusCode, now.body).toBe(204);
    });
  });

  describe('refusals change nothing', () => {
    it('bad appends: 415, 400, 413, 412; each problem+json, the offset unchanged', async () => {
      const data = bytesOf(10_000, 251);
      const location = await create(a, data.length, { 'upload-metadata': metadata({ filetype: 'text/plain' }) }, data.subarray(0, 1000));
      const patch = (headers: OutgoingHttpHeaders, body = data.subarray(1000, 2000), chunked = false) =>
        send(served.port, 'PATCH', location, { headers: { ...a.headers, ...headers }, body, chunked });
      const base = { ...TUS, 'content-type': TUS_BODY, 'upload-offset': '1000' };
      const refusals: [string, () => Promise<Answer>, number, string][] = [
        ['octet-stream', () => patch({ ...base, 'content-type': 'application/octet-stream' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
        ['no content type', () => patch({ ...TUS, 'upload-offset': '1000' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
        ['IETF content type in tus', () => patch({ ...base, 'content-type': IETF_BODY }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
        ['tus content type in IETF', () => patch({ ...ietf(6), 'content-type': TUS_BODY, 'upload-offset': '1000', 'upload-complete': '?0' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
        ['no Upload-Offset', () => patch({ ...TUS, 'content-type': TUS_BODY }), 400, 'INVALID_UPLOAD_REQUEST'],
        ['Upload-Offset not a number', () => patch({ ...base, 'upload-offset': '1e3' }), 400, 'INVALID_UPLOAD_REQUEST'],
        ['IETF without Upload-Complete', () => patch({ ...ietf(6), 'content-type': IETF_BODY, 'upload-offset': '1000' }), 400, 'INVALID_UPLOAD_REQUEST'],
        ['Content-Length past Upload-Length', () => patch(base, data.subarray(999)), 413, 'PAYLOAD_TOO_LARGE'],
        ['a chunked body past Upload-Length', () => patch(base, Buffer.concat([data.subarray(1000), Buffer.alloc(100)]), true), 413, 'PAYLOAD_TOO_LARGE'],
        ['another Upload-Length', () => patch({ ...base, 'upload-length': '10001' }), 400, 'UPLOAD_LENGTH_MISMATCH'],
        ['Tus-Resumable 0.2.2', () => patch({ ...base, 'tus-resumable': '0.2.2' }), 412, 'UNSUPPORTED_UPLOAD_VERSION'],
        ['no protocol at all', () => patch({ 'content-type': TUS_BODY, 'upload-offset': '1000' }), 412, 'UNSUPPORTED_UPLOAD_VERSION'],
        ['both protocols', () => patch({ ...base, ...ietf(6), 'upload-complete': '?0' }), 400, 'INVALID_UPLOAD_REQUEST'],
        ['another offset', () => patch({ ...base, 'upload-offset': '0' }), 409, 'UPLOAD_OFFSET_MISMATCH'],
      ];
      const item = await uploadItem(served, a.tenant, uploadIdOf(location));
      for (const [what, refusal, status, code] of refusals) {
        const answer = await refusal();
        expectProblem(answer, status, code);
        if (status === 412) expect(answer.header('tus-version'), what).toBe('1.0.0');
        expect(await offsetOf(a, location), what).toBe(1000);
      }
      // Not a field of the item changed (no owner left behind either).
      expect(await uploadItem(served, a.tenant, uploadIdOf(location))).toEqual(item);

      // And the upload completes as if nothing had happened.
      const done = await tusPatch(served, location, 1000, data.subarray(1000), a.headers);
      expect(done.statusCode, done.body).toBe(204);
      const document = await readDocument(served, done.header('content-location')!, a.headers);
      expect(document.bytes.equals(data)).toBe(true);
      expect(document.contentType).toBe('text/plain');
    });

    it('bad creations: 413, 400, 412; each problem+json, no upload made', async () => {
      const before = await uploadItems(a);
      const post = (headers: OutgoingHttpHeaders) => send(served.port, 'POST', '/documents', { headers: { ...a.headers, ...headers } });
      const refusals: [string, () => Promise<Answer>, number, string][] = [
        ['over MAX_DOCUMENT_BYTES', () => post({ ...TUS, 'upload-length': String(served.config.MAX_DOCUMENT_BYTES + 1) }), 413, 'PAYLOAD_TOO_LARGE'],
        ['IETF over MAX_DOCUMENT_BYTES', () => post({ ...ietf(6), 'upload-complete': '?0', 'upload-length': String(served.config.MAX_DOCUMENT_BYTES + 1) }), 413, 'PAYLOAD_TOO_LARGE'],
        ['metadata not base64', () => post({ ...TUS, 'upload-length': '10', 'upload-metadata': 'filetype not_base64!' }), 400, 'INVALID_UPLOAD_METADATA'],
        ['metadata key twice', () => post({ ...TUS, 'upload-length': '10', 'upload-metadata': `filetype ${b64('a/b')},filetype ${b64('c/d')}` }), 400, 'INVALID_UPLOAD_METADATA'],
        ['metadata not pairs', () => post({ ...TUS, 'upload-length': '10', 'upload-metadata': `filetype ${b64('a/b')} extra` }), 400, 'INVALID_UPLOAD_METADATA'],
        ['neither Upload-Length nor Upload-Defer-Length', () => post({ ...TUS }), 400, 'INVALID_UPLOAD_REQUEST'],
        ['both Upload-Length and Upload-Defer-Length', () => post({ ...TUS, 'upload-length': '10', 'upload-defer-length': '1' }), 400, 'INVALID_UPLOAD_REQUEST'],
        ['Upload-Length not a number', () => post({ ...TUS, 'upload-length': '-5' }), 400, 'INVALID_UPLOAD_REQUEST'],
        ['Upload-Length 0', () => post({ ...TUS, 'upload-length': '0' }), 400, 'EMPTY_DOCUMENT'],
        ['IETF without Upload-Complete', () => post({ ...ietf(6) }), 400, 'INVALID_UPLOAD_REQUEST'],
        ['Tus-Resumable 0.2.2', () => post({ ...TUS, 'tus-resumable': '0.2.2', 'upload-length': '10' }), 412, 'UNSUPPORTED_UPLOAD_VERSION'],
        ['interop version 5', () => post({ ...ietf(5), 'upload-complete': '?0' }), 412, 'UNSUPPORTED_UPLOAD_VERSION'],
      ];
      for (const [what, refusal, status, code] of refusals) {
        const answer = await refusal();
        expectProblem(answer, status, code);
        expect(answer.header('location'), what).toBeUndefined();
        if (status === 412) expect(answer.header('tus-version'), what).toBe('1.0.0');
      }
      expect(await uploadItems(a)).toBe(before);
    });
  });

  describe('two appends at one offset', () => {
    it('exactly one wins; the loser gets 409; the document is one client\'s bytes, never a mix', async () => {
      const length = 6 * MiB + 7;
      const first = bytesOf(length, 261);
      const second = bytesOf(length, 262);
      const location = await create(b, length);
      const uploadId = uploadIdOf(location);

      const slow = held(served.port, 'PATCH', location, tus(b, { 'content-type': TUS_BODY, 'upload-offset': '0' }), length);
      await slow.write(first.subarray(0, 256 * 1024));
      // The first request owns the upload (its claim is in the item) and has sent bytes.
      const owned = await eventually(() => uploadItem(served, b.tenant, uploadId), (item) => item?.owner !== undefined);
      expect(owned?.owner).toBeDefined();

      const winner = await tusPatch(served, location, 0, second, b.headers);
      expect(winner.statusCode, winner.body).toBe(204);
      expect(winner.header('etag')).toBe(`"${sha256Hex(second)}"`);

      const loser = await slow.end(first.subarray(256 * 1024));
      expect(loser.statusCode, loser.body).toBe(409);
      expect(['UPLOAD_SUPERSEDED', 'UPLOAD_OFFSET_MISMATCH']).toContain(loser.json().code);
      expect(loser.header('content-type')).toMatch(/^application\/problem\+json/);

      const document = await readDocument(served, winner.header('content-location')!, b.headers);
      expect(document.bytes.length).toBe(length);
      expect(document.bytes.equals(second)).toBe(true);
      const status = await head(served, location, tus(b));
      expect(status.header('upload-offset')).toBe(String(length));
      expect(status.header('etag')).toBe(`"${sha256Hex(second)}"`);
    });
  });
});

describe('the bound on creations', () => {
  const c = ownTenant('up-rate-c');
  const d = ownTenant('up-rate-d');
  let served: Served;

  beforeAll(async () => {
    served = await serve({ ...tenantsConfig(c, d), UPLOAD_CREATIONS_PER_MINUTE: 3 });
  });
  afterAll(async () => served?.close());

  it('the 4th creation of a tenant within the minute is 429 RATE_LIMITED; another tenant still creates', async () => {
    for (let i = 0; i < 3; i++) {
      const answer = await tusCreate(served, { length: 100, headers: c.headers });
      expect(answer.statusCode, answer.body).toBe(201);
    }
    const fourth = await tusCreate(served, { length: 100, headers: c.headers });
    expectProblem(fourth, 429, 'RATE_LIMITED');
    expect(fourth.header('tus-resumable')).toBe('1.0.0');
    expect(fourth.header('location')).toBeUndefined();
    const retryAfter = Number(fourth.header('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    const ietfToo = await send(served.port, 'POST', '/documents', { headers: { ...c.headers, ...ietf(6), 'upload-complete': '?0' } });
    expectProblem(ietfToo, 429, 'RATE_LIMITED');

    const other = await tusCreate(served, { length: 100, headers: d.headers });
    expect(other.statusCode, other.body).toBe(201);
    // A one-request create is no resumable creation: not bounded by it.
    const oneRequest = await send(served.port, 'POST', '/documents', { headers: { ...c.headers, 'content-type': 'text/plain' }, body: Buffer.from('hello') });
    expect(oneRequest.statusCode, oneRequest.body).toBe(201);
  });
});
