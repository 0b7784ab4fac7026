import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueId } from '../support/app.ts';
import {
  MiB,
  PART,
  TUS,
  TUS_BODY,
  bytesOf,
  documentIdOf,
  expectProblem,
  head,
  metadata,
  offsetOf,
  readDocument,
  send,
  serve,
  sha256Hex,
  tusChecksum,
  tusCreate,
  tusPatch,
  uploadIdOf,
  uploadItem,
  type Answer,
  type Served,
} from './support.ts';

// tus 1.0 (core, creation, creation-with-upload, creation-defer-length,
// termination, expiration, checksum) against the app on a real port.

const TENANT = 'public';
let served: Served;

beforeAll(async () => {
  served = await serve();
});
afterAll(async () => served?.close());

/** Every tus answer names the version, errors included. */
function expectTus(answer: Answer) {
  expect(answer.header('tus-resumable'), `${answer.statusCode} ${answer.body}`).toBe('1.0.0');
}

/** A tus creation that must succeed: its Location and the document path it announces. */
async function created(options: Parameters<typeof tusCreate>[1]) {
  const answer = await tusCreate(served, options);
  expect(answer.statusCode, answer.body).toBe(201);
  expectTus(answer);
  return { answer, location: answer.header('location')!, documentPath: answer.header('content-location')! };
}

describe('discovery', () => {
  for (const path of ['/uploads', '/documents']) {
    it(`OPTIONS ${path} lists what the server supports`, async () => {
      const answer = await send(served.port, 'OPTIONS', path, { headers: TUS });
      expect(answer.statusCode).toBe(204);
      expect(answer.header('tus-resumable')).toBe('1.0.0');
      expect(answer.header('tus-version')!.split(',').map((v) => v.trim())).toContain('1.0.0');
      const extensions = answer.header('tus-extension')!.split(',').map((e) => e.trim());
      for (const extension of ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration', 'checksum']) {
        expect(extensions).toContain(extension);
      }
      expect(answer.header('tus-max-size')).toBe(String(served.config.MAX_DOCUMENT_BYTES));
      expect(answer.header('tus-checksum-algorithm')!.split(',').map((a) => a.trim())).toContain('sha256');
    });
  }
});

