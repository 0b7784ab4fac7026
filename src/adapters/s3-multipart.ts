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
  const { client, bucket, key, buffers } = options;
  const partSize = buffers.size;
  const own = buffers.own();
  /** Spares this upload holds: a spare goes back to the process as soon as its part is stored. */
  const spares = new Set<Buffer>();
  /** Whether this upload's own buffer is free to fill again (its part stored): spares never come back here. */
  let ownFree = false;

  let uploadId: string | undefined;
  const parts: (CompletedPart & { PartNumber: number })[] = [];
  const inFlight = new Map<number, Promise<void>>();
  let failure: unknown;

  const sendPart = (partNumber: number, buffer: Buffer, length: number) => {
    const sent = client
      .send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: buffer.subarray(0, length),
          ContentLength: length,
          ChecksumAlgorithm: 'CRC32',
        }),
      )
      .then(
        (answer) => {
          parts.push({ PartNumber: partNumber, ETag: answer.ETag, ChecksumCRC32: answer.ChecksumCRC32 });
          if (spares.delete(buffer)) buffers.giveSpare(buffer);
          else ownFree = true;
        },
        (error: unknown) => {
          failure ??= error;
        },
      )
      .finally(() => inFlight.delete(partNumber));
    inFlight.set(partNumber, sent);
  };

  /**
   * The buffer to fill next: this upload's own once its part is stored, or a
   * spare meanwhile; with neither, it waits for a part in flight (there is
   * one: its own buffer is).
   */
  const next = async (): Promise<Buffer> => {
    for (;;) {
      if (failure !== undefined) throw failure;
      if (ownFree) {
        ownFree = false;
        return own;
      }
      const spare = spares.size < options.partsInFlight ? buffers.spare() : undefined;
      if (spare) {
        spares.add(spare);
        return spare;
      }
      await Promise.race(inFlight.values());
    }
  };

  let buffer = own;
  let filled = 0;
  let partNumber = 0;
  try {
    for await (const chunk of body) {
      for (let offset = 0; offset < chunk.length; ) {
        if (filled === partSize) {
          if (uploadId === undefined) {
            const created = await client.send(
              new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'CRC32', ...options.encryption }),
            );
            uploadId = created.UploadId;
          }
          sendPart(++partNumber, buffer, filled);
          buffer = await next();
          filled = 0;
        }
        const copied = chunk.copy(buffer, filled, offset, Math.min(chunk.length, offset + partSize - filled));
        filled += copied;
        offset += copied;
      }
    }
    if (uploadId === undefined) {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: buffer.subarray(0, filled), ChecksumAlgorithm: 'CRC32', ...options.encryption }),
      );
      return;
    }
    sendPart(++partNumber, buffer, filled);
    await Promise.all(inFlight.values());
    if (failure !== undefined) throw failure;
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
    );
  } catch (error) {
    if (uploadId !== undefined) {
      await Promise.allSettled(inFlight.values());
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
        .catch((abortError: unknown) => {
          if (error instanceof Error && error.cause === undefined) error.cause = abortError;
        });
    }
    throw error;
  } finally {
    // Every part has settled by now (completed, or awaited before the abort): no request still reads these.
    buffers.giveOwn(own);
    for (const spare of spares) buffers.giveSpare(spare);
  }
}
