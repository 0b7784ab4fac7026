import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { HttpRequest } from '@smithy/core/transport';
import type { S3Client } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { DocumentStore } from '../../src/documents/document-store.ts';
import { hashApiKey } from '../support/config.ts';
import { testApp, testConfig } from '../support/app.ts';

// Which KMS key every write of content names (SSE-KMS), on the requests as
// they leave the real S3 client, for every write path: a one-request create
// of one part and of several, a resumable upload's multipart upload and tail.
// The local emulator ignores the headers (it encrypts nothing), so these
// creates also show that a create with keys configured works end to end;
// what real S3 does with a disabled key is in docs/encryption-and-retention.md.

const MiB = 1024 * 1024;
const DEFAULT_KEY = 'alias/docsvc-data';
const suffix = randomUUID().slice(0, 8);
const keyed = { tenant: `keyed-${suffix}`, key: `key-${randomUUID()}`, kms: `alias/docsvc-tenant-keyed-${suffix}` };
const plain = { tenant: `plain-${suffix}`, key: `key-${randomUUID()}` };
const auth = (who: { key: string }) => ({ authorization: `Bearer ${who.key}` });

type Sent = { command: string; path: string; algorithm?: string; keyId?: string; bucketKey?: string };
/** What S3 answers instead, for the requests it is asked about. */
type Refusal = (sent: Sent) => Error | undefined;

/**
 * AWS clients whose S3 requests are recorded as signed, just before they are
 * sent; `refuse` stands in for S3 answering some of them with an error.
 */
function recordedClients(overrides: Parameters<typeof testConfig>[0]): { aws: AwsClients; sent: Sent[]; refuse: { with?: Refusal } } {
  const aws = createAwsClients(testConfig(overrides));
  const sent: Sent[] = [];
  const refuse: { with?: Refusal } = {};
  const record = (client: S3Client) =>
    client.middlewareStack.add(
      (next, context) => (args) => {
        if (HttpRequest.isInstance(args.request)) {
          const { headers, path } = args.request;
          const request: Sent = {
            command: (context.commandName ?? '').replace(/Command$/, ''),
            path,
            ...(headers['x-amz-server-side-encryption'] ? { algorithm: headers['x-amz-server-side-encryption'] } : {}),
            ...(headers['x-amz-server-side-encryption-aws-kms-key-id'] ? { keyId: headers['x-amz-server-side-encryption-aws-kms-key-id'] } : {}),
            ...(headers['x-amz-server-side-encryption-bucket-key-enabled'] ? { bucketKey: headers['x-amz-server-side-encryption-bucket-key-enabled'] } : {}),
          };
          sent.push(request);
          const refusal = refuse.with?.(request);
          if (refusal) return Promise.reject(refusal);
        }
        return next(args);
      },
      { step: 'deserialize', name: 'recordSentRequests' },
    );
  record(aws.s3);
  record(aws.s3Transfer);
  return { aws, sent, refuse };
}

/** S3's answer when the KMS key of the object is disabled (a client fault, as the SDK parses it). */
function keyDisabled(): Error {
  return Object.assign(new Error('The key is disabled'), { name: 'KMS.DisabledException', $fault: 'client', $metadata: { httpStatusCode: 400, requestId: 'R-KMS' } });
}

const underKey = (keyId: string) => ({ algorithm: 'aws:kms', keyId, bucketKey: 'true' });
const WRITES = new Set(['PutObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload']);
/** The writes of content sent for the objects of a tenant, and for one document of it. */
const writesOf = (sent: Sent[], tenant: string, id = '') => sent.filter((s) => WRITES.has(s.command) && s.path.includes(`/${tenant}/${id}`));
const encryption = ({ algorithm, keyId, bucketKey }: Sent) => ({ algorithm, keyId, bucketKey });

const config = {
  AUTH_MODE: 'api-key',
  API_KEYS: `${keyed.tenant}:${hashApiKey(keyed.key)},${plain.tenant}:${hashApiKey(plain.key)}`,
  RATE_LIMIT_PER_MINUTE: 1_000_000,
  INLINE_CONTENT_MAX_BYTES: 1024,
  S3_PART_SIZE_BYTES: 5 * MiB,
  MAX_DOCUMENT_BYTES: 64 * MiB,
  DOCUMENTS_KMS_KEY_ID: DEFAULT_KEY,
  TENANT_KMS_KEYS: `${keyed.tenant}=${keyed.kms}`,
} as const;

