import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, Writable, finished, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Errors, hasCode } from '../errors.ts';
import type { DeclaredDigest } from './content-digest.ts';

/** "5368709120 bytes (5 GiB)": a limit as a client reads it in a 413. */
export function describeBytes(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = '';
  for (const next of units) {
    if (value < 1024 || value % 1024 !== 0) break;
    value /= 1024;
    unit = next;
  }
  return unit ? `${bytes} bytes (${value} ${unit})` : `${bytes} bytes`;
}

/**
 * A document is stored as the bytes sent: a body in a content coding (gzip,
 * say) would be stored, hashed and served as if it were the content. 415,
 * with Accept-Encoding saying what is taken (RFC 9110 §15.5.16).
 */
export function refuseContentCoding(sent: string | string[] | undefined): void {
  if (sent === undefined) return;
  const codings = (Array.isArray(sent) ? sent.join(',') : sent).split(',').map((coding) => coding.trim().toLowerCase());
  if (codings.every((coding) => coding === 'identity' || coding === '')) return;
  const error = new Errors.UnsupportedMediaType(`Content-Encoding ${JSON.stringify(String(sent).slice(0, 64))}`, 'documents are stored as sent, identity only');
  throw Object.assign(error, { headers: { 'accept-encoding': 'identity' } });
}

/**
 * Counts, limits and hashes a body as it passes. The declared digests are
 * checked before the stream ends, so that a consumer (an S3 upload) never
 * sees the end of a body that does not match them and never commits it.
 */
class BodyMeter extends Transform {
  bytes = 0;
  sha256: Buffer | undefined;
  private readonly hash: Hash = createHash('sha256');
  /** Only when a sha-512 was declared: it costs about as much as the sha-256. */
  private readonly sha512: Hash | undefined;
  private readonly maxBytes: number;
  private readonly declared: readonly DeclaredDigest[];

  constructor(maxBytes: number, declared: readonly DeclaredDigest[]) {
    super();
    this.maxBytes = maxBytes;
    this.declared = declared;
    if (declared.some((digest) => digest.algorithm === 'sha-512')) this.sha512 = createHash('sha512');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) return callback(new Errors.PayloadTooLarge(describeBytes(this.maxBytes)));
    this.hash.update(chunk);
    this.sha512?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback) {
    const sha256 = this.hash.digest();
    const sha512 = this.sha512?.digest();
    const wrong = this.declared.find((digest) => !digest.value.equals(digest.algorithm === 'sha-256' ? sha256 : sha512!));
    if (wrong) return callback(new Errors.DigestMismatch(`${wrong.field} ${wrong.algorithm}`));
    this.sha256 = sha256;
    callback();
  }
}

/** The first bytes of a body: all of it when it ended within the limit asked for. */
export type BodyHead = { complete: true; content: Buffer } | { complete: false };

/**
 * A document body as it arrives, read once: first its head (to tell an
 * inline document from one for S3), then the rest, either into an upload or
 * thrown away after hashing (a retry whose outcome only depends on whether
 * its bytes are the ones already stored).
 *
 * An error of the body itself (too large, a digest that does not match, the
 * client gone, the request deadline) stops the source without destroying
 * it, so that the answer can still be written on its connection.
 */
export class IncomingBody {
  private readonly meter: BodyMeter;
  private readonly chunks: AsyncIterator<Buffer>;
  private readonly head: Buffer[] = [];

  constructor(source: Readable, options: { maxBytes: number; declared: readonly DeclaredDigest[] }) {
    this.meter = new BodyMeter(options.maxBytes, options.declared);
    source.pipe(this.meter);
    finished(source, (error) => {
      if (!error) return;
      this.meter.destroy(hasCode(error, 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET') ? new Errors.UploadIncomplete() : error);
    });
    this.chunks = this.meter[Symbol.asyncIterator]();
  }

  /** Bytes received so far. */
  get bytes(): number {
    return this.meter.bytes;
  }

  /** The SHA-256 of the whole body, once it has been read to its end. */
  get sha256Hex(): string {
    if (!this.meter.sha256) throw new Error('the body has not been read to its end');
    return this.meter.sha256.toString('hex');
  }

  /** Reads until the body ends or passes `limit` bytes. */
  async readHead(limit: number): Promise<BodyHead> {
    let size = 0;
    while (size <= limit) {
      const next = await this.chunks.next();
      if (next.done) return { complete: true, content: Buffer.concat(this.head, size) };
      this.head.push(next.value);
      size += next.value.length;
    }
    return { complete: false };
  }

  /** The whole body from its first byte, as a stream (once the head was read and not complete). */
  rest(): Readable {
    const head = this.head.splice(0);
    const chunks = this.chunks;
    return Readable.from(
      (async function* () {
        yield* head;
        for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
      })(),
      { objectMode: false },
    );
  }

  /** Reads the rest of the body for its hash only, keeping none of it. */
  async discard(): Promise<void> {
    await pipeline(
      this.rest(),
      new Writable({
        write(_chunk, _encoding, callback) {
          callback();
        },
      }),
    );
  }
}
