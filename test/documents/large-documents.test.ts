import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { freePort } from '../../src/local/emulators.ts';
import { testConfig, uniqueId } from '../support/app.ts';
import { assertBuilt, kill, report, startServer, type ServerProcess } from '../faults/support.ts';
import { answerToHead, download, generatedBody, memoryOf, resetPeak, send } from '../support/large-body.ts';
import { bucketContents, eventually, overwriteObject } from './support.ts';

// Documents of 100 MB through the built server, a process of its own so that
// its memory is its own to read (/proc/<pid>/status: VmRSS now, VmHWM the peak
// since the last reset). The bounds below are the contract's "memory never
// grows with the size of one request": a fixed allowance, whatever the size.

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const PARTS_IN_FLIGHT = 1;
const SPARE_PART_BUFFERS = 2;
/**
 * Allowance for garbage not yet collected (socket reads, part requests) and
 * the heap's own growth: the 64 MiB. Measured growth for one 100 MB
 * upload is reported by the test (38-41 MiB at the time of writing).
 */
const ALLOWANCE = 64 * MiB;
const MAX_CONCURRENT_UPLOADS = 10;

const config = testConfig();
let aws: AwsClients;
let server: ServerProcess;
let port: number;
let pid: number;

beforeAll(async () => {
  assertBuilt();
  aws = createAwsClients(config);
  port = await freePort();
  server = await startServer(
    {
      ...inject('stackEnv'),
      MAX_CONCURRENT_UPLOADS: String(MAX_CONCURRENT_UPLOADS),
      // One tenant (AUTH_MODE=none) makes them all: its share is the whole process's here.
      MAX_CONCURRENT_UPLOADS_PER_TENANT: String(MAX_CONCURRENT_UPLOADS),
      S3_PARTS_IN_FLIGHT: String(PARTS_IN_FLIGHT),
      S3_SPARE_PART_BUFFERS: String(SPARE_PART_BUFFERS),
      // About memory and streams, not shedding: an unsampled event loop on a loaded machine sheds.
      LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
      // The emulators share the test runner's process: under ten parallel uploads on a loaded
      // machine they answer slower than the 1 s production deadline of one store call.
      AWS_REQUEST_TIMEOUT_MS: '5000',
    },
    port,
  );
  pid = server.child.pid!;
  // Code paths loaded, heap and allocator grown once (a multipart upload and a streamed read of
  // 20 MB), as in a server that has served before: what follows is measured against that, and a
  // document five times as large must cost no more.
  const warm = generatedBody(20 * MiB);
  const warmId = uniqueId('warm');
  expect((await send(port, { method: 'PUT', path: `/documents/${warmId}`, headers: { 'content-length': warm.size }, body: warm.stream() })).status).toBe(201);
  expect((await download(port, `/documents/${warmId}`)).sha256).toBe(warm.sha256);
}, 60_000);

afterAll(async () => {
  if (server) await kill(server);
  aws?.destroy();
});

const MB100 = 100 * 1000 * 1000;

describe('a 100 MB document', () => {
  it.each([
    ['with Content-Length', true],
    ['chunked, of unknown length', false],
  ])('uploaded %s and downloaded: the same SHA-256, and the API grows by less than 64 MiB', async (_name, declared) => {
    const body = generatedBody(MB100);
    const id = uniqueId('big');
    resetPeak(pid);
    const before = memoryOf(pid);
    const started = performance.now();
    const created = await send(port, {
      method: 'PUT',
      path: `/documents/${id}`,
      headers: { 'content-type': 'application/pdf', ...(declared ? { 'content-length': body.size } : {}) },
      body: body.stream(),
    });
    const uploadMs = performance.now() - started;
    expect(created.status, String(created.body)).toBe(201);
    expect(JSON.parse(String(created.body))).toMatchObject({ size: MB100, checksum: body.sha256 });

    const read = await download(port, `/documents/${id}`);
    expect(read.status).toBe(200);
    expect(read.complete).toBe(true);
    expect(read.bytes).toBe(MB100);
    expect(read.sha256).toBe(body.sha256);
    expect(read.headers['repr-digest']).toBe(`sha-256=:${Buffer.from(body.sha256, 'hex').toString('base64')}:`);

    const after = memoryOf(pid);
    const growth = after.peak - before.rss;
    report(`100 MB ${declared ? 'Content-Length' : 'chunked'} round trip: API memory (MiB)`, {
      rssBefore: Math.round(before.rss),
      peak: Math.round(after.peak),
      growth: Math.round(growth),
      uploadMBps: Math.round(MB100 / 1e6 / (uploadMs / 1000)),
    });
    expect(growth).toBeLessThan(ALLOWANCE / MiB);
  });
});

/** An upload that sends its first MiB, then waits for `release` before sending the rest. */
function heldUpload(size: number, release: Promise<void>) {
  const seed = randomBytes(MiB);
  const body = Readable.from(
    (async function* () {
      yield seed;
      await release;
      for (let sent = MiB; sent < size; sent += MiB) yield seed;
    })(),
  );
  return send(port, { method: 'POST', path: '/documents', headers: { 'content-length': size }, body });
}