let app: FastifyInstance;
let sent: Sent[];
let refuse: { with?: Refusal };
let store: DocumentStore;

beforeAll(async () => {
  const recorded = recordedClients(config);
  sent = recorded.sent;
  refuse = recorded.refuse;
  app = await testApp({ config, overrides: { aws: recorded.aws } });
  const resolved = testConfig(config);
  store = new DocumentStore({ dynamo: recorded.aws.dynamo, table: resolved.DOCUMENTS_TABLE, tombstoneSeconds: 60, region: resolved.AWS_REGION });
});
afterAll(async () => {
  await app?.close();
});

/** A create, read back unless `unread` (a read fills the caches). */
async function put(who: { tenant: string; key: string }, body: Buffer, unread = false): Promise<string> {
  const id = `doc-${randomUUID()}`;
  const answer = await app.inject({ method: 'PUT', url: `/documents/${id}`, headers: { ...auth(who), 'content-type': 'application/octet-stream' }, payload: body });
  expect(answer.statusCode, answer.body).toBe(201);
  if (unread) return id;
  const read = await app.inject({ method: 'GET', url: `/documents/${id}`, headers: auth(who) });
  expect(read.statusCode).toBe(200);
  expect(read.rawPayload.equals(body)).toBe(true);
  return id;
}

describe('the KMS key named on every write of content', () => {
  it('a one-request create of one part: PutObject under the tenant\'s own key, else the default, with an S3 Bucket Key', async () => {
    const own = await put(keyed, randomBytes(64 * 1024));
    const other = await put(plain, randomBytes(64 * 1024));
    expect(writesOf(sent, keyed.tenant, own).map((s) => [s.command, encryption(s)])).toEqual([['PutObject', underKey(keyed.kms)]]);
    expect(writesOf(sent, plain.tenant, other).map((s) => [s.command, encryption(s)])).toEqual([['PutObject', underKey(DEFAULT_KEY)]]);
  });

  it('a multipart create: the key on CreateMultipartUpload only, never on UploadPart or CompleteMultipartUpload (S3 refuses it there)', async () => {
    const id = await put(keyed, randomBytes(11 * MiB));
    const writes = writesOf(sent, keyed.tenant, id);
    expect(writes.map((s) => s.command)).toEqual(['CreateMultipartUpload', 'UploadPart', 'UploadPart', 'UploadPart', 'CompleteMultipartUpload']);
    expect(encryption(writes[0]!)).toEqual(underKey(keyed.kms));
    for (const write of writes.slice(1)) expect(encryption(write), write.command).toEqual({});
  });

  it('a tenant with its own key has nothing inline, even a few bytes: they go to S3 under its key', async () => {
    const tiny = Buffer.from('twelve bytes');
    const own = await put(keyed, tiny);
    const found = await store.lookup(keyed.tenant, own);
    expect(found.state).toBe('active');
    if (found.state !== 'active') return;
    expect(found.record.content).toBeUndefined();
    expect(found.record.s3Key).toMatch(new RegExp(`^${keyed.tenant}/${own}/`));
    expect(writesOf(sent, keyed.tenant, own).map((s) => [s.command, encryption(s)])).toEqual([['PutObject', underKey(keyed.kms)]]);

    // The same bytes of a tenant without one stay in the item, as INLINE_CONTENT_MAX_BYTES says.
    const other = await put(plain, tiny);
    const inline = await store.lookup(plain.tenant, other);
    expect(inline.state === 'active' && inline.record.content?.equals(tiny)).toBe(true);
    expect(writesOf(sent, plain.tenant, other)).toEqual([]);
  });

  it('a resumable upload: its multipart upload and every tail under the tenant\'s key, its parts and completion with none', async () => {
    const data = randomBytes(5 * MiB + 3000);
    const created = await app.inject({
      method: 'POST',
      url: '/documents',
      headers: { ...auth(keyed), 'tus-resumable': '1.0.0', 'upload-length': String(data.length) },
    });
    expect(created.statusCode, created.body).toBe(201);
    const location = created.headers.location!;
    const documentId = String(created.headers['content-location']).split('/').at(-1)!;
    const patch = (from: number, to: number) =>
      app.inject({
        method: 'PATCH',
        url: location,
        headers: { ...auth(keyed), 'tus-resumable': '1.0.0', 'content-type': 'application/offset+octet-stream', 'upload-offset': String(from) },
        payload: data.subarray(from, to),
      });
    // 1000 bytes: a tail; then the rest, which the tail's bytes and it make into the one (last) part.
    expect((await patch(0, 1000)).statusCode).toBe(204);
    const done = await patch(1000, data.length);
    expect(done.statusCode, done.body).toBe(204);
    const read = await app.inject({ method: 'GET', url: `/documents/${documentId}`, headers: auth(keyed) });
    expect(read.rawPayload.equals(data)).toBe(true);

    const writes = writesOf(sent, keyed.tenant, documentId);
    const creates = writes.filter((s) => s.command === 'CreateMultipartUpload' || s.command === 'PutObject');
    expect(creates.map((s) => s.command)).toEqual(['CreateMultipartUpload', 'PutObject']);
    expect(creates[1]!.path).toMatch(/\.tail\./);
    for (const write of creates) expect(encryption(write), write.command).toEqual(underKey(keyed.kms));
    const rest = writes.filter((s) => s.command === 'UploadPart' || s.command === 'CompleteMultipartUpload');
    expect(rest.map((s) => s.command)).toEqual(['UploadPart', 'CompleteMultipartUpload']);
    for (const write of rest) expect(encryption(write), write.command).toEqual({});
  });
});

