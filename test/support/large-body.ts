import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';

// Helpers of the large-document tests: bodies of any size made on the fly
// (never held whole), uploads and downloads over real HTTP, and the memory of
// the server process read from /proc.

const BLOCK = 1024 * 1024;

/** `size` bytes that differ block to block (a seed block, each copy stamped with its index), with their SHA-256. */
export function generatedBody(size: number, seed = randomBytes(BLOCK)): { stream: () => Readable; sha256: string; size: number } {
  const block = (index: number, length: number) => {
    const copy = Buffer.from(seed.subarray(0, length));
    copy.writeUInt32BE(index >>> 0, 0);
    return copy;
  };
  const hash = createHash('sha256');
  for (let offset = 0, index = 0; offset < size; offset += BLOCK, index++) hash.update(block(index, Math.min(BLOCK, size - offset)));
  return {
    size,
    sha256: hash.digest('hex'),
    stream: () =>
      Readable.from(
        (function* () {
          for (let offset = 0, index = 0; offset < size; offset += BLOCK, index++) yield block(index, Math.min(BLOCK, size - offset));
        })(),
      ),
  };
}

export type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

/** One request over a fresh connection; the body streamed from `body` (chunked unless a Content-Length is given). */
export function send(
  port: number,
  options: { method: string; path: string; headers?: Record<string, string | number>; body?: Readable | Buffer },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: options.method, path: options.path, headers: options.headers, agent: false });
    // An answer before the whole body (a 413, a 503) closes the connection under the upload: the
    // write errors that follow are expected, the answer is what counts.
    let answered = false;
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.once('response', (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('error', reject);
      response.once('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    if (options.body instanceof Readable) {
      options.body.on('error', reject);
      options.body.pipe(req);
    }
    else req.end(options.body);
  });
}

/**
 * Sends only the head of a request that declares a body, and waits for the
 * answer the service gives before reading any of it (a 413 or a 503); the
 * connection is dropped afterwards.
 */
export function answerToHead(port: number, method: string, path: string, headers: Record<string, string | number>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false });
    req.on('error', reject);
    req.once('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('end', () => {
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) });
        req.destroy();
      });
    });
    req.flushHeaders();
  });
}

/** Downloads without keeping the bytes: their SHA-256 and count, and whether the response ended cleanly. */
export function download(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; sha256: string; bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path, headers, agent: false });
    req.once('error', reject);
    req.once('response', (response) => {
      const hash = createHash('sha256');
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      let settled = false;
      const done = (complete: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: response.statusCode ?? 0, headers: response.headers, sha256: hash.digest('hex'), bytes, complete });
      };
      response.once('end', () => done(response.complete));
      response.once('error', () => done(false));
      response.once('aborted', () => done(false));
    });
    req.end();
  });
}

/** Resident memory of a process now and at its peak since the last reset, in MiB. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** Resets the peak (VmHWM) to the current resident size, so that the next peak is this test's own. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}
