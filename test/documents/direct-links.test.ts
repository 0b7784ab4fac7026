import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { parse as parseDisposition } from 'content-disposition';
import { testApp, testConfig, uniqueId } from '../support/app.ts';
import { hashApiKey } from '../support/config.ts';
import { expectProblem } from '../support/problem.ts';
import { testClock } from '../support/clock.ts';
import { eventually } from './support.ts';

// Issue 21, direct links: GET /documents/{id}/link is an S3 presigned GET
// against the emulator, downloaded here with fetch as any client would; and
// DOCUMENT_REDIRECT_MIN_BYTES, a plain GET answered 307 to such a link and
// followed as curl -L does. The emulator (fauxqs 2.4) checks no signature and
// ignores the response-* overrides S3 applies: the Content-Type and
// Content-Disposition are checked as the link carries them, under its
// signature, which is what S3 serves; expiry is S3's to enforce.

const MiB = 1024 * 1024;
const TTL_SECONDS = 120;
/** A link expires at now + TTL rounded down to this (src/documents/links.ts linkValidity): min(60 s, TTL / 5). */
const BUCKET_MS = Math.min(60_000, (TTL_SECONDS * 1000) / 5);
const REDIRECT_MIN_BYTES = 2 * MiB;

const suffix = randomUUID().slice(0, 8);
// c: content under a KMS key of its own (SSE-KMS), and so never inline.
const tenants = { a: `link-a-${suffix}`, b: `link-b-${suffix}`, c: `link-c-${suffix}` };
const keys = { a: `key-a-${randomUUID()}`, b: `key-b-${randomUUID()}`, c: `key-c-${randomUUID()}` };
const as = (key: string) => ({ authorization: `Bearer ${key}` });

const config = testConfig();
const emulator = new URL(config.AWS_ENDPOINT_URL_S3 ?? config.AWS_ENDPOINT_URL ?? 'http://unset').origin;

let app: FastifyInstance;
let api: string;
/** The app's clock: moved past an expiry bucket instead of sleeping through it. */
const clock = testClock();

/** Moves the clock to just inside an expiry bucket: the requests of the next seconds are all in it. */
function toBucketStart() {
  clock.advance(BUCKET_MS - ((clock.now() + TTL_SECONDS * 1000) % BUCKET_MS) + 10);
}

type Link = { url: string; expiresAt: string; size: number; contentType: string; sha256: string };

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function put(id: string, body: Buffer, contentType: string) {
  const response = await app.inject({ method: 'PUT', url: `/documents/${id}`, headers: { ...as(keys.a), 'content-type': contentType }, body });
  expect(response.statusCode).toBe(201);
}

/** Requests the API answered so far, all routes (its latency histogram counts each once). */
async function requestsAnswered(): Promise<number> {
  const metric = await app.metrics.registry.getSingleMetric('http_request_duration_seconds')!.get();
  return metric.values.filter((value) => 'metricName' in value && value.metricName === 'http_request_duration_seconds_count').reduce((sum, value) => sum + value.value, 0);
}

/** The response headers the link makes S3 send, as query parameters covered by its signature. */
function expectSignedHeaders(url: URL, contentType: string, id: string) {
  expect(url.searchParams.get('response-content-type')).toBe(contentType);
  expect(parseDisposition(url.searchParams.get('response-content-disposition')!)).toEqual({ type: 'attachment', parameters: { filename: id } });
  expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
}

const appConfig = {
  AUTH_MODE: 'api-key',
  API_KEYS: `${tenants.a}:${hashApiKey(keys.a)},${tenants.b}:${hashApiKey(keys.b)},${tenants.c}:${hashApiKey(keys.c)}`,
  TENANT_KMS_KEYS: `${tenants.c}=alias/docsvc-tenant-${tenants.c}`,
  RATE_LIMIT_PER_MINUTE: 1_000_000,
  DOCUMENT_LINK_TTL_SECONDS: TTL_SECONDS,
  DOCUMENT_REDIRECT_MIN_BYTES: REDIRECT_MIN_BYTES,
} as const;

const large = { id: uniqueId('link'), body: randomBytes(3 * MiB), contentType: 'application/pdf' };

