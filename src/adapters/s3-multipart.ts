import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';

/**
 * The part buffers of a process's uploads, handed from one upload to the
 * next. A part buffer lives as long as its upload, long enough for V8 to
 * move it to the old generation, where only a full collection frees it: a
 * new pair per upload left tens of MiB of dead buffers resident between
 * collections (bench/README.md, "Gaps"). Reused, an upload makes
 * no such garbage. At most `maxIdle` buffers are kept between uploads; past
 * that, they are left to the collector.
 */
export class PartBuffers {
  /** Bytes per part (S3: 5 MiB at least, except the last). */
  readonly size: number;
  private readonly maxIdle: number;
  private readonly idle: Buffer[] = [];

  constructor(size: number, maxIdle: number) {
    this.size = size;
    this.maxIdle = maxIdle;
  }

  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Buffers no request refers to any more. */
  give(buffers: readonly Buffer[]) {
    for (const buffer of buffers) if (this.idle.length < this.maxIdle) this.idle.push(buffer);
  }
}

export type StreamUploadOptions = {
  client: S3Client;
  bucket: string;
  key: string;
  buffers: PartBuffers;
  /** Parts sent at once; one more is filled meanwhile. */
  partsInFlight: number;
};

/**
 * Streams a body into one S3 object with at most `partsInFlight + 1` part
 * buffers, taken from `buffers` and reused part after part.
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
  const free: Buffer[] = [];
  const taken: Buffer[] = [];
  const take = () => {
    const reused = free.pop();
    if (reused) return reused;
    const buffer = buffers.take();
    taken.push(buffer);
    return buffer;
  };

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
          free.push(buffer);
        },
        (error: unknown) => {
          failure ??= error;
        },
      )
      .finally(() => inFlight.delete(partNumber));
    inFlight.set(partNumber, sent);
  };

  /** Waits for a part buffer to come back once all of them are taken. */
  const room = async () => {
    while (free.length === 0 && taken.length > options.partsInFlight && inFlight.size > 0 && failure === undefined) {
      await Promise.race(inFlight.values());
    }
    if (failure !== undefined) throw failure;
  };

  let buffer = take();
  let filled = 0;
  let partNumber = 0;
  try {
    for await (const chunk of body) {
      for (let offset = 0; offset < chunk.length; ) {
        if (filled === partSize) {
          if (uploadId === undefined) {
            const created = await client.send(
              new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'CRC32' }),
            );
            uploadId = created.UploadId;
          }
          sendPart(++partNumber, buffer, filled);
          await room();
          buffer = take();
          filled = 0;
        }
        const copied = chunk.copy(buffer, filled, offset, Math.min(chunk.length, offset + partSize - filled));
        filled += copied;
        offset += copied;
      }
    }
    if (uploadId === undefined) {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: buffer.subarray(0, filled), ChecksumAlgorithm: 'CRC32' }),
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
    buffers.give(taken);
  }
}
