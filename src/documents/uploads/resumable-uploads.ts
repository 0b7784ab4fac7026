import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { PartBuffers } from '../../adapters/s3-multipart.ts';
import { isConditionFailure } from '../../adapters/dynamodb.ts';
import { codeOf, Errors, hasCode, isErrorCode } from '../../errors.ts';
import { fingerprint } from '../../idempotency/idempotency-key.ts';
import type { IdempotentRequests } from '../../idempotency/idempotent-requests.ts';
import { contentTypeOf, type CreateAnswer, type DocumentService } from '../document-service.ts';
import { describeBytes } from '../incoming-body.ts';
import type { UploadSlots } from '../upload-slots.ts';
import { Append, type BodyDigest } from './append.ts';
import { discardUpload, type UploadHome } from './upload-home.ts';
import { HASH_FORMAT, initialHashState, type HashThread } from './upload-hash.ts';
import type { Upload } from './upload-records.ts';

export type Protocol = 'tus' | 'ietf';

/** A resumable upload as its creation asks for it. */
export type NewUpload = {
  protocol: Protocol;
  /** PUT /documents/{id}, or a client id in Upload-Metadata: the rules of PUT; else a new id. */
  route: 'POST' | 'PUT';
  documentId?: string;
  contentType: string | undefined;
  /** Upload-Metadata as sent. */
  metadata?: string;
  length?: number;
  reprSha256?: Buffer;
  idempotencyKey?: string;
  /** Retain-Until as sent. */
  retainUntil?: string;
};

/** One request's bytes for an upload. */
export type AppendInput = {
  /** Upload-Offset: the offset the client believes the upload is at. */
  offset: number;
  body: Readable | undefined;
  declaredLength?: number;
  /** IETF Upload-Complete; undefined (tus): complete once the length is reached. */
  complete?: boolean;
  /** An Upload-Length sent with the request (tus creation-defer-length; IETF). */
  length?: number;
  digest?: BodyDigest;
};

/** Where uploads live: the region of each (its id says), and a new id homed here. */
export type UploadHomes = { of(tenant: string, uploadId: string): UploadHome; local: UploadHome; newUploadId(tenant: string): string };

export type ResumableUploadsOptions = {
  homes: UploadHomes;
  documents: Pick<DocumentService, 'checkTarget' | 'commitStaged' | 'newDocumentId' | 'retention'>;
  requests: IdempotentRequests;
  slots: UploadSlots;
  buffers: PartBuffers;
  partsInFlight: number;
  /** Where the SHA-256 of appends is computed. */
  hashing: HashThread;
  /** Counts a creation of the tenant's; the seconds to wait when it is over its limit. */
  countCreation(tenant: string): Promise<number | undefined>;
  maxBytes: number;
  expirySeconds: number;
  log: Pick<FastifyBaseLogger, 'warn' | 'info'>;
  now?: () => number;
  /** How often an append checks that no other request took its upload over. */
  ownerCheckMs?: number;
};

const CREATE_ROUTE = 'POST /documents (resumable)';

/** Every answer about an upload carries its offset, errors included: the client resumes from it. */
function withOffset<E>(error: E, offset: number): E {
  if (error instanceof Error) {
    const carrier: Error & { headers?: Record<string, string> } = error;
    carrier.headers = { ...carrier.headers, 'upload-offset': String(offset) };
  }
  return error;
}

/**
 * Resumable uploads (tus 1.0 and the IETF draft alike; the routes translate):
 * creation, the offset, appends, completion and cancellation. The state of
 * an upload is its item (UploadRecords) and its S3 multipart upload, never
 * a process: any instance answers for any upload, and continues it from
 * the bytes stored. The document an upload makes is committed exactly as a
 * one-request create's, by DocumentService.
 */
export class ResumableUploads {
  private readonly options: ResumableUploadsOptions;
  private readonly now: () => number;
  /** Appends in progress here (stopped by a drain), with their upload and when they end (a HEAD of that upload waits for it). */
  private readonly active = new Map<Append, { upload: string; ended: Promise<void> }>();

