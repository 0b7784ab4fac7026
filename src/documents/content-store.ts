import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { v7 as uuidv7 } from 'uuid';
import { translateAwsError } from '../adapters/aws-errors.ts';
import { uploadStream, type ObjectEncryption, type PartBuffers } from '../adapters/s3-multipart.ts';
import { hasName } from '../errors.ts';

export type ContentStoreOptions = {
  /** Short deadlines: whole reads of small content on the request path. */
  s3: S3Client;
  /** Deadlines per part: multipart uploads and streamed downloads. */
  s3Transfer: S3Client;
  bucket: string;
  /** The process's part buffers: their size is the part size. */
  partBuffers: PartBuffers;
  partsInFlight: number;
  /** How each new object is encrypted, by its key (encryption.ts); none: the bucket's default. */
  encryption?: (key: string) => ObjectEncryption;
};

/** An object's bytes as S3 sends them, with the size S3 says the whole object has. */
export type ObjectStream = { body: Readable; totalSize: number | undefined };

export type StoredObject = { key: string; lastModified: Date };

/** `<tenant>/<id>/<upload>`: which document an object was uploaded for. */
export type ObjectKeyParts = { tenant: string; id: string };

/**
 * Document content in S3. Every upload writes an object of its own,
 * `<tenant>/<id>/<upload id>`, never an existing one: an upload is staged,
 * and becomes the document's content only when the metadata item that names
 * it is committed. Two racing writers of one id therefore never overwrite
 * each other's bytes; the loser's object is removed by the loser, or, if it
 * died first, by the lifecycle worker. Objects are opaque bytes: a
 * document's Content-Type lives in its metadata item, which is what reads
 * serve (and the local S3 emulator mis-parses form-encoded objects).
 */
export class ContentStore {
  private readonly options: ContentStoreOptions;

  constructor(options: ContentStoreOptions) {
    this.options = options;
  }

  /** The part buffers of the process's uploads into this bucket (resumable ones share them). */
  get partBuffers(): PartBuffers {
    return this.options.partBuffers;
  }

  newKey(tenant: string, id: string): string {
    return `${tenant}/${id}/${uuidv7()}`;
  }

  static partsOf(key: string): ObjectKeyParts | undefined {
    const [tenant, id, upload, ...more] = key.split('/');
    if (!tenant || !id || !upload || more.length > 0) return undefined;
    return { tenant, id };
  }

  /**
   * Streams a body into a new object: one PUT when it fits in one part, a
   * multipart upload otherwise, holding at most `partsInFlight` parts (and
   * the one being filled) in memory (see uploadStream). If the body fails (too large, a wrong
   * digest, the client gone), the multipart upload is aborted before this
   * rejects, so no parts stay behind.
   */
  async upload(key: string, body: Readable): Promise<void> {
    await uploadStream(body, {
      client: this.options.s3Transfer,
      bucket: this.options.bucket,
      key,
      buffers: this.options.partBuffers,
      partsInFlight: this.options.partsInFlight,
      ...(this.options.encryption ? { encryption: this.options.encryption(key) } : {}),
    });
  }

  /** The whole object, for content small enough to hold; undefined when it is gone. */
  async readWhole(key: string): Promise<Buffer | undefined> {
    try {
      const { Body } = await this.options.s3.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return Buffer.from(await Body!.transformToByteArray());
    } catch (error) {
      if (isNoSuchKey(error)) return undefined;
      // A body cut off mid-way fails after the SDK call returned: translated here, as the call's own errors are.
      throw translateAwsError(error, 'S3 GetObject');
    }
  }

  /** The object, or `[start, end]` of it, as a stream; undefined when it is gone. */
  async open(key: string, range?: { start: number; end: number }): Promise<ObjectStream | undefined> {
    try {
      const answer = await this.options.s3Transfer.send(
        new GetObjectCommand({
          Bucket: this.options.bucket,
          Key: key,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      // In Node the SDK hands over the HTTP response itself.
      if (!(answer.Body instanceof Readable)) throw new TypeError('S3 GetObject returned no Node stream');
      const total = range ? Number(answer.ContentRange?.split('/')[1]) : answer.ContentLength;
      return { body: answer.Body, totalSize: Number.isSafeInteger(total) ? total : undefined };
    } catch (error) {
      if (isNoSuchKey(error)) return undefined;
      throw error;
    }
  }

  async remove(key: string): Promise<void> {
    await this.options.s3.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
  }

  /** Every object of the bucket, a page at a time. */
  async *list(): AsyncGenerator<StoredObject[]> {
    let token: string | undefined;
    do {
      const page = await this.options.s3.send(
        new ListObjectsV2Command({ Bucket: this.options.bucket, ContinuationToken: token, MaxKeys: 1000 }),
      );
      yield (page.Contents ?? []).flatMap(({ Key, LastModified }) =>
        Key !== undefined && LastModified !== undefined ? [{ key: Key, lastModified: LastModified }] : [],
      );
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}

function isNoSuchKey(error: unknown): boolean {
  return hasName(error, 'NoSuchKey');
}