describe('a key S3 cannot use (disabled, pending deletion)', () => {
  const refused = (problem: { statusCode: number; json(): { code: string; detail: string } ; headers: Record<string, unknown> }) => {
    expect(problem.statusCode).toBe(503);
    expect(problem.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(problem.json().code).toBe('CONTENT_KEY_UNAVAILABLE');
    expect(problem.headers['retry-after']).toBe('60');
    // What S3 said stays in the log.
    expect(JSON.stringify(problem.json())).not.toMatch(/KMS\.|R-KMS|The key is disabled/);
  };

  it('a read of the tenant\'s content answers a 503 problem, whole or streamed (a copy the caches hold still answers: see the docs)', async () => {
    const small = await put(keyed, randomBytes(4096), true);
    const large = await put(keyed, randomBytes(2 * MiB), true);
    refuse.with = (request) => (request.command === 'GetObject' && request.path.includes(`/${keyed.tenant}/`) ? keyDisabled() : undefined);
    try {
      for (const id of [small, large]) refused(await app.inject({ method: 'GET', url: `/documents/${id}`, headers: auth(keyed) }));
      // Another tenant's content is not under that key.
      const other = await put(plain, randomBytes(4096));
      expect((await app.inject({ method: 'GET', url: `/documents/${other}`, headers: auth(plain) })).statusCode).toBe(200);
    } finally {
      refuse.with = undefined;
    }
  });

  it('a create answers a 503 problem and commits nothing', async () => {
    refuse.with = (request) => (request.command === 'PutObject' && request.path.includes(`/${keyed.tenant}/`) ? keyDisabled() : undefined);
    try {
      const id = `doc-${randomUUID()}`;
      refused(await app.inject({ method: 'PUT', url: `/documents/${id}`, headers: auth(keyed), payload: randomBytes(4096) }));
      expect((await store.lookup(keyed.tenant, id)).state).toBe('absent');
    } finally {
      refuse.with = undefined;
    }
  });
});

describe('without keys configured', () => {
  it('sends no encryption header: the bucket default applies', async () => {
    const recorded = recordedClients({ INLINE_CONTENT_MAX_BYTES: 1024, S3_PART_SIZE_BYTES: 5 * MiB });
    const bare = await testApp({ config: { INLINE_CONTENT_MAX_BYTES: 1024 }, overrides: { aws: recorded.aws } });
    try {
      const id = `doc-${randomUUID()}`;
      const answer = await bare.inject({ method: 'PUT', url: `/documents/${id}`, payload: randomBytes(6 * MiB) });
      expect(answer.statusCode).toBe(201);
      const writes = writesOf(recorded.sent, 'public', id);
      expect(writes.map((s) => s.command)).toEqual(['CreateMultipartUpload', 'UploadPart', 'UploadPart', 'CompleteMultipartUpload']);
      for (const write of writes) expect(encryption(write), write.command).toEqual({});
    } finally {
      await bare.close();
    }
  });
});
