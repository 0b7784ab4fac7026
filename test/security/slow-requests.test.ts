import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { hashApiKey } from '../support/config.ts';
import { testApp } from '../support/app.ts';
import { sleep, watchUnhandled } from '../faults/support.ts';

// A whole request within REQUEST_TIMEOUT_MS (3 s here, for speed: the head
// within a third of it, the body within the rest), whatever the client does;
// a document body that keeps a decent rate may take longer. Real sockets:
// only they can be slow.

const REQUEST_TIMEOUT_MS = 3000;
const API_KEY = `slow-${randomUUID()}`;
/** Node checks head deadlines once a second: a head may run that much past its third. */
const CHECK_INTERVAL_MS = 1000;
/** Scheduling on a loaded machine. */
const MARGIN_MS = 1500;

let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  app = await testApp({
    config: {
      REQUEST_TIMEOUT_MS,
      DOCUMENT_UPLOAD_MIN_BYTES_PER_SECOND: 1024,
      AUTH_MODE: 'api-key',
      API_KEYS: `slow:${hashApiKey(API_KEY)}`,
      RATE_LIMIT_PER_MINUTE: 100_000,
      LOAD_SHED_EVENT_LOOP_DELAY_MS: 0,
      // The relation check wants the orphan grace above the longest upload this allows.
      MAX_DOCUMENT_BYTES: 1024 * 1024,
    },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await app?.close();
});

type Exchange = { status: number; text: string; closedAfterMs: number; answeredAfterMs: number; partsWritten: number };

/**
 * Writes `parts` one after another with `pauseMs` between them, and records
 * when the answer came and when the server closed the connection.
 */
function trickle(parts: (string | Buffer)[], pauseMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket: Socket = connect(port, '127.0.0.1');
    let text = '';
    let answeredAfterMs = -1;
    let closed = false;
    let partsWritten = 0;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      if (answeredAfterMs < 0) answeredAfterMs = performance.now() - started;
      text += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, closedAfterMs: performance.now() - started, answeredAfterMs, partsWritten });
    });
    socket.on('connect', async () => {
      for (const part of parts) {
        if (closed) return;
        socket.write(part);
        partsWritten += 1;
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    });
    socket.setTimeout(30_000, () => socket.destroy());
  });
}

const auth = `Authorization: Bearer ${API_KEY}\r\n`;

describe('slow requests', () => {
  it('a head sent a line at a time is 408 problem+json within a third of the timeout, and closed', async () => {
    const lines = ['POST /orders HTTP/1.1\r\n', 'Host: 127.0.0.1\r\n', ...Array.from({ length: 30 }, (_, i) => `X-Slow-${i}: x\r\n`)];
    const result = await trickle(lines, 300);
    expect(result.status).toBe(408);
    expect(result.text).toMatch(/content-type: application\/problem\+json/i);
    expect(result.text).toContain('"code":"REQUEST_TIMEOUT"');
    expect(result.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS / 3 + CHECK_INTERVAL_MS + MARGIN_MS);
  });

  it.each([
    ['with Content-Length', 'Content-Length: 1000\r\n', (byte: string) => byte],
    ['chunked', 'Transfer-Encoding: chunked\r\n', (byte: string) => `1\r\n${byte}\r\n`],
  ])('an order body at 1 byte every 200 ms (%s) is 408 within the timeout, and closed', async (_name, framing, frame) => {
    const head = `POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\n${framing}\r\n`;
    const result = await trickle([head, ...Array.from({ length: 100 }, () => frame('{'))], 200);
    expect(result.status).toBe(408);
    expect(result.text).toContain('"code":"REQUEST_TIMEOUT"');
    expect(result.text).toMatch(/connection: close/i);
    expect(result.closedAfterMs).toBeGreaterThan((REQUEST_TIMEOUT_MS * 2) / 3 - 100);
    expect(result.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
  });

  it('a document body trickling under its minimum rate is 408 too, and nothing is stored', async () => {
    const id = `slow-${randomUUID()}`;
    const head = `PUT /documents/${id} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\n`;
    const result = await trickle([head, ...Array.from({ length: 100 }, () => 'x')], 200);
    expect(result.status).toBe(408);
    expect(result.text).toContain('"code":"REQUEST_TIMEOUT"');
    expect(result.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
    const read = await app.inject({ method: 'GET', url: `/documents/${id}`, headers: { authorization: `Bearer ${API_KEY}` } });
    expect(read.statusCode).toBe(404);
  });

  it('a document body at a decent rate may take longer than the timeout', async () => {
    const id = `steady-${randomUUID()}`;
    const piece = Buffer.alloc(2048, 0x61);
    const pieces = 20; // 40 KiB over 4 s: 10 KiB/s, ten times the minimum rate
    const head = `PUT /documents/${id} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: text/plain\r\nContent-Length: ${piece.length * pieces}\r\nConnection: close\r\n\r\n`;
    const result = await trickle([head, ...Array.from({ length: pieces }, () => piece)], 200);
    expect(result.status, result.text).toBe(201);
    expect(result.answeredAfterMs).toBeGreaterThan(REQUEST_TIMEOUT_MS);
  });

  it('a request answered before its body was read fails nothing when its body deadline passes later', async () => {
    const unhandled = watchUnhandled();
    try {
      // 415 before the parser runs: nobody reads these 100 KB, which fill the deadline's buffer.
      const refused = await app.inject({
        method: 'POST',
        url: '/orders',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'text/plain' },
        payload: Buffer.alloc(100_000, 0x61),
      });
      expect(refused.statusCode).toBe(415);
      await sleep(REQUEST_TIMEOUT_MS);
      expect(unhandled.errors).toEqual([]);
      expect((await app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    } finally {
      unhandled.stop();
    }
  });

  // Nothing reads these bodies (Fastify parses none for GET and HEAD, and an
  // unrouted request is refused from its head): the answer closes the
  // connection while the body still trickles, rather than reading it to its end.
  it.each([
    ['a GET of a document', 'GET', `/documents/${randomUUID()}`, 404],
    ['a HEAD of a document', 'HEAD', `/documents/${randomUUID()}`, 404],
    ['an unrouted POST', 'POST', '/nowhere', 404],
  ])('%s that carries a trickling body is answered and its connection closed before the body ends', async (_name, method, path, status) => {
    const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n`;
    const parts = [head, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const result = await trickle(parts, 500);
    expect(result.status, result.text).toBe(status);
    expect(result.text).toMatch(/connection: close/i);
    expect(result.partsWritten).toBeLessThan(parts.length);
  });

  it('a request refused before its body is read (401) is answered at once and its connection closed', async () => {
    const head = `POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`;
    const result = await trickle([head, '{', '"'], 200);
    expect(result.status).toBe(401);
    expect(result.text).toMatch(/connection: close/i);
    expect(result.closedAfterMs).toBeLessThan(MARGIN_MS);
  });
});
