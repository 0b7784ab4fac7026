import { createHash } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { UploadPartCommand } from '@aws-sdk/client-s3';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { Config } from '../../src/config.ts';
import { UploadRecords, type Upload } from '../../src/documents/uploads/upload-records.ts';
import { testApp, testConfig } from '../support/app.ts';
import { eventually } from '../documents/support.ts';

// Helpers of the resumable-upload tests: the app on a real port, plain
// HTTP/1.1 requests through node:http (bodies of any shape, answers that
// come before the body is sent), the protocols' headers, and what the
// stack holds behind the service (the upload's item, its multipart upload).

export const MiB = 1024 * 1024;
/** S3_PART_SIZE_BYTES of every test app: the S3 minimum. */
export const PART = 5 * MiB;

export const TUS = { 'tus-resumable': '1.0.0' } as const;
export const TUS_BODY = 'application/offset+octet-stream';
export const IETF_BODY = 'application/partial-upload';
export const ietf = (version: number | string = 6) => ({ 'upload-draft-interop-version': String(version) });

export type ConfigOverrides = Parameters<typeof testConfig>[0];

/** The app listening on 127.0.0.1 (a free port), its config and clients. */
export type Served = {
  app: FastifyInstance;
  config: Config;
  port: number;
  base: string;
  records: UploadRecords;
  close(): Promise<void>;
};

export async function serve(config: ConfigOverrides = {}): Promise<Served> {
  const merged = { S3_PART_SIZE_BYTES: PART, MAX_DOCUMENT_BYTES: 64 * MiB, ...config };
  const app = await testApp({ config: merged });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  const resolved = testConfig(merged);
  return {
    app,
    config: resolved,
    port,
    base: `http://127.0.0.1:${port}`,
    records: new UploadRecords({ dynamo: app.aws.dynamo, table: resolved.DOCUMENTS_TABLE }),
    close: () => app.close(),
  };
}

/** An answer, in the shape test/support/problem.ts's expectProblem takes. */
export type Answer = {
  statusCode: number;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  body: string;
  json(): any;
  header(name: string): string | undefined;
};

function answerOf(statusCode: number, headers: IncomingHttpHeaders, raw: Buffer): Answer {
  return {
    statusCode,
    headers,
    raw,
    body: raw.toString('utf8'),
    json: () => JSON.parse(raw.toString('utf8')),
    header: (name) => {
      const value = headers[name.toLowerCase()];
      return Array.isArray(value) ? value.join(', ') : value;
    },
  };
}

/** The answer to `req`, whole; an error after the answer began (a write the server no longer reads) is not the request's. */
function collect(req: ClientRequest, resolve: (answer: Answer) => void, reject: (error: Error) => void): void {
  let answered = false;
  req.on('response', (res) => {
    answered = true;
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => resolve(answerOf(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))));
    res.on('error', reject);
  });
  req.on('error', (error) => {
    if (!answered) reject(error);
  });
}

export type SendOptions = { headers?: OutgoingHttpHeaders; body?: Buffer; chunked?: boolean };

/**
 * One request on a connection of its own. The answer may come before the
 * body is sent whole (a refusal): writing errors after it are ignored.
 * `chunked`: no Content-Length, the body in chunks.
 */
export function send(port: number, method: string, path: string, options: SendOptions = {}): Promise<Answer> {
  const { headers = {}, body, chunked = false } = options;
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method,
      path,
      agent: false,
      headers: { ...(body !== undefined && !chunked ? { 'content-length': body.length } : {}), ...headers },
    });
    collect(req, resolve, reject);
    if (body === undefined) req.end();
    else if (chunked) {
      for (let offset = 0; offset < body.length; offset += 64 * 1024) req.write(body.subarray(offset, offset + 64 * 1024));
      req.end();
    } else req.end(body);
  });
}

/**
 * A request whose body the test sends piece by piece (Content-Length
 * declared up front, `length`): it stays in flight, holding whatever the
 * server gives it, until the test sends the rest.
 */
export function held(port: number, method: string, path: string, headers: OutgoingHttpHeaders, length: number) {
  const req = httpRequest({ host: '127.0.0.1', port, method, path, agent: false, headers: { ...headers, 'content-length': length } });
  const answer = new Promise<Answer>((resolve, reject) => {
    collect(req, resolve, reject);
  });
  // Awaited by the test when it ends the body; a failure before then must not be an unhandled rejection.
  answer.catch(() => {});
  req.flushHeaders();
  return {
    answer,
    /** Sends more of the body; resolves once Node handed it to the socket. */
    write: (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        req.write(bytes, () => resolve());
      }),
    /** Sends the last bytes (the body must then be `length` bytes in all). */
    end: (bytes?: Buffer) => {
      req.end(bytes);
      return answer;
    },
  };
}

export const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
export const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest();
export const sha256Hex = (bytes: Buffer) => sha256(bytes).toString('hex');
/** RFC 9530 sha-256 member, as Content-Digest and Repr-Digest take it. */
export const digestField = (bytes: Buffer) => `sha-256=:${sha256(bytes).toString('base64')}:`;
/** tus Upload-Checksum. */
export const tusChecksum = (bytes: Buffer) => `sha256 ${sha256(bytes).toString('base64')}`;

/** Upload-Metadata from pairs (values base64-encoded). */
export function metadata(pairs: Record<string, string>): string {
  return Object.entries(pairs)
    .map(([key, value]) => `${key} ${b64(value)}`)
    .join(',');
}

