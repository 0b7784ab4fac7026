import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { PartBuffers } from '../../adapters/s3-multipart.ts';
import type { S3Parts, StoredPart } from '../../adapters/s3-parts.ts';
import { Errors } from '../../errors.ts';
import { describeBytes } from '../incoming-body.ts';
import type { UploadHash } from './upload-hash.ts';
import type { Progress, Tail, Upload } from './upload-records.ts';

/** S3's largest part number. */
const MAX_PART_NUMBER = 10_000;

/** A digest the request declared for its own body (tus Upload-Checksum, Content-Digest): checked before anything of it is recorded. */
export type BodyDigest = { expectedSha256: Buffer; field: 'Upload-Checksum' | 'Content-Digest' };

export type AppendRequest = {
  /** The request body as it arrives; undefined for an empty one. */
  body: Readable | undefined;
  /** Content-Length of the body, when declared. */
  declaredLength: number | undefined;
  /** The offset may not pass this (the upload's length, or MAX_DOCUMENT_BYTES). */
  limit: number;
  /** Whether the upload is complete once the body ended at `offset` (tus: the length reached; IETF: Upload-Complete ?1). */
  completesAt: (offset: number) => boolean;
  digest?: BodyDigest;
};

export type AppendResult = { kind: 'stored'; offset: number } | { kind: 'completing'; offset: number; checksum: string; parts: StoredPart[] };

export type AppendDeps = {
  parts: S3Parts;
  buffers: PartBuffers;
  partsInFlight: number;
  /** Records progress while the request owns the upload; false when another one took it over. */
  record(progress: Progress, completing?: { checksum: string }): Promise<boolean>;
  /** A new key for a tail of this upload (never one used before: a superseded request may still write its own). */
  tailKey(): string;
  /** Removes an object that nothing refers to any more; failures are left to the lifecycle worker. */
  discard(key: string): void;
};

