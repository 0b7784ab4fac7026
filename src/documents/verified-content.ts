import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export class ContentIntegrityError extends Error {
  constructor(id: string) {
    super(`content of document ${id} does not match its size and checksum`);
    this.name = 'ContentIntegrityError';
  }
}

/**
 * Passes a document's bytes through while hashing them, holding back the last
 * chunk until the whole has been checked against the stored size and
 * SHA-256. A body that does not match ends in an error instead of its last
 * chunk: the client's response stops short of its Content-Length, so it can
 * never take corrupt bytes for the complete document.
 */
export class VerifiedContent extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private held: Buffer | undefined;
  private readonly expected: { id: string; size: number; checksum: string };
  private readonly onMismatch: () => void;

  constructor(expected: { id: string; size: number; checksum: string }, onMismatch: () => void) {
    super();
    this.expected = expected;
    this.onMismatch = onMismatch;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
    this.bytes += chunk.length;
    if (this.bytes > this.expected.size) return this.fail(callback);
    this.hash.update(chunk);
    if (this.held) this.push(this.held);
    this.held = chunk;
    callback();
  }

  override _flush(callback: TransformCallback) {
    if (this.bytes !== this.expected.size || this.hash.digest('hex') !== this.expected.checksum) return this.fail(callback);
    if (this.held) this.push(this.held);
    callback();
  }

  private fail(callback: TransformCallback) {
    this.held = undefined;
    this.onMismatch();
    callback(new ContentIntegrityError(this.expected.id));
  }
}
