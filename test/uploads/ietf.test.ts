import type { OutgoingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IETF_BODY,
  MiB,
  bytesOf,
  digestField,
  documentIdOf,
  expectProblem,
  head,
  ietf,
  ietfPatch,
  readDocument,
  send,
  serve,
  sha256Hex,
  uploadIdOf,
  type Answer,
  type Served,
} from './support.ts';

// The IETF draft "Resumable Uploads for HTTP" (interop versions 6-8)
// against the app on a real port.

/** A part and a little more: a digest is checked over bytes that went to S3 as a part. */
const PART_PLUS = 5 * MiB + 4321;

let served: Served;

beforeAll(async () => {
  served = await serve();
});
afterAll(async () => served?.close());

/** An IETF creation on POST /documents: Upload-Complete, and whatever else is given. */
function ietfCreate(options: { complete: boolean; body?: Buffer; headers?: OutgoingHttpHeaders; version?: number }) {
  const headers: OutgoingHttpHeaders = { ...ietf(options.version ?? 6), 'upload-complete': options.complete ? '?1' : '?0', ...options.headers };
  return send(served.port, 'POST', '/documents', { headers, ...(options.body !== undefined ? { body: options.body } : {}) });
}

/** A creation that must open an upload (201 with its Location). */
async function opened(options: Parameters<typeof ietfCreate>[0]) {
  const answer = await ietfCreate(options);
  expect(answer.statusCode, answer.body).toBe(201);
  const location = answer.header('location')!;
  uploadIdOf(location);
  return { answer, location, documentPath: answer.header('content-location')! };
}

const ietfHead = (location: string, version = 6) => head(served, location, ietf(version));

async function offsetOf(location: string): Promise<number> {
  const answer = await ietfHead(location);
  expect(answer.statusCode, answer.body).toBe(204);
  return Number(answer.header('upload-offset'));
}

/** The answer that completed an upload: the document's own 201 (or 200), with the upload's state. */
function expectDocumentAnswer(answer: Answer, data: Buffer, status = 201) {
  expect(answer.statusCode, answer.body).toBe(status);
  expect(answer.header('content-type')).toMatch(/^application\/json/);
  const body = answer.json();
  expect(answer.header('location')).toBe(`/documents/${body.id}`);
  expect(answer.header('etag')).toBe(`"${sha256Hex(data)}"`);
  expect(answer.header('upload-complete')).toBe('?1');
  expect(answer.header('upload-offset')).toBe(String(data.length));
  expect(body).toMatchObject({ size: data.length, checksum: sha256Hex(data) });
  return body as { id: string; contentType: string; size: number; checksum: string };
}

