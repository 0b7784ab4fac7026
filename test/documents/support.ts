import { randomBytes, randomUUID } from 'node:crypto';
import { ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { AwsClients } from '../../src/adapters/aws.ts';
import { hashApiKey } from '../support/config.ts';
import type { Config } from '../../src/config.ts';

/** A tenant of a test file's own: every object it writes is under `<tenant>/` in the bucket. */
export function ownTenant(prefix: string) {
  const tenant = `${prefix}-${randomUUID().slice(0, 8)}`;
  const key = `key-${randomUUID()}`;
  return {
    tenant,
    config: { AUTH_MODE: 'api-key', API_KEYS: `${tenant}:${hashApiKey(key)}`, RATE_LIMIT_PER_MINUTE: 1_000_000 } as const,
    headers: { authorization: `Bearer ${key}` },
  };
}

/** What the bucket holds under a prefix: objects and unfinished multipart uploads. */
export async function bucketContents(aws: AwsClients, config: Config, prefix: string) {
  const [objects, uploads] = await Promise.all([
    aws.s3.send(new ListObjectsV2Command({ Bucket: config.DOCUMENTS_BUCKET, Prefix: prefix })),
    aws.s3.send(new ListMultipartUploadsCommand({ Bucket: config.DOCUMENTS_BUCKET, Prefix: prefix })),
  ]);
  return {
    objects: (objects.Contents ?? []).map((object) => object.Key!).sort(),
    uploads: (uploads.Uploads ?? []).map((upload) => upload.Key!),
  };
}

/** Overwrites an object behind the service's back: what a disk fault or a stray writer would do. */
export async function overwriteObject(aws: AwsClients, config: Config, key: string, body: Buffer) {
  await aws.s3.send(new PutObjectCommand({ Bucket: config.DOCUMENTS_BUCKET, Key: key, Body: body }));
}

/** Polls until `check` holds or the deadline passes; the last value is returned either way for the assertion. */
export async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (check(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const MiB = 1024 * 1024;
const tus = { 'tus-resumable': '1.0.0' } as const;

/** A tus PATCH of an upload's bytes from `offset`, through the app (no port). */
export function patchUpload(app: FastifyInstance, uploadId: string, offset: number, payload: Buffer) {
  return app.inject({
    method: 'PATCH',
    url: `/uploads/${uploadId}`,
    headers: { ...tus, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    payload,
  });
}

/**
 * A tus upload of `length` bytes (more than 6 MiB) created through the app,
 * with a part (5 MiB, in its multipart upload) and a tail (1 MiB, an object
 * of its own) stored: its upload id.
 */
export async function uploadWithPartAndTail(app: FastifyInstance, length: number): Promise<string> {
  const created = await app.inject({ method: 'POST', url: '/documents', headers: { ...tus, 'upload-length': String(length) } });
  expect(created.statusCode).toBe(201);
  const uploadId = created.headers.location!.replace('/uploads/', '');
  for (const [offset, size] of [[0, 5 * MiB], [5 * MiB, MiB]] as const) {
    const patched = await patchUpload(app, uploadId, offset, randomBytes(size));
    expect(patched.headers['upload-offset']).toBe(String(offset + size));
  }
  return uploadId;
}
