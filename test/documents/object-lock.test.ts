import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { HttpRequest, HttpResponse } from '@smithy/core/transport';
import { createAwsClients } from '../../src/adapters/aws.ts';
import { DocumentStore, type Lookup } from '../../src/documents/document-store.ts';
import { hashApiKey } from '../support/config.ts';
import { testApp, testConfig } from '../support/app.ts';

// S3 Object Lock on the objects of documents (S3_OBJECT_LOCK_MODE), on the
// requests as the real S3 client sends them. The local emulator has no
// Object Lock: it takes PUT <key>?retention and PUT <key>?legal-hold for a
// PutObject and replaces the document's bytes with the XML (tried: the
// object then reads as `<Retention>...`), so these two calls are answered
// here, 200 or an error as S3 would, and never reach it. What real S3 does
// beyond that (refuses a shorter COMPLIANCE retention, keeps a locked
// version under a delete marker) is in docs/encryption-and-retention.md.

const suffix = randomUUID().slice(0, 8);
const tenant = `locked-${suffix}`;
const key = `key-${randomUUID()}`;
const headers = { authorization: `Bearer ${key}` };
const DAY = 86_400_000;

type LockCall = { command: string; key: string; body: string; checksummed: boolean };
const calls: LockCall[] = [];
/** What the table says of the document at the moment S3 is asked to lock its object. */
const seenAtLock: Lookup['state'][] = [];
/** S3's answer to the next Object Lock calls: 200 unless this gives an error. */
let refuse: ((call: LockCall) => Error | undefined) | undefined;

const config = {
  AUTH_MODE: 'api-key',
  API_KEYS: `${tenant}:${hashApiKey(key)}:legal-hold`,
  RATE_LIMIT_PER_MINUTE: 1_000_000,
  INLINE_CONTENT_MAX_BYTES: 1024,
  S3_OBJECT_LOCK_MODE: 'GOVERNANCE',
} as const;

let app: FastifyInstance;
let store: DocumentStore;

beforeAll(async () => {
  const resolved = testConfig(config);
  const aws = createAwsClients(resolved);
  store = new DocumentStore({ dynamo: aws.dynamo, table: resolved.DOCUMENTS_TABLE, tombstoneSeconds: 60, region: resolved.AWS_REGION });
  aws.s3.middlewareStack.add(
    (next, context) => async (args) => {
      const command = (context.commandName ?? '').replace(/Command$/, '');
      // The bucket has Object Lock, as terraform makes it with object_lock (the service checks at start).
      if (command === 'GetObjectLockConfiguration') {
        const xml = '<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>';
        return { response: new HttpResponse({ statusCode: 200, headers: { 'content-type': 'application/xml' }, body: Readable.from([Buffer.from(xml)]) }), output: { $metadata: {} } } as never;
      }
      if (!HttpRequest.isInstance(args.request) || (command !== 'PutObjectRetention' && command !== 'PutObjectLegalHold')) return next(args);
      const { path, body, headers: sent } = args.request;
      const call = {
        command,
        key: decodeURIComponent(path.split('/').slice(2).join('/')),
        body: String(body),
        checksummed: Object.keys(sent).some((name) => name === 'content-md5' || name.startsWith('x-amz-checksum-')),
      };
      calls.push(call);
      const [, id] = call.key.split('/');
      seenAtLock.push((await store.lookup(tenant, id!)).state);
      const refusal = refuse?.(call);
      if (refusal) throw refusal;
      return { response: new HttpResponse({ statusCode: 200, headers: {}, body: Readable.from([]) }), output: { $metadata: {} } } as never;
    },
    { step: 'deserialize', name: 'answerObjectLockCalls' },
  );
  app = await testApp({ config, overrides: { aws } });
});
afterAll(async () => {
  await app?.close();
});

// The instant, not the text: the SDK writes a whole second without its ".000".
const retentionOf = (body: string) => ({
  mode: /<Mode>([^<]+)<\/Mode>/.exec(body)?.[1],
  until: Date.parse(/<RetainUntilDate>([^<]+)<\/RetainUntilDate>/.exec(body)?.[1] ?? ''),
});
const statusOf = (body: string) => /<Status>([^<]+)<\/Status>/.exec(body)?.[1];

async function create(body: Buffer, retainUntil?: string) {
  const id = `doc-${randomUUID()}`;
  const answer = await app.inject({
    method: 'PUT',
    url: `/documents/${id}`,
    headers: { ...headers, 'content-type': 'application/octet-stream', ...(retainUntil ? { 'retain-until': retainUntil } : {}) },
    payload: body,
  });
  return { id, answer };
}

async function s3KeyOf(id: string): Promise<string | undefined> {
  const found = await store.lookup(tenant, id);
  return found.state === 'active' ? found.record.s3Key : undefined;
}

function failure(name: string) {
  return Object.assign(new Error(`${name} from S3`), { name, $fault: 'client', $metadata: { httpStatusCode: 403 } });
}