beforeAll(async () => {
  app = await testApp({ config: appConfig, overrides: { now: clock.now } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  await put(large.id, large.body, large.contentType);
});
afterAll(async () => {
  await app?.close();
});

describe('GET /documents/{id}/link', () => {
  it('answers a link that serves the exact bytes from the emulator, not through the API', async () => {
    const before = clock.now();
    const response = await app.inject({ method: 'GET', url: `/documents/${large.id}/link`, headers: as(keys.a) });
    const after = clock.now();
    expect(response.statusCode).toBe(200);
    const link: Link = response.json();
    expect(link).toMatchObject({ size: large.body.length, contentType: large.contentType, sha256: sha256(large.body) });
    // Rounded down to its bucket: a lifetime within [TTL − bucket, TTL], never more.
    const expiresAt = Date.parse(link.expiresAt);
    expect(expiresAt).toBeGreaterThan(before + TTL_SECONDS * 1000 - BUCKET_MS);
    expect(expiresAt).toBeLessThanOrEqual(after + TTL_SECONDS * 1000);
    const url = new URL(link.url);
    expect(url.origin).toBe(emulator);
    expect(url.searchParams.get('X-Amz-Expires')).toBe(String(TTL_SECONDS));

    const answered = await requestsAnswered();
    const download = await fetch(link.url);
    expect(download.status).toBe(200);
    const bytes = new Uint8Array(await download.arrayBuffer());
    expect(bytes.length).toBe(link.size);
    expect(sha256(bytes)).toBe(link.sha256);
    expect(await requestsAnswered()).toBe(answered);
    expectSignedHeaders(url, large.contentType, large.id);
  });

  it("is 404 for another tenant's document, as for an unknown id", async () => {
    const other = await app.inject({ method: 'GET', url: `/documents/${large.id}/link`, headers: as(keys.b) });
    expectProblem(other, 404, 'DOCUMENT_NOT_FOUND');
    const unknown = await app.inject({ method: 'GET', url: `/documents/${uniqueId('none')}/link`, headers: as(keys.a) });
    expectProblem(unknown, 404, 'DOCUMENT_NOT_FOUND');
  });

  it('is 401 without a key, 400 for a bad id', async () => {
    expect((await app.inject({ method: 'GET', url: `/documents/${large.id}/link` })).statusCode).toBe(401);
    for (const id of ['a%20b', 'a%22%3B', 'x'.repeat(129), 'a.b']) {
      expectProblem(await app.inject({ method: 'GET', url: `/documents/${id}/link`, headers: as(keys.a) }), 400, 'INVALID_DOCUMENT_ID');
    }
  });

  it('is 404 once the document is deleted, and the old link stops serving it', async () => {
    const id = uniqueId('link-deleted');
    await put(id, randomBytes(100_000), 'application/octet-stream');
    const link: Link = (await app.inject({ method: 'GET', url: `/documents/${id}/link`, headers: as(keys.a) })).json();
    expect((await fetch(link.url)).status).toBe(200);
    expect((await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers: as(keys.a) })).statusCode).toBe(204);
    expectProblem(await app.inject({ method: 'GET', url: `/documents/${id}/link`, headers: as(keys.a) }), 404, 'DOCUMENT_NOT_FOUND');
    // The content goes just after the tombstone: the link serves nothing well before it expires.
    await eventually(
      async () => (await fetch(link.url)).status,
      (status) => status === 404,
    );
  });

  it('is the same URL within an expiry bucket, a new one after it, and never lives longer than the TTL', async () => {
    const link = async () => {
      const response = await app.inject({ method: 'GET', url: `/documents/${large.id}/link`, headers: as(keys.a) });
      expect(response.statusCode).toBe(200);
      return response.json<Link>();
    };
    toBucketStart();
    const asked = clock.now();
    const first = await link();
    clock.advance(BUCKET_MS - 1_000);
    const same = await link();
    expect(same).toEqual(first);
    const expiresAt = Date.parse(first.expiresAt);
    expect(expiresAt - asked).toBeLessThanOrEqual(TTL_SECONDS * 1000);
    expect(expiresAt - clock.now()).toBeGreaterThanOrEqual(TTL_SECONDS * 1000 - BUCKET_MS);
    // Signed as valid from TTL before its expiry: X-Amz-Date + X-Amz-Expires is expiresAt.
    const url = new URL(first.url);
    const amzDate = url.searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z');
    expect(Date.parse(amzDate) + Number(url.searchParams.get('X-Amz-Expires')) * 1000).toBe(expiresAt);

    clock.advance(1_000);
    const next = await link();
    expect(next.url).not.toBe(first.url);
    expect(Date.parse(next.expiresAt)).toBe(expiresAt + BUCKET_MS);
    // Another tenant's request is no read of a link memoised for the owner.
    expectProblem(await app.inject({ method: 'GET', url: `/documents/${large.id}/link`, headers: as(keys.b) }), 404, 'DOCUMENT_NOT_FOUND');
  });

  it('is 404 once the document is deleted, its link memoised and its location kept, here or on another instance', async () => {
    const other = await testApp({ config: appConfig });
    try {
      for (const deleter of [app, other]) {
        const id = uniqueId('link-memo-deleted');
        await put(id, randomBytes(40_000), 'application/octet-stream');
        toBucketStart();
        const links = [];
        for (let i = 0; i < 3; i++) links.push((await app.inject({ method: 'GET', url: `/documents/${id}/link`, headers: as(keys.a) })).json<Link>().url);
        expect(new Set(links).size).toBe(1);
        expect((await deleter.inject({ method: 'DELETE', url: `/documents/${id}`, headers: as(keys.a) })).statusCode).toBe(204);
        expectProblem(await app.inject({ method: 'GET', url: `/documents/${id}/link`, headers: as(keys.a) }), 404, 'DOCUMENT_NOT_FOUND');
      }
    } finally {
      await other.close();
    }
  });

  it('is 409 NO_DIRECT_LINK for content stored inline, which has no object', async () => {
    const id = uniqueId('link-inline');
    await put(id, Buffer.from('small'), 'text/plain');
    expectProblem(await app.inject({ method: 'GET', url: `/documents/${id}/link`, headers: as(keys.a) }), 409, 'NO_DIRECT_LINK');
  });

  // The emulator records the encryption and decrypts nothing: checked here is that a presigned GET needs nothing of SSE-KMS.
  it('links content encrypted with SSE-KMS like any other: S3 decrypts it when the link is used', async () => {
    const id = uniqueId('link-kms');
    const body = Buffer.from('small, but under its tenant key: in S3');
    const created = await app.inject({ method: 'PUT', url: `/documents/${id}`, headers: { ...as(keys.c), 'content-type': 'text/plain' }, body });
    expect(created.statusCode).toBe(201);
    const response = await app.inject({ method: 'GET', url: `/documents/${id}/link`, headers: as(keys.c) });
    expect(response.statusCode).toBe(200);
    const download = await fetch((response.json() as Link).url);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(body);
  });
});