  constructor(options: ResumableUploadsOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  get maxBytes(): number {
    return this.options.maxBytes;
  }

  async create(tenant: string, input: NewUpload): Promise<{ upload: Upload; replayed: boolean }> {
    const contentType = contentTypeOf(input.contentType);
    const retainUntil = this.options.documents.retention(input.retainUntil);
    if (input.length === 0) throw new Errors.EmptyDocument();
    if (input.length !== undefined && input.length > this.options.maxBytes) throw new Errors.PayloadTooLarge(describeBytes(this.options.maxBytes));
    if (input.documentId !== undefined) await this.options.documents.checkTarget(tenant, input.documentId, contentType, input.length);
    const retryAfter = await this.options.countCreation(tenant);
    if (retryAfter !== undefined) throw Object.assign(new Errors.RateLimited(), { retryAfter });

    const spec = { ...input, contentType, ...(retainUntil !== undefined ? { retainUntil } : {}) };
    if (input.idempotencyKey === undefined) return { upload: await this.open(tenant, this.options.homes.newUploadId(tenant), spec), replayed: false };
    const answer = await this.options.requests.run(
      CREATE_ROUTE,
      {
        tenant,
        key: input.idempotencyKey,
        fingerprint: fingerprint([CREATE_ROUTE, input.route, contentType, String(input.length ?? ''), input.documentId ?? '', input.reprSha256?.toString('hex') ?? '', ...(retainUntil ? [retainUntil] : [])]),
        resourceId: this.options.homes.newUploadId(tenant),
      },
      async (uploadId) => ({ statusCode: 201, body: { uploadId: (await this.open(tenant, uploadId, spec)).uploadId } }),
    );
    return { upload: await this.status(tenant, answer.body.uploadId), replayed: answer.replayed };
  }

  /**
   * The item and the multipart upload of a new upload. Of an id whose item
   * exists (a request that takes over a crashed creation with the same
   * Idempotency-Key), the existing upload.
   */
  private async open(tenant: string, uploadId: string, input: NewUpload & { contentType: string }): Promise<Upload> {
    const home = this.options.homes.local;
    const documentId = input.documentId ?? this.options.documents.newDocumentId(tenant);
    const s3Key = `${tenant}/${documentId}/${uploadId}`;
    const s3UploadId = await home.parts.create(s3Key);
    const now = this.now();
    const upload: Upload = {
      tenant,
      uploadId,
      documentId,
      region: home.region,
      route: input.route,
      protocol: input.protocol,
      contentType: input.contentType,
      ...(input.metadata !== undefined ? { metadata: input.metadata } : {}),
      ...(input.length !== undefined ? { length: input.length } : {}),
      ...(input.reprSha256 ? { reprSha256: input.reprSha256 } : {}),
      ...(input.retainUntil !== undefined ? { retainUntil: input.retainUntil } : {}),
      state: 'OPEN',
      offset: 0,
      s3Key,
      s3UploadId,
      parts: [],
      nextPart: 1,
      hashFormat: HASH_FORMAT,
      hashState: Buffer.from(await initialHashState()),
      createdAt: new Date(now).toISOString(),
      expiresAt: now + this.options.expirySeconds * 1000,
    };
    try {
      await home.records.create(upload);
      return upload;
    } catch (error) {
      await home.parts.abort(s3Key, s3UploadId).catch(() => {});
      if (!isConditionFailure(error)) throw error;
      const existing = await home.records.get(tenant, uploadId);
      if (!existing) throw error;
      return existing;
    }
  }

  /** The item, for any request about an upload: 404 unknown or cancelled, 410 past its expiry. */
  private async load(tenant: string, uploadId: string): Promise<{ home: UploadHome; upload: Upload }> {
    const home = this.options.homes.of(tenant, uploadId);
    const upload = await home.records.get(tenant, uploadId);
    if (!upload || upload.state === 'CANCELLED') throw new Errors.UploadNotFound(uploadId);
    if (upload.state === 'EXPIRED' || (upload.state !== 'FAILED' && upload.expiresAt <= this.now())) throw new Errors.UploadExpired(uploadId);
    return { home, upload };
  }

  /** What HEAD answers: OPEN with its offset, or COMPLETED (an upload left COMPLETING is finished first); a failed one is its error. */
  async status(tenant: string, uploadId: string): Promise<Upload> {
    await this.endAppendsHere(tenant, uploadId);
    const { home, upload } = await this.load(tenant, uploadId);
    if (upload.state === 'FAILED') throw this.failureOf(upload);
    if (upload.state === 'COMPLETING') return this.finish(home, upload);
    return upload;
  }

  /**
   * An append of the upload still in progress on this instance when its
   * offset is asked for is one its client gave up on (a client asks after a
   * request failed, never during one): it stops, stores what arrived, and
   * ends before the offset is read. Else it would move the offset after the
   * answer (storing the part it had in flight, then what arrived), and the
   * append the client sends next, at the offset answered, would be refused
   * 409: an offset answered must be one the next append can use (the IETF
   * draft's "Concurrency"). An append on another instance is not reached:
   * one that is still alive can make that 409 happen.
   */
  private async endAppendsHere(tenant: string, uploadId: string): Promise<void> {
    const key = `${tenant}/${uploadId}`;
    const here = [...this.active].filter(([, running]) => running.upload === key);
    for (const [append] of here) append.stop(new Errors.UploadSuperseded(uploadId), true);
    await Promise.all(here.map(([, running]) => running.ended));
  }

  /**
   * Appends a request's body. The request must name the upload's offset,
   * takes an upload slot, and owns the upload while its body arrives (a
   * request that comes later at the same offset takes it over: the client
   * gave up on this one). The request that completes the upload commits
   * the document; the upload it answers is then COMPLETED, with the answer
   * of the create.
   */
  async append(tenant: string, uploadId: string, input: AppendInput): Promise<Upload> {
    const home = this.options.homes.of(tenant, uploadId);
    const release = await this.slot(tenant, uploadId);
    try {
      // Claimed at once, the item read only when the claim fails (to say why): one write, not a read and a write.
      const owner = randomUUID();
      const claimed = await home.records.claim(tenant, uploadId, input.offset, owner);
      if (!claimed) {
        const { upload } = await this.load(tenant, uploadId);
        this.check(upload, input);
        throw withOffset(new Errors.UploadSuperseded(uploadId), upload.offset);
      }
      try {
        this.check(claimed, input);
      } catch (error) {
        await home.records.release(tenant, uploadId, owner).catch(() => {});
        throw error;
      }
      return await this.appendOwned(home, claimed, owner, input);
    } finally {
      release();
    }
  }

  private check(upload: Upload, input: AppendInput): void {
    const { offset } = upload;
    if (upload.state === 'FAILED') throw withOffset(this.failureOf(upload), offset);
    if (upload.state !== 'OPEN') throw withOffset(new Errors.UploadCompleted(upload.uploadId), offset);
    if (input.length !== undefined && upload.length !== undefined && input.length !== upload.length) {
      throw withOffset(new Errors.UploadLengthMismatch(`Upload-Length ${input.length} differs from the upload's length, ${upload.length}`), offset);
    }
    if (input.offset !== offset) {
      throw Object.assign(withOffset(new Errors.UploadOffsetMismatch(input.offset, offset), offset), {
        members: { 'expected-offset': offset, 'provided-offset': input.offset },
      });
    }
    const length = input.length ?? upload.length;
    const limit = length ?? this.options.maxBytes;
    if (input.declaredLength !== undefined && offset + input.declaredLength > limit) throw withOffset(new Errors.PayloadTooLarge(describeBytes(limit)), offset);
    if (input.complete && length !== undefined && input.declaredLength !== undefined && offset + input.declaredLength !== length) {
      throw withOffset(
        new Errors.UploadLengthMismatch(`the upload ends at ${offset + input.declaredLength} bytes, not at its length, ${length}`),
        offset,
      );
    }
  }

  /** An upload slot of the tenant's; without one, 503 with the upload's offset (read then, as the client resumes from it). */
  private async slot(tenant: string, uploadId: string): Promise<() => void> {
    try {
      return this.options.slots.take(tenant);
    } catch (error) {
      const { upload } = await this.load(tenant, uploadId);
      throw withOffset(error, upload.offset);
    }
  }

  private async appendOwned(home: UploadHome, claimed: Upload, owner: string, input: AppendInput): Promise<Upload> {
    const { tenant, uploadId } = claimed;
    let upload = claimed;
    if (input.length !== undefined && upload.length === undefined) {
      if (!(await home.records.setLength(tenant, uploadId, owner, input.length))) throw withOffset(new Errors.UploadSuperseded(uploadId), upload.offset);
      upload = { ...upload, length: input.length };
    }
    const hash = await this.options.hashing.resume(upload.hashFormat, upload.hashState);
    if (!hash) {
      await home.records.end(tenant, uploadId, 'FAILED', 'UPLOAD_STATE_LOST');
      throw new Errors.UploadStateLost(uploadId);
    }
    const append = new Append(upload, hash, {
      parts: home.parts,
      buffers: this.options.buffers,
      partsInFlight: this.options.partsInFlight,
      record: (progress, completing) => home.records.record(tenant, uploadId, owner, progress, completing),
      tailKey: () => `${upload.s3Key}.tail.${randomUUID()}`,
      discard: (key) => void home.parts.remove(key).catch((err: unknown) => this.options.log.warn({ err, s3Key: key }, 'tail not removed; the content sweeper will')),
    });
    const length = upload.length;
    const complete = input.complete;
    const watch = setInterval(() => {
      home.records.stillOwns(tenant, uploadId, owner).then(
        (owns) => owns || append.stop(new Errors.UploadSuperseded(uploadId)),
        () => {},
      );
    }, this.options.ownerCheckMs ?? 2000);
    let ended!: () => void;
    this.active.set(append, { upload: `${tenant}/${uploadId}`, ended: new Promise<void>((resolve) => (ended = resolve)) });
    let result;
    try {
      result = await append.run({
        body: input.body,
        declaredLength: input.declaredLength,
        limit: length ?? this.options.maxBytes,
        // tus: complete once the length is reached; IETF: when the client says so, at the length if one was given.
        completesAt: (offset) => (complete === undefined ? offset === length : complete && (length === undefined || offset === length)),
        ...(input.digest ? { digest: input.digest } : {}),
      });
    } catch (caught) {
      let error = caught;
      // Another request took the upload over (or ended it) meanwhile: what failed since, such as a part sent
      // to the multipart upload that request completed (NoSuchUpload), is that, not a fault of the service.
      if (!isErrorCode(codeOf(caught)) && !(await home.records.stillOwns(tenant, uploadId, owner).catch(() => true))) {
        error = new Errors.UploadSuperseded(uploadId);
      }
      if (!hasCode(error, 'UPLOAD_SUPERSEDED')) await home.records.release(tenant, uploadId, owner).catch(() => {});
      throw withOffset(error, append.offset);
    } finally {
      clearInterval(watch);
      this.active.delete(append);
      ended();
    }
    if (result.kind === 'stored') {
      // Its last record let go of the upload, unless it recorded nothing.
      if (!result.released) await home.records.release(tenant, uploadId, owner).catch(() => {});
      if (complete) throw withOffset(new Errors.UploadLengthMismatch(`the upload ended at ${result.offset} bytes, not at its length, ${length}`), result.offset);
      return { ...upload, offset: result.offset };
    }
    return this.finish(home, { ...upload, state: 'COMPLETING', offset: result.offset, checksum: result.checksum, parts: result.parts, tail: undefined });
  }

  /**
   * COMPLETING → COMPLETED: the declared digest checked, the multipart upload
   * completed, the document committed. Any request that finds the upload
   * COMPLETING runs this (its appender may have died), and two running it at
   * once agree: S3 completes the object once, and the commit recognises its
   * own item. A digest that does not match, or an id taken, fails the upload.
   */
  private async finish(home: UploadHome, upload: Upload): Promise<Upload> {
    const { tenant, uploadId, checksum } = upload;
    if (!checksum) throw new Error(`upload ${uploadId} is COMPLETING without a checksum`);
    if (upload.reprSha256 && upload.reprSha256.toString('hex') !== checksum) {
      return this.fail(home, upload, 'DIGEST_MISMATCH');
    }
    const completed = await home.parts.complete(upload.s3Key, upload.s3UploadId, upload.parts);
    if (completed === 'gone' && (await home.parts.sizeOf(upload.s3Key)) !== upload.offset) return this.fail(home, upload, 'UPLOAD_STATE_LOST');
    let answer: CreateAnswer;
    try {
      answer = await this.options.documents.commitStaged(
        tenant,
        upload.route,
        { id: upload.documentId, contentType: upload.contentType, size: upload.offset, checksum, ...(upload.retainUntil ? { retainUntil: upload.retainUntil } : {}) },
        upload.s3Key,
      );
    } catch (error) {
      const code = codeOf(error);
      if (code === 'DOCUMENT_EXISTS' || code === 'DOCUMENT_DELETED') return this.fail(home, upload, code);
      throw error;
    }
    const result = { statusCode: answer.statusCode, metadata: answer.metadata };
    await home.records.completed(tenant, uploadId, result);
    return { ...upload, state: 'COMPLETED', result };
  }

  /** Ends an upload that can never commit, removes its bytes, and answers why. */
  private async fail(home: UploadHome, upload: Upload, failure: string): Promise<never> {
    await home.records.end(upload.tenant, upload.uploadId, 'FAILED', failure);
    const failed = { ...upload, state: 'FAILED' as const, failure };
    await discardUpload(home, failed).catch((err: unknown) =>
      this.options.log.warn({ err, uploadId: upload.uploadId }, 'failed upload not cleaned up; the content sweeper will'),
    );
    throw withOffset(this.failureOf(failed), upload.offset);
  }

  private failureOf(upload: Upload): Error {
    switch (upload.failure) {
      case 'DIGEST_MISMATCH':
        return new Errors.DigestMismatch('Repr-Digest sha-256');
      case 'DOCUMENT_EXISTS':
        return new Errors.DocumentExists(upload.documentId);
      case 'DOCUMENT_DELETED':
        return new Errors.DocumentDeleted(upload.documentId);
      default:
        return new Errors.UploadStateLost(upload.uploadId);
    }
  }

  /**
   * DELETE: an open (or failed) upload ends at once, its bytes removed, and
   * is unknown afterwards; an append in progress finds out at its next
   * write. A completed upload stays what it is (its document is deleted
   * with DELETE /documents/{id}).
   */
  async cancel(tenant: string, uploadId: string): Promise<void> {
    const { home, upload } = await this.load(tenant, uploadId);
    if (upload.state === 'COMPLETED') return;
    if (upload.state === 'COMPLETING') {
      await this.finish(home, upload).catch(() => {});
      return;
    }
    if (!(await home.records.end(tenant, uploadId, 'CANCELLED'))) return;
    await discardUpload(home, upload).catch((err: unknown) =>
      this.options.log.warn({ err, uploadId }, 'cancelled upload not cleaned up; the content sweeper will'),
    );
  }

  /** A drain: every append in progress stores what arrived and ends, so that its client resumes elsewhere. */
  stopAll(): void {
    for (const append of this.active.keys()) append.stop(new Errors.ShuttingDown());
  }

  /** Appends in progress (a drain waits for them to store what they have). */
  get appending(): number {
    return this.active.size;
  }
}