describe('creation, HEAD, appends, completion', () => {
  it('Upload-Complete ?0 opens an upload; appends ?0 then ?1 end with the document\'s 201', async () => {
    const data = bytesOf(11 * MiB + 5, 101);
    const { answer, location, documentPath } = await opened({ complete: false, headers: { 'upload-length': String(data.length) } });
    expect(answer.header('upload-limit')).toMatch(new RegExp(`(^|, )max-size=${served.config.MAX_DOCUMENT_BYTES}(,|$)`));
    expect(answer.header('upload-complete')).toBe('?0');
    expect(answer.header('upload-offset')).toBe('0');
    documentIdOf(documentPath);

    const status = await ietfHead(location);
    expect(status.statusCode).toBe(204);
    expect(status.header('upload-offset')).toBe('0');
    expect(status.header('upload-complete')).toBe('?0');
    expect(status.header('upload-length')).toBe(String(data.length));
    expect(status.header('cache-control')).toBe('no-store');
    expect(status.header('upload-limit')).toMatch(/max-size=\d+/);
    expect(status.header('tus-resumable')).toBeUndefined();

    // 3 MiB (a tail), 4 MiB + 1 (crosses a part boundary), 2 bytes (a tail), then the rest, completing.
    let offset = 0;
    for (const end of [3 * MiB, 7 * MiB + 1, 7 * MiB + 3]) {
      const piece = await ietfPatch(served, location, offset, data.subarray(offset, end), false);
      expect(piece.statusCode, piece.body).toBe(204);
      expect(piece.header('upload-offset')).toBe(String(end));
      expect(piece.header('upload-complete')).toBe('?0');
      expect(await offsetOf(location)).toBe(end);
      offset = end;
    }
    const last = await ietfPatch(served, location, offset, data.subarray(offset), true);
    const metadata = expectDocumentAnswer(last, data);
    expect(`/documents/${metadata.id}`).toBe(documentPath);
    expect(metadata.contentType).toBe('application/octet-stream');
    const document = await readDocument(served, documentPath);
    expect(document.status).toBe(200);
    expect(document.bytes.equals(data)).toBe(true);

    // Done: HEAD says so, at offset = length.
    const done = await ietfHead(location);
    expect(done.statusCode).toBe(204);
    expect(done.header('upload-complete')).toBe('?1');
    expect(done.header('upload-offset')).toBe(String(data.length));
    expect(done.header('content-location')).toBe(documentPath);
  });

  it('a creation carrying the whole body with Upload-Complete ?1 answers the document\'s 201 directly', async () => {
    const data = bytesOf(40_000, 102);
    const answer = await ietfCreate({ complete: true, body: data, headers: { 'content-type': 'application/pdf' } });
    const metadata = expectDocumentAnswer(answer, data);
    expect(metadata.contentType).toBe('application/pdf');
    const document = await readDocument(served, `/documents/${metadata.id}`);
    expect(document.contentType).toBe('application/pdf');
    expect(document.bytes.equals(data)).toBe(true);
  });

  it('the Content-Type of the creation (not partial-upload) is the document\'s', async () => {
    const data = bytesOf(30_000, 103);
    const { answer, location, documentPath } = await opened({ complete: false, body: data.subarray(0, 10_000), headers: { 'content-type': 'text/csv' } });
    expect(answer.header('upload-offset')).toBe('10000');
    const last = await ietfPatch(served, location, 10_000, data.subarray(10_000), true);
    expect(expectDocumentAnswer(last, data).contentType).toBe('text/csv');
    expect((await readDocument(served, documentPath)).contentType).toBe('text/csv');

    // application/partial-upload on the creation says nothing of the document's type.
    const partial = await opened({ complete: false, body: data.subarray(0, 100), headers: { 'content-type': IETF_BODY } });
    const end = await ietfPatch(served, partial.location, 100, data.subarray(100, 200), true);
    expect(expectDocumentAnswer(end, data.subarray(0, 200)).contentType).toBe('application/octet-stream');
  });

  for (const version of [7, 8]) {
    it(`interop version ${version}`, async () => {
      const data = bytesOf(50_000, 110 + version);
      const { location } = await opened({ complete: false, version, body: data.subarray(0, 20_000) });
      const status = await ietfHead(location, version);
      expect(status.statusCode).toBe(204);
      expect(status.header('upload-offset')).toBe('20000');
      const last = await ietfPatch(served, location, 20_000, data.subarray(20_000), true, ietf(version));
      const metadata = expectDocumentAnswer(last, data);
      expect((await readDocument(served, `/documents/${metadata.id}`)).bytes.equals(data)).toBe(true);
    });
  }

  it('interop version 5 is 412', async () => {
    const creation = await ietfCreate({ complete: false, version: 5 });
    expectProblem(creation, 412, 'UNSUPPORTED_UPLOAD_VERSION');
    expect(creation.header('location')).toBeUndefined();
    const { location } = await opened({ complete: false });
    const append = await ietfPatch(served, location, 0, Buffer.from('abc'), true, ietf(5));
    expectProblem(append, 412, 'UNSUPPORTED_UPLOAD_VERSION');
    expect(await offsetOf(location)).toBe(0);
  });
});