describe('DOCUMENT_REDIRECT_MIN_BYTES', () => {
  const get = (id: string, headers: Record<string, string> = {}, redirect: RequestRedirect = 'follow', method = 'GET') =>
    fetch(`${api}/documents/${id}`, { method, headers: { ...as(keys.a), ...headers }, redirect });

  it('answers a plain GET with 307 to a link; followed, it serves the bytes from the emulator', async () => {
    const redirect = await get(large.id, {}, 'manual');
    expect(redirect.status).toBe(307);
    expect(redirect.headers.get('cache-control')).toBe('no-store');
    expect(new URL(redirect.headers.get('location')!).origin).toBe(emulator);
    await redirect.body?.cancel();

    const answered = await requestsAnswered();
    const followed = await get(large.id);
    expect(followed.status).toBe(200);
    expect(new URL(followed.url).origin).toBe(emulator);
    expect(sha256(new Uint8Array(await followed.arrayBuffer()))).toBe(sha256(large.body));
    expectSignedHeaders(new URL(followed.url), large.contentType, large.id);
    // Only the 307 went through the API.
    expect(await requestsAnswered()).toBe(answered + 1);
  });

  it('leaves HEAD, Range and conditional GETs as they were', async () => {
    const head = await get(large.id, {}, 'manual', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(large.body.length));
    expect(head.headers.get('location')).toBeNull();

    const range = await get(large.id, { range: 'bytes=100-199' }, 'manual');
    expect(range.status).toBe(206);
    expect(Buffer.from(await range.arrayBuffer())).toEqual(large.body.subarray(100, 200));

    const etag = head.headers.get('etag')!;
    const notModified = await get(large.id, { 'if-none-match': etag }, 'manual');
    expect(notModified.status).toBe(304);
  });

  it('serves a smaller document itself', async () => {
    const id = uniqueId('link-small');
    const body = randomBytes(200_000);
    await put(id, body, 'application/octet-stream');
    const response = await get(id, {}, 'manual');
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer())).toEqual(body);
  });
});
