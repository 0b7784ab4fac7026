import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { hasCode, hasName } from '../errors.ts';
import type { ObjectEncryption } from './s3-multipart.ts';

/** A part of a multipart upload as S3 stored it: what CompleteMultipartUpload must name. */
export type StoredPart = { number: number; size: number; etag: string; crc32: string };

/** Bytes to send as one request: one buffer, or a full buffer and the start of the next. */
export type Segments = readonly Uint8Array[];

export function lengthOf(segments: Segments): number {
  let length = 0;
  for (const segment of segments) length += segment.length;
  return length;
}

/** The CRC32 S3 checks a part or an object against, base64 of its big-endian bytes. */
export function crc32Of(segments: Segments): string {
  let value = 0;
  for (const segment of segments) value = crc32(segment, value);
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes.toString('base64');
}

/**
 * A body for the SDK: a buffer when there is one segment (the SDK retries
 * it), a stream otherwise, made anew for every attempt (the SDK never
 * retries a stream).
 */
function bodyOf(segments: Segments): Uint8Array | Readable {
  return segments.length === 1 ? segments[0]! : Readable.from(segments, { objectMode: false });
}

function isMissing(error: unknown): boolean {
  return hasName(error, 'NoSuchUpload', 'NoSuchKey', 'NotFound');
}

function isDependencyFailure(error: unknown): boolean {
  return hasCode(error, 'SERVICE_UNAVAILABLE', 'DEPENDENCY_TIMEOUT');
}

/**
 * The S3 side of a resumable upload: one multipart upload per upload,
 * whose parts are sent one request each and named later, by number, ETag
 * and CRC32, in the one CompleteMultipartUpload; and small objects for the
 * bytes after the last part (a tail). Every request has the transfer
 * client's deadline; every body carries its CRC32, which S3 checks before it
 * stores the bytes.
 */
export class S3Parts {
  private readonly client: S3Client;
  readonly bucket: string;
  private readonly maxAttempts: number;
  private readonly encryption: (key: string) => ObjectEncryption;

  /** `encryption`: how each new object is encrypted, by its key (none: the bucket's default). */
  constructor(options: { client: S3Client; bucket: string; maxAttempts: number; encryption?: (key: string) => ObjectEncryption }) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.maxAttempts = options.maxAttempts;
    this.encryption = options.encryption ?? (() => ({}));
  }

  async create(key: string): Promise<string> {
    const { UploadId } = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ChecksumAlgorithm: 'CRC32', ...this.encryption(key) }),
    );
    if (!UploadId) throw new Error('S3 CreateMultipartUpload answered without an UploadId');
    return UploadId;
  }

  async put(key: string, uploadId: string, number: number, segments: Segments): Promise<StoredPart> {
    const size = lengthOf(segments);
    const checksum = crc32Of(segments);
    const { ETag } = await this.retried(segments, () =>
      this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: number,
          Body: bodyOf(segments),
          ContentLength: size,
          ChecksumCRC32: checksum,
        }),
      ),
    );
    if (!ETag) throw new Error('S3 UploadPart answered without an ETag');
    return { number, size, etag: ETag, crc32: checksum };
  }

  /**
   * A part whose bytes are still arriving: sent as they come, in `size`
   * bytes exactly, with its CRC32 computed by the SDK on the way and sent
   * after the bytes (an aws-chunked trailer). Sent once: a stream cannot be
   * sent again; the caller, which holds the bytes, sends them with put().
   * A body that will not be whole is given up through `abortSignal` (a
   * stream that ends early leaves the request waiting for its length).
   */
  async putStream(key: string, uploadId: string, number: number, body: Readable, size: number, abortSignal: AbortSignal): Promise<StoredPart> {
    const { ETag, ChecksumCRC32 } = await this.client.send(
      new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: number, Body: body, ContentLength: size, ChecksumAlgorithm: 'CRC32' }),
      { abortSignal },
    );
    if (!ETag || !ChecksumCRC32) throw new Error('S3 UploadPart answered without an ETag and a CRC32');
    return { number, size, etag: ETag, crc32: ChecksumCRC32 };
  }

  /** 'gone': no such multipart upload (completed or aborted before). */
  async complete(key: string, uploadId: string, parts: readonly StoredPart[]): Promise<'completed' | 'gone'> {
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.number, ETag: part.etag, ChecksumCRC32: part.crc32 })) },
        }),
      );
      return 'completed';
    } catch (error) {
      if (isMissing(error)) return 'gone';
      throw error;
    }
  }

  async abort(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }

  /** A small object of its own (a tail), with its CRC32. */
  async putObject(key: string, segments: Segments): Promise<{ size: number; crc32: string }> {
    const size = lengthOf(segments);
    const checksum = crc32Of(segments);
    await this.retried(segments, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bodyOf(segments), ContentLength: size, ChecksumCRC32: checksum, ...this.encryption(key) }),
      ),
    );
    return { size, crc32: checksum };
  }

  /** A small object whose bytes are still arriving, in `size` bytes exactly (see putStream). */
  async putObjectStream(key: string, body: Readable, size: number, abortSignal: AbortSignal): Promise<{ size: number; crc32: string }> {
    const { ChecksumCRC32 } = await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: size, ChecksumAlgorithm: 'CRC32', ...this.encryption(key) }),
      { abortSignal },
    );
    if (!ChecksumCRC32) throw new Error('S3 PutObject answered without a CRC32');
    return { size, crc32: ChecksumCRC32 };
  }

  /**
   * Reads a whole object into `buffer` from its start; its bytes, or
   * undefined when it is gone. It must hold exactly `size` bytes.
   */
  async readInto(key: string, buffer: Buffer, size: number): Promise<number | undefined> {
    let body: Readable;
    try {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!(answer.Body instanceof Readable)) throw new TypeError('S3 GetObject returned no Node stream');
      body = answer.Body;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    let filled = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (filled + chunk.length > size) {
        body.destroy();
        return filled + chunk.length;
      }
      chunk.copy(buffer, filled);
      filled += chunk.length;
    }
    return filled;
  }

  /** The size of an object, or undefined when there is none. */
  async sizeOf(key: string): Promise<number | undefined> {
    try {
      const { ContentLength } = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return ContentLength;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /**
   * The SDK retries a buffer body itself; a body of two segments is a stream,
   * which it sends once, so its attempts are made here, each with a new stream.
   */
  private async retried<T>(segments: Segments, send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (error) {
        if (segments.length === 1 || attempt >= this.maxAttempts || !isDependencyFailure(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 100 * 2 ** attempt));
      }
    }
  }
}

