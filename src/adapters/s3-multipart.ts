import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';

/**
 * How S3 encrypts an object, sent with the requests that create one
 * (PutObject, CreateMultipartUpload) and never with UploadPart or
 * CompleteMultipartUpload, which inherit it (S3 refuses these headers there).
 * Empty: the bucket's default encryption.
 */
export type ObjectEncryption = Pick<PutObjectCommandInput, 'ServerSideEncryption' | 'SSEKMSKeyId' | 'BucketKeyEnabled'>;

/**
 * The part buffers of a process's uploads, handed from one upload to the
 * next. A part buffer lives as long as its upload, long enough for V8 to
 * move it to the old generation, where only a full collection frees it: a
 * new pair per upload left tens of MiB of dead buffers resident between
 * collections (bench/README.md, "Gaps"). Reused, an upload makes
 * no such garbage.
 *
 * Each upload fills a buffer of its own; sending a part while the next one
 * fills takes a second, a spare, and the process has `spares` of those for
 * all its uploads. One upload alone gets the speed of two buffers; many at
 * once share the spares, and their memory is `size` × (uploads + `spares`),
 * not twice the uploads: ten uploads at once are bound by CPU, not by
 * buffers (bench/README.md, "Large documents: part buffers shared by
 * uploads").
 */
export class PartBuffers {
  /** Bytes per part (S3: 5 MiB at least, except the last). */
  readonly size: number;
  private readonly spares: number;
  private sparesLent = 0;
  private readonly maxIdle: number;
  private readonly idle: Buffer[] = [];

  /** `maxUploads`: uploads at once (their own buffers are kept between uploads, with the spares). */
  constructor(size: number, options: { spares: number; maxUploads: number }) {
    this.size = size;
    this.spares = options.spares;
    this.maxIdle = options.maxUploads + options.spares;
  }

  /** The buffer an upload fills: always given (MAX_CONCURRENT_UPLOADS bounds how many are out). */
  own(): Buffer {
    return this.reused();
  }

  /** A second buffer to fill while a part is sent; undefined while all the spares are lent. */
  spare(): Buffer | undefined {
    if (this.sparesLent >= this.spares) return undefined;
    this.sparesLent++;
    return this.reused();
  }

  /** An upload's own buffer, once no request refers to it any more. */
  giveOwn(buffer: Buffer) {
    this.keep(buffer);
  }

  /** A spare, once no request refers to it any more. */
  giveSpare(buffer: Buffer) {
    this.sparesLent--;
    this.keep(buffer);
  }

  /** Shared memory: the thread that hashes resumable uploads reads the bytes where they are (uploads/upload-hash.ts). */
  private reused(): Buffer {
    return this.idle.pop() ?? Buffer.from(new SharedArrayBuffer(this.size));
  }

  private keep(buffer: Buffer) {
    if (this.idle.length < this.maxIdle) this.idle.push(buffer);
  }
}

export type StreamUploadOptions = {
  client: S3Client;
  bucket: string;
  key: string;
  buffers: PartBuffers;
  /** Parts sent at once while the next one fills, as spares allow. */
  partsInFlight: number;
  encryption?: ObjectEncryption;
};

/**
 * Streams a body into one S3 object with its own part buffer and at most
 * `partsInFlight` spares, taken from `buffers` and reused part after part;
 * with no spare to be had, the body waits for the part in flight.
 *
 * Why not `@aws-sdk/lib-storage`'s Upload: it concatenates each part into a
 * fresh buffer, and that garbage (outside the V8 heap, collected late) made
 * the API's resident memory grow by 83-90 MiB for one 100 MB upload, with 1 or
 * 2 parts in flight, against 8-20 MiB for reading the same body without
 * storing it (bench/README.md, "Large documents: why our own multipart
 * uploader"). With reused buffers the memory of an upload is its buffers,
 * whatever the document's size.
 *
 * A body that fits in one part is one PutObject. A failure of the body or of
 * S3 aborts the multipart upload before this rejects, so no parts stay
 * behind (the bucket's AbortIncompleteMultipartUpload rule is the backstop
 * for a process that dies mid-upload).
 */
export async function uploadStream(body: AsyncIterable<Buffer>, options: StreamUploadOptions): Promise<void> {
  const upload = new StreamedUpload(options);
  try {
    await upload.finish(await upload.fill(body));
  } catch (error) {
    await upload.abort(error);
    throw error;
  } finally {
    upload.release();
  }
}

type SentPart = CompletedPart & { PartNumber: number };

/** The last buffer of a body, filled up to `filled`: the single PutObject, or the last part. */
type Rest = { buffer: Buffer; filled: number };