describe('lengths and offsets', () => {
  it('Upload-Length and a final append ending elsewhere: 400 UPLOAD_LENGTH_MISMATCH', async () => {
    const data = bytesOf(3000, 121);
    const { location } = await opened({ complete: false, headers: { 'upload-length': '3000' } });
    const first = await ietfPatch(served, location, 0, data.subarray(0, 1000), false);
    expect(first.statusCode, first.body).toBe(204);
    const short = await ietfPatch(served, location, 1000, data.subarray(1000, 2000), true);
    const problem = expectProblem(short, 400, 'UPLOAD_LENGTH_MISMATCH');
    expect(problem.type).toBe('https://iana.org/assignments/http-problem-types#inconsistent-upload-length');
    expect(short.header('upload-offset')).toBe('1000');
    expect(await offsetOf(location)).toBe(1000);
    // The right end completes.
    expectDocumentAnswer(await ietfPatch(served, location, 1000, data.subarray(1000), true), data);

    // On a creation, Upload-Length and the whole body's Content-Length must agree.
    const disagree = await ietfCreate({ complete: true, body: data, headers: { 'upload-length': '2999' } });
    expectProblem(disagree, 400, 'UPLOAD_LENGTH_MISMATCH');
  });

  it('another offset: 409 mismatching-upload-offset with the expected and provided offsets', async () => {
    const data = bytesOf(5000, 131);
    const { location } = await opened({ complete: false, body: data.subarray(0, 2000) });
    for (const provided of [0, 1999, 2001]) {
      const answer = await ietfPatch(served, location, provided, data.subarray(provided, provided + 100), false);
      const problem = expectProblem(answer, 409, 'UPLOAD_OFFSET_MISMATCH');
      expect(problem.type).toBe('https://iana.org/assignments/http-problem-types#mismatching-upload-offset');
      expect(problem['expected-offset']).toBe(2000);
      expect(problem['provided-offset']).toBe(provided);
      expect(answer.header('upload-offset')).toBe('2000');
    }
    expect(await offsetOf(location)).toBe(2000);
  });
});

describe('digests', () => {
  it('Repr-Digest on the creation: the document is stored when the bytes match', async () => {
    const data = bytesOf(PART_PLUS, 141);
    const { location, documentPath } = await opened({ complete: false, headers: { 'repr-digest': digestField(data) }, body: data.subarray(0, 1000) });
    const last = await ietfPatch(served, location, 1000, data.subarray(1000), true);
    expectDocumentAnswer(last, data);
    expect((await readDocument(served, documentPath)).bytes.equals(data)).toBe(true);
  });

  it('a Repr-Digest that does not match: 400 DIGEST_MISMATCH at completion, no document, and HEAD answers the same', async () => {
    const data = bytesOf(PART_PLUS, 151);
    const { location, documentPath } = await opened({ complete: false, headers: { 'repr-digest': digestField(Buffer.from('other')) }, body: data.subarray(0, 1000) });
    const last = await ietfPatch(served, location, 1000, data.subarray(1000), true);
    expectProblem(last, 400, 'DIGEST_MISMATCH');
    expect((await readDocument(served, documentPath)).status).toBe(404);
    const status = await ietfHead(location);
    expect(status.statusCode).toBe(400);
    expect(status.header('content-type')).toMatch(/^application\/problem\+json/);
    // And so does every later request about it.
    const again = await ietfPatch(served, location, 1000, data.subarray(1000), true);
    expectProblem(again, 400, 'DIGEST_MISMATCH');
    expect((await readDocument(served, documentPath)).status).toBe(404);
  });

  it('a Content-Digest on an append that does not match: 400 DIGEST_MISMATCH, offset unchanged; a matching one is stored', async () => {
    const data = bytesOf(PART_PLUS, 161);
    const { location, documentPath } = await opened({ complete: false, body: data.subarray(0, 3000) });
    const rest = data.subarray(3000);
    const wrong = await ietfPatch(served, location, 3000, rest, true, { 'content-digest': digestField(rest.subarray(1)) });
    expectProblem(wrong, 400, 'DIGEST_MISMATCH');
    expect(wrong.header('upload-offset')).toBe('3000');
    expect(await offsetOf(location)).toBe(3000);
    const wrongPiece = await ietfPatch(served, location, 3000, rest.subarray(0, 500), false, { 'content-digest': digestField(Buffer.from('x')) });
    expectProblem(wrongPiece, 400, 'DIGEST_MISMATCH');
    expect(await offsetOf(location)).toBe(3000);

    const right = await ietfPatch(served, location, 3000, rest, true, { 'content-digest': digestField(rest) });
    expectDocumentAnswer(right, data);
    expect((await readDocument(served, documentPath)).bytes.equals(data)).toBe(true);
  });
});
