import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import type { PartBuffers } from '../../adapters/s3-multipart.ts';
import type { S3Parts, StoredPart } from '../../adapters/s3-parts.ts';
import { Errors, hasCode } from '../../errors.ts';
import { describeBytes } from '../incoming-body.ts';
import type { UploadHash } from './upload-hash.ts';
import type { Progress, Tail, Upload } from './upload-records.ts';

/** S3's largest part number. */
const MAX_PART_NUMBER = 10_000;
/**
 * Bytes handed on at once, to the hash thread and to a streamed piece: a
 * message or a write per network chunk (64 KiB) costs more than it needs to.
 */
const BATCH = 1024 * 1024;

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

export type AppendResult =
  | { kind: 'stored'; offset: number; released: boolean }
  | { kind: 'completing'; offset: number; checksum: string; parts: StoredPart[] };

export type AppendDeps = {
  parts: S3Parts;
  buffers: PartBuffers;
  partsInFlight: number;
  /** Records progress while the request owns the upload; false when another one took it over. */
  record(progress: Progress, completing?: { checksum: string }): Promise<boolean>;
  /** A new key for a tail of this upload (never one used before: a superseded request may still write its own). */
  tailKey(): string;
  /** Removes an object that nothing refers to any more; failures are left to the content sweeper. */
  discard(key: string): void;
};

/** Failures of the body after which what arrived is still worth storing: the client resumes from there. */
function keepsWhatArrived(error: unknown): boolean {
  return hasCode(error, 'UPLOAD_INCOMPLETE', 'REQUEST_TIMEOUT', 'SHUTTING_DOWN', 'ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE');
}

/**
 * The last piece of a body of known length, sent to S3 while its bytes
 * still arrive: a part (at least a part's size, or the last of the upload)
 * or a tail object. Its bytes are in `buffers` and the buffer being filled,
 * should it have to be sent again.
 */
type Streamed = {
  kind: 'part' | 'tail';
  number: number;
  key: string;
  body: PassThrough;
  /** Gives the request up: a body that will not be whole. */
  abort: AbortController;
  stored: Promise<StoredPart | Tail>;
  length: number;
  written: number;
  /** Full buffers of the piece before the one being filled. */
  buffers: Buffer[];
};