/** Failures of the body after which what arrived is still worth storing: the client resumes from there. */
function keepsWhatArrived(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return ['UPLOAD_INCOMPLETE', 'REQUEST_TIMEOUT', 'SHUTTING_DOWN', 'ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code ?? '');
}

/**
 * Appends one request's body to an upload. The bytes go into part buffers
 * and from there, a part at a time, into the upload's S3 multipart upload;
 * each part stored is recorded (offset, part, hash state) after the one
 * before it, so that the offset the item holds is always bytes S3 holds, and
 * an instance that dies mid-body costs the client only what it had not
 * stored yet. What a body that does not complete the upload leaves (less
 * than a part) goes into a tail object, read back into the first buffer by
 * the next request, so that the offset is exact; a body cut short (the
 * client gone, the deadline, a drain) stores what arrived the same way.
 *
 * When the body's length is declared, its last full buffer, if fewer than a
 * part's bytes follow, is held back and sent with them as one part (a part
 * may be of any size from the minimum up): a client appending in pieces of
 * a part or more then leaves no tail. A body with a digest of its own is
 * recorded only once it matched, in one write.
 */
export class Append {
  private readonly upload: Upload;
  private readonly hash: UploadHash;
  private readonly deps: AppendDeps;
  private readonly own: Buffer;
  private readonly size: number;
  /** Spares this request holds; one goes back to the process as soon as its part is stored. */
  private readonly spares = new Set<Buffer>();
  private ownFree = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Records, in part order. */
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;
  private nextPart: number;
  /** The document offset of the first byte of the buffer being filled. */
  private bufferStart: number;
  private current: Buffer;
  private filled = 0;
  /** A full buffer held back, to go with the rest of the body in one part. */
  private held: Buffer | undefined;
  /** The upload's tail when the request started, until a record drops or replaces it. */
  private oldTail: Tail | undefined;
  /** With a digest of its own: the parts, recorded together at the end. */
  private readonly deferred: Promise<StoredPart>[] = [];
  private bodyHash: Hash | undefined;
  private body: Readable | undefined;
  private readonly recorded: StoredPart[] = [];
  /** The offset of the last record this request made: what a client learns after a failure. */
  offset: number;

  constructor(upload: Upload, hash: UploadHash, deps: AppendDeps) {
    this.upload = upload;
    this.hash = hash;
    this.deps = deps;
    this.size = deps.buffers.size;
    this.own = deps.buffers.own();
    this.current = this.own;
    this.nextPart = upload.nextPart;
    this.oldTail = upload.tail;
    this.offset = upload.offset;
    this.bufferStart = upload.offset - (upload.tail?.size ?? 0);
  }

  /** Stops reading the body (a drain): what arrived is stored, then the append fails with `error`. */
  stop(error: Error): void {
    this.body?.destroy(error);
  }

  async run(request: AppendRequest): Promise<AppendResult> {
    try {
      return await this.append(request);
    } finally {
      await Promise.allSettled([...this.inFlight]);
      this.deps.buffers.giveOwn(this.own);
      for (const spare of this.spares) this.deps.buffers.giveSpare(spare);
    }
  }

  private async append(request: AppendRequest): Promise<AppendResult> {
    this.body = request.body;
    if (request.digest) this.bodyHash = createHash('sha256');
    if (this.oldTail) await this.loadTail(this.oldTail);
    let received = 0;
    try {
      for await (const chunk of (request.body ?? []) as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (this.upload.offset + received > request.limit) throw new Errors.PayloadTooLarge(describeBytes(request.limit));
        this.bodyHash?.update(chunk);
        await this.take(chunk, request.declaredLength === undefined ? undefined : request.declaredLength - received);
      }
    } catch (error) {
      if (this.failure === undefined && keepsWhatArrived(error) && !request.digest) await this.storeRest(this.upload.offset + received);
      throw this.failure ?? error;
    }
    const end = this.upload.offset + received;
    if (request.digest) this.checkDigest(request.digest);
    if (request.completesAt(end)) return this.complete(end);
    await this.storeRest(end);
    return { kind: 'stored', offset: end };
  }

  private async loadTail(tail: Tail): Promise<void> {
    const read = await this.deps.parts.readInto(tail.key, this.own, tail.size);
    if (read !== tail.size) throw new Errors.UploadStateLost(this.upload.uploadId);
    this.filled = tail.size;
  }

  /** Copies a chunk into the buffers, hashing each piece as it lands, and sends every buffer that fills. */
  private async take(chunk: Buffer, remainingAfterChunk: number | undefined): Promise<void> {
    for (let offset = 0; offset < chunk.length; ) {
      if (this.failure !== undefined) throw this.failure;
      if (this.filled === this.size) await this.full(remainingAfterChunk === undefined ? undefined : remainingAfterChunk + chunk.length - offset);
      const copied = chunk.copy(this.current, this.filled, offset, Math.min(chunk.length, offset + this.size - this.filled));
      this.hash.update(chunk.subarray(offset, offset + copied));
      this.filled += copied;
      offset += copied;
    }
  }

  /**
   * The buffer is full and more bytes follow: it is sent as a part, or held
   * back when fewer than a part's worth follow. Holding needs one more
   * buffer, which must not depend on another upload: the request's own
   * (free, or back once its part is stored), or a spare to be had at once.
   */
  private async full(remaining: number | undefined): Promise<void> {
    if (remaining !== undefined && remaining < this.size && this.held === undefined) {
      const next = this.current === this.own ? this.bufferNow() : await this.nextBuffer();
      if (next) {
        this.held = this.current;
        this.current = next;
        this.filled = 0;
        return;
      }
    }
    this.send([this.current], this.size);
    this.current = await this.nextBuffer();
    this.filled = 0;
  }

  /** Sends buffers (the last one up to `lastLength`) as the next part; its record follows the previous part's. */
  private send(buffers: Buffer[], lastLength: number): void {
    const number = this.nextPart++;
    if (number > MAX_PART_NUMBER) throw new Error(`upload ${this.upload.uploadId} ran out of S3 part numbers`);
    const segments = buffers.map((buffer, i) => (i === buffers.length - 1 ? buffer.subarray(0, lastLength) : buffer));
    const end = this.bufferStart + (buffers.length - 1) * this.size + lastLength;
    this.bufferStart = end;
    const hashState = this.hash.save();
    const stored = this.deps.parts.put(this.upload.s3Key, this.upload.s3UploadId, number, segments);
    const settled = stored.then(
      () => buffers.forEach((buffer) => this.giveBack(buffer)),
      (error: unknown) => {
        this.failure ??= error;
      },
    );
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
    if (this.bodyHash) {
      this.deferred.push(stored);
      return;
    }
    this.chain = this.chain.then(async () => {
      const part = await stored.catch(() => undefined);
      if (part && this.failure === undefined) await this.recordOrStop({ offset: end, hashState, parts: [part], nextPart: number + 1 });
    });
  }

  private giveBack(buffer: Buffer): void {
    if (this.spares.delete(buffer)) this.deps.buffers.giveSpare(buffer);
    else if (buffer === this.own) this.ownFree = true;
  }

  /** The request's own buffer if free, else a spare if one is to be had now. */
  private bufferNow(): Buffer | undefined {
    if (this.ownFree) {
      this.ownFree = false;
      return this.own;
    }
    const spare = this.spares.size < this.deps.partsInFlight ? this.deps.buffers.spare() : undefined;
    if (spare) this.spares.add(spare);
    return spare;
  }

  /** The buffer to fill next; with none to be had, the request waits for a part in flight (its own buffer is in one). */
  private async nextBuffer(): Promise<Buffer> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const next = this.bufferNow();
      if (next) return next;
      await Promise.race(this.inFlight);
    }
  }

  /**
   * One conditional record. The first one of the request also drops the
   * tail it started from (a part took its bytes) or replaces it; the tail's
   * object goes once the record is made.
   */
  private async recordOrStop(progress: Progress, completing?: { checksum: string }): Promise<void> {
    const oldTail = this.oldTail;
    const step: Progress = oldTail && progress.tail === undefined ? { ...progress, tail: null } : progress;
    if (!(await this.deps.record(step, completing))) {
      this.failure ??= new Errors.UploadSuperseded(this.upload.uploadId);
      this.body?.destroy(this.failure as Error);
      return;
    }
    this.offset = step.offset;
    this.recorded.push(...step.parts);
    if (oldTail && step.tail !== undefined) {
      this.oldTail = undefined;
      this.deps.discard(oldTail.key);
    }
  }

  /**
   * Stores what the body left that is in no part yet: with a full buffer
   * held back, the two as one part; a full buffer as a part; else what was
   * filled as a tail object (less than a part).
   */
  private async storeRest(end: number): Promise<void> {
    // Nothing arrived: the tail the request started from stays as it is.
    if (end === this.upload.offset) return this.settle();
    let tail: Promise<Tail> | undefined;
    if (this.held) {
      this.send([this.held, this.current], this.filled);
      this.held = undefined;
    } else if (this.filled === this.size) {
      // The body ended on a part boundary: a part, not a tail.
      this.send([this.current], this.size);
    } else if (this.filled > 0) {
      const key = this.deps.tailKey();
      tail = this.deps.parts.putObject(key, [this.current.subarray(0, this.filled)]).then(({ size, crc32 }) => ({ key, size, crc32 }));
      // Failed or superseded: nothing refers to it.
      tail.then(() => this.failure !== undefined && this.deps.discard(key), () => {});
    }
    this.filled = 0;
    const hashState = this.hash.save();
    await this.settle();
    const newTail = tail ? await tail : undefined;
    if (this.bodyHash) {
      await this.recordOrStop({ offset: end, hashState, parts: await Promise.all(this.deferred), nextPart: this.nextPart, ...(newTail ? { tail: newTail } : {}) });
    } else if (newTail) {
      await this.recordOrStop({ offset: end, hashState, parts: [], nextPart: this.nextPart, tail: newTail });
    }
    if (this.failure !== undefined) {
      if (newTail) this.deps.discard(newTail.key);
      throw this.failure;
    }
  }

  /** Waits for every part and record so far; the first failure is the request's. */
  private async settle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    await this.chain.catch((error: unknown) => {
      this.failure ??= error;
    });
    if (this.failure !== undefined) throw this.failure;
  }

  private checkDigest(digest: BodyDigest): void {
    if (this.bodyHash!.digest().equals(digest.expectedSha256)) return;
    this.failure = digest.field === 'Upload-Checksum' ? new Errors.ChecksumMismatch('Upload-Checksum') : new Errors.DigestMismatch('Content-Digest');
    throw this.failure;
  }

  /** The last part (of any size), then the record that makes the upload COMPLETING, with the SHA-256 of every byte. */
  private async complete(end: number): Promise<AppendResult> {
    if (end === 0) throw new Errors.EmptyDocument();
    if (this.held) this.send([this.held, this.current], this.filled);
    else if (this.filled > 0) this.send([this.current], this.filled);
    this.held = undefined;
    this.filled = 0;
    const hashState = this.hash.save();
    const checksum = this.hash.hex();
    await this.settle();
    const parts = this.bodyHash ? await Promise.all(this.deferred) : [];
    await this.recordOrStop({ offset: end, hashState, parts, nextPart: this.nextPart }, { checksum });
    if (this.failure !== undefined) throw this.failure;
    return { kind: 'completing', offset: end, checksum, parts: [...this.upload.parts, ...this.recorded] };
  }
}