describe('creation, HEAD, PATCH in pieces, completion', () => {
  it('creation answers 201 with Location, Upload-Expires, Content-Location; HEAD echoes the upload', async () => {
    const meta = `${metadata({ filetype: 'text/csv', filename: 'report.csv' })},flag`;
    const { answer, location, documentPath } = await created({ length: 4321, meta });
    const uploadId = uploadIdOf(location);
    documentIdOf(documentPath);
    const item = (await uploadItem(served, TENANT, uploadId))!;
    expect(item.state).toBe('OPEN');
    expect(`/documents/${item.documentId}`).toBe(documentPath);
    // Upload-Expires is the upload's expiry, as an HTTP date.
    expect(answer.header('upload-expires')).toBe(new Date(item.expiresAt).toUTCString());

    const status = await head(served, location);
    expect(status.statusCode).toBe(200);
    expectTus(status);
    expect(status.header('upload-offset')).toBe('0');
    expect(status.header('upload-length')).toBe('4321');
    expect(status.header('upload-metadata')).toBe(meta);
    expect(status.header('cache-control')).toBe('no-store');
    expect(status.header('content-location')).toBe(documentPath);
    expect(status.header('upload-expires')).toBe(answer.header('upload-expires'));
  });

  it('appends in pieces (tails, a piece crossing a part, one crossing the next) and completes with the document', async () => {
    const data = bytesOf(11 * MiB + 3, 11);
    const { location, documentPath } = await created({ length: data.length, meta: metadata({ filetype: 'application/pdf' }) });
    const uploadId = uploadIdOf(location);
    // 1000 (a tail), 3 MiB (a bigger tail), 4 MiB (crosses the first part boundary: tail and piece become one
    // part of 7 MiB + 1000, no tail), 100 (a tail again), the rest (crosses the second part boundary and completes).
    const cuts = [1000, 1000 + 3 * MiB, 1000 + 7 * MiB, 1100 + 7 * MiB];
    const tails = [1000, 1000 + 3 * MiB, undefined, 100];
    let offset = 0;
    for (const [i, end] of cuts.entries()) {
      const answer = await tusPatch(served, location, offset, data.subarray(offset, end));
      expect(answer.statusCode, answer.body).toBe(204);
      expectTus(answer);
      expect(answer.header('upload-offset')).toBe(String(end));
      expect(await offsetOf(served, location)).toBe(end);
      offset = end;
      const item = (await uploadItem(served, TENANT, uploadId))!;
      // Parts of at least a part's size, and what follows them in the tail: exactly the offset.
      const inParts = item.parts.reduce((sum, part) => sum + part.size, 0);
      expect(inParts + (item.tail?.size ?? 0)).toBe(end);
      expect(item.parts.every((part) => part.size >= PART)).toBe(true);
      expect(item.tail?.size).toBe(tails[i]);
    }

    const last = await tusPatch(served, location, offset, data.subarray(offset));
    expect(last.statusCode, last.body).toBe(204);
    expectTus(last);
    expect(last.header('upload-offset')).toBe(String(data.length));
    expect(last.header('content-location')).toBe(documentPath);
    expect(last.header('etag')).toBe(`"${sha256Hex(data)}"`);

    const document = await readDocument(served, documentPath);
    expect(document.status).toBe(200);
    expect(document.contentType).toBe('application/pdf');
    expect(document.bytes.length).toBe(data.length);
    expect(document.bytes.equals(data)).toBe(true);

    // A completed upload: HEAD says it is done and where the document is; nothing more can be appended.
    const done = await head(served, location);
    expect(done.statusCode).toBe(200);
    expectTus(done);
    expect(done.header('upload-offset')).toBe(String(data.length));
    expect(done.header('upload-length')).toBe(String(data.length));
    expect(done.header('content-location')).toBe(documentPath);
    const more = await tusPatch(served, location, data.length, Buffer.from('x'));
    expectProblem(more, 400, 'UPLOAD_COMPLETED');
    expectTus(more);
    expect(more.header('upload-offset')).toBe(String(data.length));
    const again = await tusPatch(served, location, 0, data.subarray(0, 10));
    expectProblem(again, 400, 'UPLOAD_COMPLETED');
  });

  it('creation-with-upload: the POST body is the first append; a whole body completes at once', async () => {
    const data = bytesOf(2 * MiB + 5, 21);
    const { answer, location, documentPath } = await created({ length: data.length, body: data.subarray(0, MiB) });
    expect(answer.header('upload-offset')).toBe(String(MiB));
    expect(await offsetOf(served, location)).toBe(MiB);
    const rest = await tusPatch(served, location, MiB, data.subarray(MiB));
    expect(rest.statusCode, rest.body).toBe(204);
    expect(rest.header('etag')).toBe(`"${sha256Hex(data)}"`);
    expect((await readDocument(served, documentPath)).bytes.equals(data)).toBe(true);

    const small = bytesOf(3000, 22);
    const whole = await created({ length: small.length, body: small, meta: metadata({ filetype: 'image/png' }) });
    expect(whole.answer.header('upload-offset')).toBe(String(small.length));
    expect(whole.answer.header('etag')).toBe(`"${sha256Hex(small)}"`);
    const document = await readDocument(served, whole.documentPath);
    expect(document.contentType).toBe('image/png');
    expect(document.bytes.equals(small)).toBe(true);
  });

  it('creation-defer-length: the length comes with a later PATCH', async () => {
    const data = bytesOf(6 * MiB + 17, 31);
    const { location, documentPath } = await created({ defer: true });
    const status = await head(served, location);
    expect(status.header('upload-defer-length')).toBe('1');
    expect(status.header('upload-length')).toBeUndefined();

    const first = await tusPatch(served, location, 0, data.subarray(0, 4000));
    expect(first.statusCode, first.body).toBe(204);
    expect(first.header('upload-offset')).toBe('4000');
    const second = await tusPatch(served, location, 4000, data.subarray(4000, 5 * MiB + 1), { 'upload-length': String(data.length) });
    expect(second.statusCode, second.body).toBe(204);
    const known = await head(served, location);
    expect(known.header('upload-length')).toBe(String(data.length));
    expect(known.header('upload-defer-length')).toBeUndefined();
    expect(known.header('upload-offset')).toBe(String(5 * MiB + 1));

    const last = await tusPatch(served, location, 5 * MiB + 1, data.subarray(5 * MiB + 1));
    expect(last.statusCode, last.body).toBe(204);
    expect(last.header('content-location')).toBe(documentPath);
    expect((await readDocument(served, documentPath)).bytes.equals(data)).toBe(true);
  });
});