/**
 * Appends one request's body to an upload. The bytes go into part buffers
 * and from there into the upload's S3 multipart upload; each part stored is
 * recorded (offset, part, hash state) after the one before it, so that the
 * offset the item holds is always bytes S3 holds, and an instance that dies
 * mid-body costs the client only what it had not stored yet. What a body
 * that does not complete the upload leaves (less than a part) goes into a
 * tail object, read back into the first buffer by the next request, so that
 * the offset is exact; a body cut short (the client gone, the deadline, a
 * drain) stores what arrived the same way.
 *
 * When the body's length is declared, the piece it ends with is known in
 * advance: once fewer than two parts' worth are left, the rest is one part
 * (a part may be of any size from the minimum up, the last of an upload of
 * any size) or one tail, and it is streamed to S3 as it arrives, so that
 * storing it does not wait for the end of the body, and a client appending
 * in pieces of a part or more leaves no tail. Should that stream fail or
 * the body end short, the bytes, all in the buffers, are sent again. A body
 * with a digest of its own is recorded only once it matched, in one write.
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
  /** The document offset of the first byte of the buffer being filled (or of the piece being streamed). */
  private bufferStart: number;
  private current: Buffer;
  private filled = 0;
  /** Bytes of the current buffer given to the hash so far (a tail read back was hashed before). */
  private hashed = 0;
  /** Bytes of the current buffer written to the streamed piece so far. */
  private streamedTo = 0;
  private streamed: Streamed | undefined;
  /** The upload's tail when the request started, until a record drops or replaces it. */
  private oldTail: Tail | undefined;
  /** With a digest of its own: the parts, recorded together at the end. */
  private readonly deferred: Promise<StoredPart>[] = [];
  private bodyHash: Hash | undefined;
  private body: Readable | undefined;
  private readonly recorded: StoredPart[] = [];
  private released = false;
  /** The error of a stop that keeps what arrived. */
  private keeping: Error | undefined;
  private plan: { declared: number; completes: boolean } | undefined;
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

  /**
   * Stops reading the body: the append fails with `error`, once it stored
   * what arrived if `keepWhatArrived` (a HEAD of the upload; a drain's
   * SHUTTING_DOWN always keeps it).
   */
  stop(error: Error, keepWhatArrived = false): void {
    if (keepWhatArrived) this.keeping ??= error;
    this.body?.destroy(error);
  }

  async run(request: AppendRequest): Promise<AppendResult> {
    try {
      return await this.append(request);
    } finally {
      this.abandonStream();
      await Promise.allSettled([...this.inFlight]);
      // The hash thread may still read the buffers: they go back once it answered for everything given.
      await this.hash.settled();
      this.hash.close();
      this.deps.buffers.giveOwn(this.own);
      for (const spare of this.spares) this.deps.buffers.giveSpare(spare);
    }
  }

  private async append(request: AppendRequest): Promise<AppendResult> {
    this.body = request.body;
    if (request.digest) this.bodyHash = createHash('sha256');
    if (this.oldTail) await this.loadTail(this.oldTail);
    if (request.declaredLength !== undefined) {
      this.plan = { declared: request.declaredLength, completes: request.completesAt(this.upload.offset + request.declaredLength) };
      // An empty body that does not complete the upload changes nothing: no piece to stream.
      if (request.declaredLength > 0 || this.plan.completes) this.planStream(request.declaredLength);
    }
    let received = 0;
    try {
      for await (const chunk of (request.body ?? []) as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (this.upload.offset + received > request.limit) throw new Errors.PayloadTooLarge(describeBytes(request.limit));
        this.bodyHash?.update(chunk);
        await this.take(chunk, request.declaredLength === undefined ? undefined : request.declaredLength - received);
      }
    } catch (error) {
      if (this.failure === undefined && (keepsWhatArrived(error) || error === this.keeping) && !request.digest) await this.storeRest(this.upload.offset + received);
      throw this.failure ?? error;
    }
    const end = this.upload.offset + received;
    if (request.digest) this.checkDigest(request.digest);
    if (request.completesAt(end)) return this.complete(end);
    await this.storeRest(end);
    return { kind: 'stored', offset: end, released: this.released };
  }

  private async loadTail(tail: Tail): Promise<void> {
    const read = await this.deps.parts.readInto(tail.key, this.own, tail.size);
    if (read !== tail.size) throw new Errors.UploadStateLost(this.upload.uploadId);
    this.filled = tail.size;
    this.hashed = tail.size;
  }

  /** Gives the hash what the current buffer received since. */
  private feed(): void {
    this.hash.update(this.current, this.hashed, this.filled);
    this.hashed = this.filled;
  }

  private fillNext(buffer: Buffer): void {
    this.current = buffer;
    this.filled = 0;
    this.hashed = 0;
    this.streamedTo = 0;
  }

  /**
   * With `remaining` bytes of the body to come and what the buffer holds
   * (a tail read back), fewer than two parts' worth left: the rest is one
   * piece, streamed from now. Spanning two buffers needs the second to be
   * one that cannot be another upload's: the request's own (back once its
   * part is stored), or a spare had now; without one, no stream (the buffer
   * is sent when full, and the rest planned then).
   */
  private planStream(remaining: number): void {
    const rest = this.filled + remaining;
    if (!this.plan || rest === 0 || rest >= 2 * this.size || this.streamed) return;
    const last = this.plan.completes;
    if (rest > this.size && this.current === this.own) {
      const spare = this.bufferNow();
      if (!spare) return;
      // Kept for the second half of the piece.
      this.reserved = spare;
    }
    const kind = rest >= this.size || last ? 'part' : 'tail';
    const number = kind === 'part' ? this.partNumber() : 0;
    const key = kind === 'part' ? this.upload.s3Key : this.deps.tailKey();
    const body = new PassThrough();
    const abort = new AbortController();
    const { parts } = this.deps;
    const stored: Promise<StoredPart | Tail> =
      kind === 'part'
        ? parts.putStream(key, this.upload.s3UploadId, number, body, rest, abort.signal)
        : parts.putObjectStream(key, body, rest, abort.signal).then(({ crc32 }) => ({ key, size: rest, crc32 }));
    const settled = stored.then(
      () => {},
      () => {},
    );
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
    this.streamed = { kind, number, key, body, abort, stored, length: rest, written: 0, buffers: [] };
    this.streamedTo = 0;
    this.streamOn();
  }

  /** A spare set aside for the second buffer of a streamed piece. */
  private reserved: Buffer | undefined;

  /** Copies a chunk into the buffers, streams it on when the piece is being streamed, and sends every buffer that fills. */
  private async take(chunk: Buffer, remainingAfterChunk: number | undefined): Promise<void> {
    for (let offset = 0; offset < chunk.length; ) {
      if (this.failure !== undefined) throw this.failure;
      if (this.filled === this.size) await this.full(remainingAfterChunk === undefined ? undefined : remainingAfterChunk + chunk.length - offset);
      const copied = chunk.copy(this.current, this.filled, offset, Math.min(chunk.length, offset + this.size - this.filled));
      this.filled += copied;
      offset += copied;
      const full = this.filled === this.size;
      if (full || this.filled - this.hashed >= BATCH) this.feed();
      if (this.streamed && (full || this.filled - this.streamedTo >= BATCH)) {
        const streamed = this.streamed;
        if (!this.streamOn()) await Promise.race([once(streamed.body, 'drain'), streamed.stored.catch(() => {})]);
      }
    }
  }

  /** Gives up the piece being streamed (the request to S3 ends at once). */
  private abandonStream(streamed = this.streamed): void {
    if (!streamed) return;
    streamed.abort.abort();
    streamed.body.destroy();
  }

  /** Writes what the current buffer received since on to the streamed piece; false: wait for it to drain. */
  private streamOn(): boolean {
    const streamed = this.streamed!;
    if (this.filled === this.streamedTo) return true;
    streamed.written += this.filled - this.streamedTo;
    const more = streamed.body.write(this.current.subarray(this.streamedTo, this.filled));
    this.streamedTo = this.filled;
    return more;
  }

  /**
   * The buffer is full and more bytes follow: the streamed piece goes on in
   * the next buffer; otherwise the buffer is sent as a part, and what is
   * left of the body planned anew.
   */
  private async full(remaining: number | undefined): Promise<void> {
    if (this.streamed) {
      this.streamed.buffers.push(this.current);
      const next = this.reserved ?? (await this.nextBuffer());
      this.reserved = undefined;
      this.fillNext(next);
      return;
    }
    this.send([this.current], this.size);
    this.fillNext(await this.nextBuffer());
    if (remaining !== undefined) this.planStream(remaining);
  }

  private partNumber(): number {
    const number = this.nextPart++;
    if (number > MAX_PART_NUMBER) throw new Error(`upload ${this.upload.uploadId} ran out of S3 part numbers`);
    return number;
  }

  /**
   * Sends buffers (the last one up to `lastLength`) as a part, the next one
   * unless its number was taken for it before (or it was stored already);
   * its record follows the previous part's. Its buffers are free again once
   * S3 stored them and the hash read them.
   */
  private send(buffers: Buffer[], lastLength: number, options: { number?: number; stored?: Promise<StoredPart>; release?: boolean } = {}): void {
    const number = options.number ?? this.partNumber();
    const segments = buffers.map((buffer, i) => (i === buffers.length - 1 ? buffer.subarray(0, lastLength) : buffer));
    const end = this.bufferStart + (buffers.length - 1) * this.size + lastLength;
    this.bufferStart = end;
    const hashState = this.hash.save();
    const stored = options.stored ?? this.deps.parts.put(this.upload.s3Key, this.upload.s3UploadId, number, segments);
    const settled = Promise.all([stored, hashState]).then(
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
      const [part, state] = await Promise.all([stored, hashState]).catch(() => [undefined, undefined]);
      if (!part || !state || this.failure !== undefined) return;
      await this.recordOrStop({ offset: end, hashState: state, parts: [part], nextPart: Math.max(number + 1, this.nextPart), release: options.release === true });
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
      const failure = (this.failure ??= new Errors.UploadSuperseded(this.upload.uploadId));
      this.body?.destroy(failure instanceof Error ? failure : undefined);
      return;
    }
    this.offset = step.offset;
    this.recorded.push(...step.parts);
    if (step.release) this.released = true;
    if (oldTail && step.tail !== undefined) {
      this.oldTail = undefined;
      this.deps.discard(oldTail.key);
    }
  }

  /**
   * The streamed piece, once the body ended: stored, if every byte of it
   * arrived and S3 took them; else its bytes are sent again from the
   * buffers, as what they make (a body cut short makes less).
   */
  private async finishStream(): Promise<{ part?: StoredPart; tail?: Tail; buffers: Buffer[] } | undefined> {
    const streamed = this.streamed;
    if (!streamed) return undefined;
    this.streamOn();
    this.streamed = undefined;
    const buffers = [...streamed.buffers, this.current];
    if (streamed.written === streamed.length) {
      streamed.body.end();
      const stored = await streamed.stored.catch(() => undefined);
      if (stored) return streamed.kind === 'part' ? { part: stored as StoredPart, buffers } : { tail: stored as Tail, buffers };
    } else this.abandonStream(streamed);
    await streamed.stored.catch(() => {});
    if (streamed.kind === 'tail') this.deps.discard(streamed.key);
    // Sent again from the buffers: a part takes its number again (no part was numbered after it).
    else this.nextPart = streamed.number;
    return { buffers };
  }

  /**
   * Stores what the body left that is in no part yet, the request's last
   * record releasing the upload: the streamed piece; else, after a body cut
   * short or of unknown length, a full buffer (or what a streamed piece
   * made) as a part, or what was filled as a tail (less than a part).
   */
  private async storeRest(end: number): Promise<void> {
    this.feed();
    const finished = await this.finishStream();
    if (finished?.tail) return this.storeTail(end, finished.tail, finished.buffers);
    if (finished?.part) {
      this.send(finished.buffers, this.filled, { number: finished.part.number, stored: Promise.resolve(finished.part), release: true });
    } else {
      const buffers = finished?.buffers ?? [this.current];
      const bytes = (buffers.length - 1) * this.size + this.filled;
      // Nothing arrived: the tail the request started from stays as it is.
      if (end === this.upload.offset || bytes === 0) return this.settle();
      if (bytes >= this.size) this.send(buffers, this.filled, { release: true });
      else {
        const key = this.deps.tailKey();
        const tail = await this.deps.parts
          .putObject(key, [this.current.subarray(0, this.filled)])
          .then(({ size, crc32 }) => ({ key, size, crc32 }))
          .catch((error: unknown) => {
            this.failure ??= error;
            return undefined;
          });
        if (tail) return this.storeTail(end, tail, buffers);
      }
    }
    await this.settle();
    if (this.bodyHash) await this.recordDeferred(end);
  }

  /** A tail stored: recorded after the parts before it (with them, for a body with a digest), releasing the upload. */
  private async storeTail(end: number, tail: Tail, buffers: Buffer[]): Promise<void> {
    const hashState = await this.hash.save();
    await this.settle();
    if (this.bodyHash) await this.recordDeferred(end, { tail });
    else await this.recordOrStop({ offset: end, hashState, parts: [], nextPart: this.nextPart, tail, release: true });
    buffers.forEach((buffer) => this.giveBack(buffer));
    if (this.failure !== undefined) {
      this.deps.discard(tail.key);
      throw this.failure;
    }
  }

  /** A body with a digest of its own, once it matched: every part it stored, and its tail, recorded in one write. */
  private async recordDeferred(end: number, extra: { tail?: Tail; hashState?: Uint8Array } = {}, completing?: { checksum: string }): Promise<void> {
    const parts = await Promise.all(this.deferred);
    const { hashState = await this.hash.save(), tail } = extra;
    await this.recordOrStop({ offset: end, hashState, parts, nextPart: this.nextPart, ...(tail ? { tail } : {}), release: !completing }, completing);
    if (this.failure !== undefined) throw this.failure;
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
    this.failure = digest.field === 'Upload-Checksum' ? new Errors.ChecksumMismatch('Upload-Checksum') : new Errors.DigestMismatch('Content-Digest sha-256');
    throw this.failure;
  }

  /** The last part (of any size), then the record that makes the upload COMPLETING, with the SHA-256 of every byte. */
  private async complete(end: number): Promise<AppendResult> {
    if (end === 0) throw new Errors.EmptyDocument();
    this.feed();
    const finished = await this.finishStream();
    if (finished?.tail) throw new Error('a streamed tail cannot end an upload');
    const buffers = finished?.buffers ?? [this.current];
    const bytes = (buffers.length - 1) * this.size + this.filled;
    if (finished?.part) this.send(buffers, this.filled, { number: finished.part.number, stored: Promise.resolve(finished.part) });
    else if (bytes > 0) this.send(buffers, this.filled);
    const hashState = await this.hash.save();
    const checksum = await this.hash.hex();
    await this.settle();
    if (this.bodyHash) await this.recordDeferred(end, { hashState }, { checksum });
    else await this.recordOrStop({ offset: end, hashState, parts: [], nextPart: this.nextPart }, { checksum });
    if (this.failure !== undefined) throw this.failure;
    return { kind: 'completing', offset: end, checksum, parts: [...this.upload.parts, ...this.recorded] };
  }
}
