import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { HttpRequest } from '@smithy/core/transport';
import type { S3Client } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { DocumentStore } from '../../src/documents/document-store.ts';
import { hashApiKey } from '../../src/http/auth.ts';
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

/** AWS clients whose S3 requests are recorded as signed, just before they are sent. */
function recordedClients(overrides: Parameters<typeof testConfig>[0]): { aws: AwsClients; sent: Sent[] } {
  const aws = createAwsClients(testConfig(overrides));
  const sent: Sent[] = [];
  const record = (client: S3Client) =>
    client.middlewareStack.add(
      (next, context) => (args) => {
        if (HttpRequest.isInstance(args.request)) {
          const { headers, path } = args.request;
          sent.push({
            command: (context.commandName ?? '').replace(/Command$/, ''),
            path,
            ...(headers['x-amz-server-side-encryption'] ? { algorithm: headers['x-amz-server-side-encryption'] } : {}),
            ...(headers['x-amz-server-side-encryption-aws-kms-key-id'] ? { keyId: headers['x-amz-server-side-encryption-aws-kms-key-id'] } : {}),
            ...(headers['x-amz-server-side-encryption-bucket-key-enabled'] ? { bucketKey: headers['x-amz-server-side-encryption-bucket-key-enabled'] } : {}),
          });
        }
        return next(args);
      },
      { step: 'deserialize', name: 'recordSentRequests' },
    );
  record(aws.s3);
  record(aws.s3Transfer);
  return { aws, sent };
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
let store: DocumentStore;

beforeAll(async () => {
  const recorded = recordedClients(config);
  sent = recorded.sent;
  app = await testApp({ config, overrides: { aws: recorded.aws } });
  const resolved = testConfig(config);
  store = new DocumentStore({ dynamo: recorded.aws.dynamo, table: resolved.DOCUMENTS_TABLE, tombstoneSeconds: 60, region: resolved.AWS_REGION });
});
afterAll(async () => {
  await app?.close();
});

async function put(who: { tenant: string; key: string }, body: Buffer): Promise<string> {
  const id = `doc-${randomUUID()}`;
  const answer = await app.inject({ method: 'PUT', url: `/documents/${id}`, headers: { ...auth(who), 'content-type': 'application/octet-stream' }, payload: body });
  expect(answer.statusCode, answer.body).toBe(201);
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