describe('client ids', () => {
  it('PUT /documents/{id} creates an upload for that id; identical content again completes on the same document', async () => {
    const id = uniqueId('tus-put');
    const data = bytesOf(7000, 41);
    const first = await created({ documentId: id, length: data.length, meta: metadata({ filetype: 'text/plain' }) });
    expect(first.documentPath).toBe(`/documents/${id}`);
    const done = await tusPatch(served, first.location, 0, data);
    expect(done.statusCode, done.body).toBe(204);
    expect(done.header('content-location')).toBe(`/documents/${id}`);
    const metadataBefore = (await send(served.port, 'GET', `/documents/${id}/metadata`)).json();

    // The same content: the upload completes, on the document that is there (a PUT's 200).
    const retry = await created({ documentId: id, length: data.length, meta: metadata({ filetype: 'text/plain' }) });
    const again = await tusPatch(served, retry.location, 0, data);
    expect(again.statusCode, again.body).toBe(204);
    expect(again.header('content-location')).toBe(`/documents/${id}`);
    expect(again.header('etag')).toBe(`"${sha256Hex(data)}"`);
    const item = (await uploadItem(served, TENANT, uploadIdOf(retry.location)))!;
    expect(item.state).toBe('COMPLETED');
    expect(item.result?.statusCode).toBe(200);
    expect((await send(served.port, 'GET', `/documents/${id}/metadata`)).json()).toEqual(metadataBefore);
    expect((await readDocument(served, `/documents/${id}`)).bytes.equals(data)).toBe(true);
  });

  it('PUT /documents/{id} with other content is 409 DOCUMENT_EXISTS (at completion, or at creation when the length differs)', async () => {
    const id = uniqueId('tus-put-other');
    const data = bytesOf(5000, 51);
    const put = await send(served.port, 'PUT', `/documents/${id}`, { headers: { 'content-type': 'application/octet-stream' }, body: data });
    expect(put.statusCode, put.body).toBe(201);

    const other = bytesOf(5000, 52);
    const upload = await created({ documentId: id, length: other.length });
    const conflict = await tusPatch(served, upload.location, 0, other);
    expectProblem(conflict, 409, 'DOCUMENT_EXISTS');
    expectTus(conflict);

    const longer = await tusCreate(served, { documentId: id, length: 5001 });
    expectProblem(longer, 409, 'DOCUMENT_EXISTS');
    expectTus(longer);
    expect((await readDocument(served, `/documents/${id}`)).bytes.equals(data)).toBe(true);
  });

  it('PUT /documents/{id} of a deleted id is 409 DOCUMENT_DELETED at creation', async () => {
    const id = uniqueId('tus-put-deleted');
    const put = await send(served.port, 'PUT', `/documents/${id}`, { headers: { 'content-type': 'text/plain' }, body: Buffer.from('gone soon') });
    expect(put.statusCode, put.body).toBe(201);
    expect((await send(served.port, 'DELETE', `/documents/${id}`)).statusCode).toBe(204);
    const answer = await tusCreate(served, { documentId: id, length: 9 });
    expectProblem(answer, 409, 'DOCUMENT_DELETED');
    expectTus(answer);
    expect(answer.header('location')).toBeUndefined();
  });

  it('documentId in Upload-Metadata on POST names the document', async () => {
    const id = uniqueId('tus-meta-id');
    const data = bytesOf(20_000, 61);
    const upload = await created({ length: data.length, meta: metadata({ documentId: id, filetype: 'text/markdown' }), body: data });
    expect(upload.documentPath).toBe(`/documents/${id}`);
    const document = await readDocument(served, `/documents/${id}`);
    expect(document.contentType).toBe('text/markdown');
    expect(document.bytes.equals(data)).toBe(true);
  });
});

describe('retention', () => {
  it('Retain-Until on the creation (header, or retainUntil in Upload-Metadata) is the document\'s; DELETE before it is 409', async () => {
    const until = '2031-03-01T10:00:00.000Z';
    for (const [how, options] of [
      ['header', { headers: { 'retain-until': until } }],
      ['metadata', { meta: metadata({ retainUntil: '2031-03-01T11:00:00+01:00' }) }],
    ] as const) {
      const data = bytesOf(PART + 100, 71);
      const upload = await created({ length: data.length, body: data, ...options });
      const meta = await send(served.port, 'GET', `${upload.documentPath}/metadata`);
      expect(JSON.parse(meta.body).retainUntil, how).toBe(until);
      const refused = await send(served.port, 'DELETE', upload.documentPath);
      expect(refused.statusCode, how).toBe(409);
      expect(JSON.parse(refused.body).code).toBe('DOCUMENT_RETAINED');
      expect((await readDocument(served, upload.documentPath)).bytes.equals(data)).toBe(true);
    }
  });

  it('a Retain-Until that is no future time refuses the creation (400): no upload is made', async () => {
    const answer = await tusCreate(served, { length: 10, headers: { 'retain-until': 'yesterday' } });
    expectProblem(answer, 400, 'INVALID_RETAIN_UNTIL');
    expectTus(answer);
    expect(answer.header('location')).toBeUndefined();
  });
});