/** One upload of `uploadStream`: its buffers, its parts stored and in flight, and its first failure. */
class StreamedUpload {
  private readonly options: StreamUploadOptions;
  private readonly own: Buffer;
  /** Spares this upload holds: a spare goes back to the process as soon as its part is stored. */
  private readonly spares = new Set<Buffer>();
  /** Whether this upload's own buffer is free to fill again (its part stored): spares never come back here. */
  private ownFree = false;
  private uploadId: string | undefined;
  private partNumber = 0;
  private readonly parts: SentPart[] = [];
  private readonly inFlight = new Map<number, Promise<void>>();
  private failure: unknown;

  constructor(options: StreamUploadOptions) {
    this.options = options;
    this.own = options.buffers.own();
  }

  /** Copies the body into part buffers, sending each one that is full; what is left over is for `finish`. */
  async fill(body: AsyncIterable<Buffer>): Promise<Rest> {
    const partSize = this.options.buffers.size;
    let buffer = this.own;
    let filled = 0;
    for await (const chunk of body) {
      for (let offset = 0; offset < chunk.length; ) {
        if (filled === partSize) {
          await this.sendFull(buffer);
          buffer = await this.next();
          filled = 0;
        }
        const copied = chunk.copy(buffer, filled, offset, Math.min(chunk.length, offset + partSize - filled));
        filled += copied;
        offset += copied;
      }
    }
    return { buffer, filled };
  }

  /** A full buffer: the multipart upload begins with the first one. */
  private async sendFull(buffer: Buffer): Promise<void> {
    const { client, bucket, key, encryption } = this.options;
    if (this.uploadId === undefined) {
      const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'CRC32', ...encryption }));
      this.uploadId = created.UploadId;
    }
    this.sendPart(buffer, this.options.buffers.size);
  }

  private sendPart(buffer: Buffer, length: number): void {
    const { client, bucket, key, buffers } = this.options;
    const partNumber = ++this.partNumber;
    const sent = client
      .send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: this.uploadId,
          PartNumber: partNumber,
          Body: buffer.subarray(0, length),
          ContentLength: length,
          ChecksumAlgorithm: 'CRC32',
        }),
      )
      .then(
        (answer) => {
          this.parts.push({ PartNumber: partNumber, ETag: answer.ETag, ChecksumCRC32: answer.ChecksumCRC32 });
          if (this.spares.delete(buffer)) buffers.giveSpare(buffer);
          else this.ownFree = true;
        },
        (error: unknown) => {
          this.failure ??= error;
        },
      )
      .finally(() => this.inFlight.delete(partNumber));
    this.inFlight.set(partNumber, sent);
  }

  /**
   * The buffer to fill next: this upload's own once its part is stored, or a
   * spare meanwhile; with neither, it waits for a part in flight (there is
   * one: its own buffer is).
   */
  private async next(): Promise<Buffer> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (this.ownFree) {
        this.ownFree = false;
        return this.own;
      }
      const spare = this.spares.size < this.options.partsInFlight ? this.options.buffers.spare() : undefined;
      if (spare) {
        this.spares.add(spare);
        return spare;
      }
      await Promise.race(this.inFlight.values());
    }
  }

  /** A body that fit in one part is one PutObject; else its last part, then the completion once every part is stored. */
  async finish({ buffer, filled }: Rest): Promise<void> {
    const { client, bucket, key, encryption } = this.options;
    if (this.uploadId === undefined) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: buffer.subarray(0, filled), ChecksumAlgorithm: 'CRC32', ...encryption }));
      return;
    }
    this.sendPart(buffer, filled);
    await Promise.all(this.inFlight.values());
    if (this.failure !== undefined) throw this.failure;
    this.parts.sort((a, b) => a.PartNumber - b.PartNumber);
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: this.uploadId, MultipartUpload: { Parts: this.parts } }),
    );
  }

  /** After `error`: no part stays behind (an abort that fails too becomes the error's cause). */
  async abort(error: unknown): Promise<void> {
    if (this.uploadId === undefined) return;
    const { client, bucket, key } = this.options;
    await Promise.allSettled(this.inFlight.values());
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: this.uploadId })).catch((abortError: unknown) => {
      if (error instanceof Error && error.cause === undefined) error.cause = abortError;
    });
  }

  /** Every part has settled by now (completed, or awaited before the abort): no request still reads these buffers. */
  release(): void {
    this.options.buffers.giveOwn(this.own);
    for (const spare of this.spares) this.options.buffers.giveSpare(spare);
  }
}