describe('concurrent uploads', () => {
  it(`${MAX_CONCURRENT_UPLOADS} uploads of 20 MB at once stay within their buffers; one more gets 503 with Retry-After`, async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    resetPeak(pid);
    const before = memoryOf(pid);
    const uploads = Array.from({ length: MAX_CONCURRENT_UPLOADS }, () => heldUpload(20 * MiB, released));
    // Every slot is taken once the service counts them all in flight.
    const inFlight = await eventually(
      async () => Number(/^document_uploads_in_flight (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1]),
      (count) => count === MAX_CONCURRENT_UPLOADS,
      20_000,
    );
    expect(inFlight).toBe(MAX_CONCURRENT_UPLOADS);

    const refused = await answerToHead(port, 'POST', '/documents', { 'content-length': 20 * MiB });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(JSON.parse(String(refused.body)).code).toBe('OVERLOADED');

    release();
    const answers = await Promise.all(uploads);
    const statuses = answers.map((answer) => `${answer.status} ${answer.status === 201 ? '' : String(answer.body)}`);
    expect(answers.map((answer) => answer.status), `${statuses.join('\n')}\n${server.output().slice(-3000)}`).toEqual(Array(MAX_CONCURRENT_UPLOADS).fill(201));
    const growth = memoryOf(pid).peak - before.rss;
    report(`${MAX_CONCURRENT_UPLOADS} x 20 MB in flight: API memory growth (MiB)`, { growth: Math.round(growth), rssBefore: Math.round(before.rss) });
    // Each upload's own buffer and the spares they share: S3_PART_SIZE_BYTES × (MAX_CONCURRENT_UPLOADS + S3_SPARE_PART_BUFFERS).
    expect(growth).toBeLessThan(((MAX_CONCURRENT_UPLOADS + SPARE_PART_BUFFERS) * PART + ALLOWANCE) / MiB);
  });
});

/** Sends the head and part of a body on a raw socket, then drops the connection. */
function abandonedUpload(path: string, declared: boolean, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', reject);
    socket.on('connect', async () => {
      const head = declared ? `Content-Length: ${40 * MiB}` : 'Transfer-Encoding: chunked';
      socket.write(`PUT ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/pdf\r\n${head}\r\n\r\n`);
      const chunk = randomBytes(MiB);
      for (let sent = 0; sent < bytes; sent += MiB) {
        const frame = declared ? chunk : Buffer.concat([Buffer.from(`${MiB.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
        if (!socket.write(frame)) await new Promise((drained) => socket.once('drain', drained));
      }
      // Time for the service to have started the multipart upload and sent parts of it.
      await new Promise((settle) => setTimeout(settle, 300));
      socket.destroy();
      resolve();
    });
  });
}

describe('a client that disconnects half-way through an upload', () => {
  it.each([
    ['with Content-Length', true],
    ['chunked', false],
  ])('%s leaves no metadata, no object and no multipart upload', async (_name, declared) => {
    const id = uniqueId('gone');
    await abandonedUpload(`/documents/${id}`, declared, 16 * MiB);
    const left = await eventually(
      () => bucketContents(aws, config, `public/${id}/`),
      (found) => found.objects.length === 0 && found.uploads.length === 0,
    );
    expect(left).toEqual({ objects: [], uploads: [] });
    expect((await send(port, { method: 'GET', path: `/documents/${id}` })).status).toBe(404);
    // The id is free: nothing half-made blocks a new upload of it.
    expect((await send(port, { method: 'PUT', path: `/documents/${id}`, body: Buffer.from('whole') })).status).toBe(201);
  });
});

describe('an object corrupted in S3 behind the service', () => {
  const failures = async () =>
    Number(/^document_integrity_failures_total (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1] ?? 0);

  async function corrupted(size: number) {
    const id = uniqueId('corrupt');
    const content = randomBytes(size);
    expect((await send(port, { method: 'PUT', path: `/documents/${id}`, headers: { 'content-length': size }, body: content })).status).toBe(201);
    const [key] = (await bucketContents(aws, config, `public/${id}/`)).objects;
    const flipped = Buffer.from(content);
    flipped.writeUInt8(flipped.readUInt8(size - 1) ^ 0xff, size - 1);
    await overwriteObject(aws, config, key!, flipped);
    return id;
  }

  it('a streamed full read ends short of its Content-Length, and is counted', async () => {
    const id = await corrupted(3 * MiB);
    const before = await failures();
    const read = await download(port, `/documents/${id}`);
    expect(read.status).toBe(200);
    expect(read.headers['content-length']).toBe(String(3 * MiB));
    expect(read.complete).toBe(false);
    expect(read.bytes).toBeLessThan(3 * MiB);
    expect(await failures()).toBe(before + 1);
  });

  it('a read of a document small enough to hold is a 500 before any byte, and is counted', async () => {
    const id = await corrupted(40_000);
    const before = await failures();
    const read = await send(port, { method: 'GET', path: `/documents/${id}` });
    expect(read.status).toBe(500);
    expect(JSON.parse(String(read.body))).toMatchObject({ code: 'INTERNAL_ERROR', detail: 'An unexpected error occurred' });
    expect(await failures()).toBe(before + 1);
  });
});