describe('checksum', () => {
  it('Upload-Checksum sha256: a match is stored; a mismatch is 460 with nothing stored, and the right bytes then succeed', async () => {
    const data = bytesOf(PART + 10_000, 71);
    const { location, documentPath } = await created({ length: data.length });
    const first = await tusPatch(served, location, 0, data.subarray(0, 1000), { 'upload-checksum': tusChecksum(data.subarray(0, 1000)) });
    expect(first.statusCode, first.body).toBe(204);
    expect(first.header('upload-offset')).toBe('1000');

    // The rest (crossing a part boundary), with the checksum of other bytes.
    const rest = data.subarray(1000);
    const wrong = await tusPatch(served, location, 1000, rest, { 'upload-checksum': tusChecksum(Buffer.from('other bytes')) });
    expectProblem(wrong, 460, 'CHECKSUM_MISMATCH');
    expectTus(wrong);
    expect(wrong.header('upload-offset')).toBe('1000');
    expect(await offsetOf(served, location)).toBe(1000);

    const right = await tusPatch(served, location, 1000, rest, { 'upload-checksum': tusChecksum(rest) });
    expect(right.statusCode, right.body).toBe(204);
    expect(right.header('etag')).toBe(`"${sha256Hex(data)}"`);
    expect((await readDocument(served, documentPath)).bytes.equals(data)).toBe(true);
  });

  it('an Upload-Checksum algorithm other than sha256 is 400, nothing stored', async () => {
    const { location } = await created({ length: 100 });
    const answer = await tusPatch(served, location, 0, bytesOf(100, 81), { 'upload-checksum': `md5 ${Buffer.alloc(16).toString('base64')}` });
    expectProblem(answer, 400, 'UNSUPPORTED_CHECKSUM_ALGORITHM');
    expectTus(answer);
    expect(await offsetOf(served, location)).toBe(0);
  });
});

describe('errors speak tus', () => {
  it('an unknown upload, or an id that is none: 404 with Tus-Resumable on HEAD, PATCH and DELETE', async () => {
    for (const location of ['/uploads/00000000-0000-4000-8000-000000000000', '/uploads/not-an-upload-id']) {
      const status = await head(served, location);
      expect(status.statusCode).toBe(404);
      expectTus(status);
      const patch = await tusPatch(served, location, 0, Buffer.from('abc'));
      expectProblem(patch, 404, 'UPLOAD_NOT_FOUND');
      expectTus(patch);
      const cancel = await send(served.port, 'DELETE', location, { headers: TUS });
      expectProblem(cancel, 404, 'UPLOAD_NOT_FOUND');
      expectTus(cancel);
    }
  });

  it('a refused creation and a refused append carry Tus-Resumable', async () => {
    const creation = await send(served.port, 'POST', '/documents', { headers: { ...TUS } });
    expectProblem(creation, 400, 'INVALID_UPLOAD_REQUEST');
    expectTus(creation);
    const { location } = await created({ length: 10 });
    const mismatch = await tusPatch(served, location, 5, Buffer.from('12345'));
    expectProblem(mismatch, 409, 'UPLOAD_OFFSET_MISMATCH');
    expectTus(mismatch);
    expect(mismatch.header('upload-offset')).toBe('0');
    const wrongType = await send(served.port, 'PATCH', location, {
      headers: { ...TUS, 'content-type': 'application/octet-stream', 'upload-offset': '0' },
      body: Buffer.from('12345'),
    });
    expectProblem(wrongType, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectTus(wrongType);
    const noOffset = await send(served.port, 'PATCH', location, { headers: { ...TUS, 'content-type': TUS_BODY }, body: Buffer.from('12345') });
    expectProblem(noOffset, 400, 'INVALID_UPLOAD_REQUEST');
    expectTus(noOffset);
    expect(await offsetOf(served, location)).toBe(0);
  });
});