describe('S3 Object Lock, retention', () => {
  it('a create with Retain-Until retains its object until then, in the configured mode, before it commits', async () => {
    calls.length = 0;
    seenAtLock.length = 0;
    const until = new Date(Date.now() + 30 * DAY).toISOString();
    const content = randomBytes(8192);
    const { id, answer } = await create(content, until);
    expect(answer.statusCode, answer.body).toBe(201);
    // The emulator never saw the call (it would have replaced the bytes).
    expect((await app.inject({ method: 'GET', url: `/documents/${id}`, headers })).rawPayload.equals(content)).toBe(true);
    expect(answer.json().retainUntil).toBe(until);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ command: 'PutObjectRetention', key: await s3KeyOf(id), checksummed: true });
    expect(retentionOf(calls[0]!.body)).toEqual({ mode: 'GOVERNANCE', until: Date.parse(until) });
    // Before the commit: the table did not have the document yet.
    expect(seenAtLock).toEqual(['absent']);
  });

  it('a resumable upload with Retain-Until retains its object at completion, before the commit', async () => {
    calls.length = 0;
    seenAtLock.length = 0;
    // A whole second, which the SDK writes as "…:48Z": the instant still matches.
    const until = new Date(Math.floor((Date.now() + 7 * DAY) / 1000) * 1000).toISOString();
    const data = randomBytes(4096);
    const created = await app.inject({
      method: 'POST',
      url: '/documents',
      headers: { ...headers, 'tus-resumable': '1.0.0', 'upload-length': String(data.length), 'retain-until': until },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(calls).toHaveLength(0);
    const done = await app.inject({
      method: 'PATCH',
      url: created.headers.location!,
      headers: { ...headers, 'tus-resumable': '1.0.0', 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
      payload: data,
    });
    expect(done.statusCode, done.body).toBe(204);
    const id = String(created.headers['content-location']).split('/').at(-1)!;
    expect(calls.map((call) => [call.command, call.key])).toEqual([['PutObjectRetention', await s3KeyOf(id)]]);
    expect(retentionOf(calls[0]!.body)).toEqual({ mode: 'GOVERNANCE', until: Date.parse(until) });
    expect(seenAtLock).toEqual(['absent']);
  });

  it('nothing to lock without a retention, or without an object (inline content: the metadata alone holds it)', async () => {
    calls.length = 0;
    expect((await create(randomBytes(8192))).answer.statusCode).toBe(201);
    const inline = await create(randomBytes(100), new Date(Date.now() + DAY).toISOString());
    expect(inline.answer.statusCode).toBe(201);
    expect(inline.answer.json().retainUntil).toBeDefined();
    expect(calls).toEqual([]);
  });

  it('a retention S3 refuses fails the create with a 503, before anything is committed, and is counted', async () => {
    calls.length = 0;
    refuse = (call) => (call.command === 'PutObjectRetention' ? failure('AccessDenied') : undefined);
    try {
      const { id, answer } = await create(randomBytes(8192), new Date(Date.now() + DAY).toISOString());
      expect(answer.statusCode).toBe(503);
      expect(answer.json().code).toBe('SERVICE_UNAVAILABLE');
      expect((await store.lookup(tenant, id)).state).toBe('absent');
      const metrics = await app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/document_object_lock_failures_total\{call="retention"\} [1-9]/);
    } finally {
      refuse = undefined;
    }
  });
});

describe('S3 Object Lock, legal hold', () => {
  const hold = (id: string, status: 'ON' | 'OFF') =>
    app.inject({ method: 'PUT', url: `/documents/${id}/legal-hold`, headers: { ...headers, 'content-type': 'application/json' }, payload: { status } });

  it('ON and OFF are set on the object before the answer', async () => {
    const { id } = await create(randomBytes(8192));
    const s3Key = await s3KeyOf(id);
    calls.length = 0;
    expect((await hold(id, 'ON')).json().legalHold).toBe('ON');
    expect((await hold(id, 'OFF')).json().legalHold).toBe('OFF');
    expect(calls.map((call) => [call.command, call.key, statusOf(call.body), call.checksummed])).toEqual([
      ['PutObjectLegalHold', s3Key, 'ON', true],
      ['PutObjectLegalHold', s3Key, 'OFF', true],
    ]);
  });

  it('an inline document has no object: the hold is in the metadata only', async () => {
    const { id } = await create(randomBytes(100));
    calls.length = 0;
    expect((await hold(id, 'ON')).json().legalHold).toBe('ON');
    expect(calls).toEqual([]);
  });

  it('a hold S3 refuses is a 503; the metadata, the authority, already holds; the retry sets the object\'s too', async () => {
    const { id } = await create(randomBytes(8192));
    calls.length = 0;
    refuse = () => failure('AccessDenied');
    try {
      const refused = await hold(id, 'ON');
      expect(refused.statusCode).toBe(503);
      // DELETE is refused by the item already.
      expect((await app.inject({ method: 'DELETE', url: `/documents/${id}`, headers })).json().code).toBe('DOCUMENT_ON_LEGAL_HOLD');
    } finally {
      refuse = undefined;
    }
    expect((await hold(id, 'ON')).statusCode).toBe(200);
    expect(calls.map((call) => statusOf(call.body))).toEqual(['ON', 'ON']);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/document_object_lock_failures_total\{call="legal-hold"\} [1-9]/);
  });
});

describe('S3 Object Lock, at start', () => {
  it('refuses to start on a bucket without Object Lock (the local emulator has none), naming it', async () => {
    await expect(testApp({ config: { S3_OBJECT_LOCK_MODE: 'COMPLIANCE' } })).rejects.toThrow(/S3_OBJECT_LOCK_MODE=COMPLIANCE but bucket \S+ has no Object Lock/);
  });
});