/** Distinct, recognisable bytes: `seed` picks which (two seeds never give the same bytes). */
export function bytesOf(length: number, seed = 1): Buffer {
  const bytes = Buffer.alloc(length);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i += 4) {
    // xorshift32
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    if (i + 4 <= length) bytes.writeUInt32LE(state, i);
    else for (let j = i; j < length; j++) bytes[j] = (state >>> ((j - i) * 8)) & 0xff;
  }
  return bytes;
}

/** The upload id of a Location `/uploads/{id}`. */
export function uploadIdOf(location: string | undefined): string {
  const match = /^\/uploads\/([0-9a-f-]{36})$/.exec(location ?? '');
  if (!match) throw new Error(`not an upload location: ${location}`);
  return match[1]!;
}

/** The document id of a Content-Location `/documents/{id}`. */
export function documentIdOf(location: string | undefined): string {
  const match = /^\/documents\/([A-Za-z0-9_-]+)$/.exec(location ?? '');
  if (!match) throw new Error(`not a document location: ${location}`);
  return match[1]!;
}

/** A problem answer: status, code, problem+json, and the request id it names. */
export function expectProblem(answer: Answer, status: number, code: string) {
  expect(answer.statusCode, answer.body).toBe(status);
  expect(answer.header('content-type')).toMatch(/^application\/problem\+json/);
  const body = answer.json();
  expect(body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  expect(body.requestId).toBe(answer.header('x-request-id'));
  return body as { status: number; code: string; type: string; title: string; detail: string; [member: string]: unknown };
}

/** A tus creation (POST /documents, or PUT with `documentId`); the answer as is. */
export function tusCreate(served: Served, options: { length?: number; defer?: boolean; meta?: string; headers?: OutgoingHttpHeaders; body?: Buffer; documentId?: string } = {}) {
  const headers: OutgoingHttpHeaders = { ...TUS, ...options.headers };
  if (options.length !== undefined) headers['upload-length'] = String(options.length);
  if (options.defer) headers['upload-defer-length'] = '1';
  if (options.meta !== undefined) headers['upload-metadata'] = options.meta;
  if (options.body !== undefined) headers['content-type'] = TUS_BODY;
  const path = options.documentId === undefined ? '/documents' : `/documents/${options.documentId}`;
  return send(served.port, options.documentId === undefined ? 'POST' : 'PUT', path, { headers, ...(options.body !== undefined ? { body: options.body } : {}) });
}

/** A tus PATCH at `offset`. */
export function tusPatch(served: Served, location: string, offset: number, body: Buffer, headers: OutgoingHttpHeaders = {}) {
  return send(served.port, 'PATCH', location, { headers: { ...TUS, 'content-type': TUS_BODY, 'upload-offset': String(offset), ...headers }, body });
}

/** An IETF append at `offset`. */
export function ietfPatch(served: Served, location: string, offset: number, body: Buffer, complete: boolean, headers: OutgoingHttpHeaders = {}) {
  return send(served.port, 'PATCH', location, {
    headers: { ...ietf(6), 'content-type': IETF_BODY, 'upload-offset': String(offset), 'upload-complete': complete ? '?1' : '?0', ...headers },
    body,
  });
}

export function head(served: Served, location: string, headers: OutgoingHttpHeaders = TUS) {
  return send(served.port, 'HEAD', location, { headers });
}

/** The offset HEAD answers (tus unless other headers are given). */
export async function offsetOf(served: Served, location: string, headers: OutgoingHttpHeaders = TUS): Promise<number> {
  const answer = await head(served, location, headers);
  expect([200, 204], `HEAD ${location}: ${answer.statusCode}`).toContain(answer.statusCode);
  return Number(answer.header('upload-offset'));
}

/** The bytes and content type of a document. */
export async function readDocument(served: Served, documentPath: string, headers: OutgoingHttpHeaders = {}) {
  const answer = await send(served.port, 'GET', documentPath, { headers });
  return { status: answer.statusCode, bytes: answer.raw, contentType: answer.header('content-type'), etag: answer.header('etag') };
}

/** The upload's item in DynamoDB, read behind the service's back. */
export async function uploadItem(served: Served, tenant: string, uploadId: string): Promise<Upload | undefined> {
  return served.records.get(tenant, uploadId);
}

/** Sets the upload's expiry in the past, as if its time had run out. */
export async function expireUpload(served: Served, tenant: string, uploadId: string): Promise<void> {
  await served.app.aws.dynamo.updateItem({
    TableName: served.config.DOCUMENTS_TABLE,
    Key: { pk: `${tenant}#upload#${uploadId}` },
    UpdateExpression: 'SET expiresAt = :past',
    ConditionExpression: 'attribute_exists(pk)',
    ExpressionAttributeValues: { ':past': 1 },
  });
}

/**
 * Whether a multipart upload is gone: a part sent to it gets NoSuchUpload
 * (the S3 emulator does not list multipart uploads, so a listing proves nothing).
 */
export async function multipartUploadGone(served: Served, key: string, s3UploadId: string): Promise<boolean> {
  try {
    await served.app.aws.s3.send(
      new UploadPartCommand({ Bucket: served.config.DOCUMENTS_BUCKET, Key: key, UploadId: s3UploadId, PartNumber: 9999, Body: Buffer.from('probe') }),
    );
    return false;
  } catch (error) {
    if ((error as Error).name === 'NoSuchUpload') return true;
    throw error;
  }
}

/** The value of a gauge (no labels) on GET /metrics. */
export async function gauge(served: Served, name: string): Promise<number> {
  const answer = await send(served.port, 'GET', '/metrics');
  const line = answer.body.split('\n').find((text) => text.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

/** Waits until the gauge reads `value` (10 s at most; the caller asserts on what it returns). */
export function gaugeReads(served: Served, name: string, value: number): Promise<number> {
  return eventually(() => gauge(served, name), (read) => read === value);
}
