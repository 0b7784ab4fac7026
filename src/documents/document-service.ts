import { createHash } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import { codeOf, dependencyFailure, Errors, isErrorCode } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { fingerprint } from '../idempotency/idempotency-key.ts';
import type { IdempotentRequests } from '../idempotency/idempotent-requests.ts';
import type { DeclaredDigest } from './content-digest.ts';
import type { ContentStore } from './content-store.ts';
import type { DocumentCache } from './document-cache.ts';
import { createdEvent, deletedEvent, type DocumentEvents } from './document-events.ts';
import { deletionEventKey, type ContentPlace, type CreateResult, type ListingPosition } from './document-store.ts';
import type { DeletionAnnouncer } from './deletion-events.ts';
import type { DocumentRecords } from './homed-document-store.ts';
import { MemoisedLinkSigner, linkValidity, type LinkSigner } from './links.ts';
import { IncomingBody, refuseContentCoding, type BodyHead } from './incoming-body.ts';
import type { ObjectLocks } from './object-lock.ts';
import { createOnly, evaluate, failsWithoutDocument, hasPreconditions, preconditionFailed, type Preconditions } from './preconditions.ts';
import { parseRetainUntil } from './retention.ts';
import type { DocumentMetadata, WholeDocument } from './schemas.ts';
import type { StaleReads } from './stale-reads.ts';
import type { UploadSlots } from './upload-slots.ts';
import { ContentIntegrityError, VerifiedContent } from './verified-content.ts';
import { comparableMediaType } from './media-type.ts';

/** A create as it arrives: the body still unread. */
export type NewDocument = {
  /** undefined for a request without a body. */
  body: Readable | undefined;
  contentType: string | undefined;
  /** Content-Encoding as sent. */
  contentEncoding?: string | undefined;
  /** Content-Length, when the client declared one. */
  declaredLength: number | undefined;
  digests: readonly DeclaredDigest[];
  /** Retain-Until as sent. */
  retainUntil?: string | undefined;
};

/** What a create commits beyond its bytes: the document's retention, as the client asked it. */
export type Commitment = { retainUntil?: string };

export type CreateAnswer = { statusCode: 200 | 201; metadata: DocumentMetadata; replayed: boolean };

/** A document found for a read: whole in hand, or in S3, to be streamed. */
export type Found =
  | { kind: 'whole'; document: WholeDocument; cacheStatus: 'hit' | 'fwd=miss' }
  | { kind: 'object'; metadata: DocumentMetadata; s3Key: string; cacheStatus: 'fwd=miss' };

/** A short-lived URL that serves a document's bytes without the service, and what the client checks them against. */
export type DocumentLink = { url: string; expiresAt: string; size: number; contentType: string; sha256: string };

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
/** What a 415 of a create says a document takes. */
export const DOCUMENT_TYPES = 'a document takes any type/subtype[; parameters]';
// type/subtype[; parameters], as RFC 9110 allows, kept to a sane length.
const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]{1,127}\/[A-Za-z0-9!#$&^_.+-]{1,127}(\s*;[\x20-\x7e]*)?$/;
const POST_ROUTE = 'POST /documents';

export type DocumentLimits = {
  maxBytes: number;
  /** Up to this, a tenant's content sits in the item; above it, in S3. */
  inlineMaxBytes: (tenant: string) => number;
  /** Up to this, content is read whole and cached; above it, always streamed from S3. */
  cacheMaxBytes: number;
};

export type DocumentServiceOptions = {
  store: DocumentRecords;
  content: ContentStore;
  cache: DocumentCache;
  requests: IdempotentRequests;
  metrics: Metrics;
  log: Pick<FastifyBaseLogger, 'warn' | 'error'>;
  limits: DocumentLimits;
  /** Uploads bound for S3 at once in this process, in all and per tenant. */
  slots: UploadSlots;
  now?: () => Date;
  /** Of several regions: ids of POST homed here, deletes announced to the other regions, stale reads counted. */
  regions?: { newId(tenant: string): string; deletions: DeletionAnnouncer; staleReads: StaleReads };
  /** Days each tenant's documents are retained at least (RETENTION_DEFAULTS); undefined: none. */
  retentionDays?: (tenant: string) => number | undefined;
  /** Document events (DOCUMENT_EVENTS=on): made pending with each create and delete, and the API's own attempt to publish them. */
  events?: DocumentEvents;
  /** S3 Object Lock on document objects (S3_OBJECT_LOCK_MODE); undefined: retention and holds live in the metadata only. */
  objectLocks?: Pick<ObjectLocks, 'retain' | 'hold'>;
  /** Direct links to content in S3, valid this long. */
  links: { signer: LinkSigner; ttlSeconds: number };
};

/** A position in the listing, as a client holds it: opaque, and only its tenant's. */
function cursorOf(tenant: string, position: ListingPosition): string {
  return Buffer.from(JSON.stringify({ t: tenant, p: position.pk, s: position.listSk })).toString('base64url');
}

function positionOf(tenant: string, cursor: string): ListingPosition {
  try {
    const { t, p, s } = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { t?: unknown; p?: unknown; s?: unknown };
    if (t === tenant && typeof p === 'string' && p.startsWith(`${tenant}#`) && typeof s === 'string') return { pk: p, listSk: s };
  } catch {
    // Not JSON: not a cursor of ours.
  }
  throw new Errors.InvalidCursor();
}

/** The body of a create once read: inline content, or the S3 object it was staged in; and the retention asked. */
type Received = { metadata: DocumentMetadata; place: ContentPlace; retainUntil?: string | undefined };

/** Who creates, and the retention asked. */
type Creation = { tenant: string; retainUntil?: string | undefined };

/**
 * The document use cases: creates streamed to their store (idempotent, never
 * overwriting), reads through two cache layers or streamed from S3, deletes
 * with a tombstone that beats every cache.
 *
 * A create reads its body before it commits anything. A body up to the
 * inline size is held and stored in the metadata item; a larger one is
 * streamed into a new S3 object of its own while its SHA-256 is computed,
 * and the create then commits the metadata item that names that object (a
 * conditional put: the commit point). Whatever does not commit (a replay, a
 * conflict, a failure) removes its staged object; an object left by a crash
 * is the content sweeper's. Idempotency records are claimed after the body,
 * when the fingerprint (content type and SHA-256) is known.
 */
export class DocumentService {
  private readonly options: DocumentServiceOptions;
  private readonly now: () => Date;
  /** Concurrent misses of one document in this process share one store read. */
  private readonly pendingReads = new Map<string, Promise<Found | undefined>>();
  private readonly memoryHits: { inc(): void };
  private readonly lookupCounters = new Map<string, { inc(): void }>();
  /** options.links, its signer memoised (MemoisedLinkSigner). */
  private readonly links: { signer: LinkSigner; ttlSeconds: number };

  constructor(options: DocumentServiceOptions) {
    this.options = options;
    this.links = { signer: new MemoisedLinkSigner(options.links.signer), ttlSeconds: options.links.ttlSeconds };
    this.now = options.now ?? (() => new Date());
    this.memoryHits = options.metrics.cacheLookup({ layer: 'memory', result: 'hit' });
  }

  /**
   * PUT: 201 new, 200 identical retry, 409 when the id holds other content
   * or was deleted; 412 when a condition does not hold, checked before a
   * byte is read. If-None-Match: * (create only) holds to the commit: a
   * document that appears meanwhile, even these very bytes, is a 412.
   */
  async put(tenant: string, id: string, input: NewDocument, conditions: Preconditions = {}): Promise<CreateAnswer> {
    if (hasPreconditions(conditions)) await this.checkWrite(tenant, id, conditions, true);
    const answer = (result: CreateResult) => {
      if (createOnly(conditions) && (result.outcome === 'identical' || result.outcome === 'conflict')) throw preconditionFailed(conditions, id);
      return this.answerPut(id, result);
    };
    return this.receive(tenant, input, async (body, head, contentType, retainUntil) => {
      const creation = { tenant, retainUntil };
      if (head.complete) return answer(await this.commit(tenant, this.inline(creation, id, contentType, head.content)));

      // The id may already be taken: then the answer only depends on whether
      // these bytes are the stored ones, and nothing needs uploading.
      const existing = await this.options.store.lookup(tenant, id);
      if (existing.state === 'deleted') throw new Errors.DocumentDeleted(id);
      if (existing.state === 'active') {
        if (createOnly(conditions)) throw preconditionFailed(conditions, id);
        const stored = existing.record.metadata;
        const declared = input.declaredLength;
        if (stored.contentType !== contentType || (declared !== undefined && declared !== stored.size)) {
          throw new Errors.DocumentExists(id);
        }
        await body.discard();
        if (body.sha256Hex !== stored.checksum || body.bytes !== stored.size) throw new Errors.DocumentExists(id);
        return { statusCode: 200, metadata: stored, replayed: false };
      }
      return this.staged(creation, id, contentType, body, async (received) => answer(await this.commit(tenant, received)));
    });
  }

  /**
   * A write's conditions against the document as it is. Without one, the
   * conditions of a request that would not succeed anyway are ignored (RFC
   * 9110 §13.2.1: a DELETE's 404), but a create's If-Match cannot hold.
   */
  private async checkWrite(tenant: string, id: string, conditions: Preconditions, creates: boolean): Promise<void> {
    const found = await this.options.store.lookup(tenant, id);
    const failed =
      found.state === 'active' ? evaluate(conditions, found.record.metadata, false) === 'failed' : creates && found.state === 'absent' && failsWithoutDocument(conditions);
    if (failed) throw preconditionFailed(conditions, id);
  }

  /** POST: a new UUIDv7 document; with a key, exactly one document per key. */
  async post(tenant: string, input: NewDocument, idempotencyKey: string | undefined): Promise<CreateAnswer> {
    return this.receive(tenant, input, async (body, head, contentType, retainUntil) => {
      const creation = { tenant, retainUntil };
      if (idempotencyKey === undefined) {
        const id = this.newId(tenant);
        if (head.complete) return this.answerPost(await this.commit(tenant, this.inline(creation, id, contentType, head.content)));
        return this.staged(creation, id, contentType, body, async (received) => this.answerPost(await this.commit(tenant, received)));
      }
      const scope = { tenant, key: idempotencyKey };
      if (head.complete) {
        const received = this.inline(creation, this.newId(tenant), contentType, head.content);
        return this.once(scope, received, (id) => this.commit(tenant, { ...received, metadata: { ...received.metadata, id } }));
      }
      // Staged content is named by the document id: use the one a live record
      // of the key already names, so that a retry taking over a crashed
      // request commits under that id.
      const id = (await this.options.requests.resourceOf(POST_ROUTE, scope)) ?? this.newId(tenant);
      return this.staged(creation, id, contentType, body, (received) =>
        this.once(scope, received, (resourceId) => {
          // Another request claimed the key for another id while this body arrived.
          if (resourceId !== id) throw new Errors.IdempotencyKeyInUse();
          return this.commit(tenant, received);
        }),
      );
    });
  }

  /**
   * Checks what can be checked before the body, reads its head (all of an
   * inline document), and holds an upload slot while a larger one is read:
   * one known to be large takes its slot before a byte is read, one of
   * unknown length once it outgrows the inline size.
   */
  private async receive(
    tenant: string,
    input: NewDocument,
    create: (body: IncomingBody, head: BodyHead, contentType: string, retainUntil: string | undefined) => Promise<CreateAnswer>,
  ): Promise<CreateAnswer> {
    const { maxBytes } = this.options.limits;
    const inlineMaxBytes = this.options.limits.inlineMaxBytes(tenant);
    refuseContentCoding(input.contentEncoding);
    if (!input.body || input.declaredLength === 0) throw new Errors.EmptyDocument();
    const contentType = contentTypeOf(input.contentType);
    const retainUntil = this.retention(input.retainUntil);

    const { slots } = this.options;
    let slot = input.declaredLength !== undefined && input.declaredLength > inlineMaxBytes ? slots.take(tenant) : undefined;
    try {
      const body = new IncomingBody(input.body, { maxBytes, declared: input.digests });
      const head = await body.readHead(inlineMaxBytes);
      if (!head.complete) slot ??= slots.take(tenant);
      return await create(body, head, contentType, retainUntil);
    } finally {
      slot?.();
    }
  }

  private inline(creation: Creation, id: string, contentType: string, content: Buffer): Received {
    if (content.length === 0) throw new Errors.EmptyDocument();
    const metadata = this.newMetadata(creation, id, contentType, content.length, sha256Of(content));
    return { metadata, place: { content }, retainUntil: creation.retainUntil };
  }

  /**
   * A new document's metadata: created now, retained until the later of the
   * Retain-Until asked and the tenant's default retention, if either.
   */
  private newMetadata(creation: Creation, id: string, contentType: string, size: number, checksum: string): DocumentMetadata {
    const createdAt = this.now();
    const days = this.options.retentionDays?.(creation.tenant);
    const candidates = [creation.retainUntil, days === undefined ? undefined : new Date(createdAt.getTime() + days * 86_400_000).toISOString()];
    const retainUntil = candidates.filter((until) => until !== undefined).sort().at(-1);
    return { id, status: 'ACTIVE', contentType, size, checksum, createdAt: createdAt.toISOString(), ...(retainUntil ? { retainUntil } : {}), legalHold: 'OFF' };
  }

  /**
   * Streams the rest of the body into a new object for `id`, then runs
   * `commit`; the object is removed again unless the commit made it the
   * document's content.
   */
  private async staged(
    creation: Creation,
    id: string,
    contentType: string,
    body: IncomingBody,
    commit: (received: Received) => Promise<CreateAnswer & { committed: boolean }>,
  ): Promise<CreateAnswer> {
    const s3Key = this.options.content.newKey(creation.tenant, id);
    await this.options.content.upload(s3Key, body.rest());
    let committed = false;
    try {
      const answer = await commit({
        metadata: this.newMetadata(creation, id, contentType, body.bytes, body.sha256Hex),
        place: { s3Key },
        retainUntil: creation.retainUntil,
      });
      committed = answer.committed;
      return { statusCode: answer.statusCode, metadata: answer.metadata, replayed: answer.replayed };
    } finally {
      if (!committed) this.removeContent(s3Key);
    }
  }

  /**
   * Whether a client-chosen id may still become this document: 409 when it
   * was deleted, or holds a document of another type or size (one of the
   * same type and size may be these very bytes: a retry, decided at the
   * commit). What a resumable upload to that id checks before its bytes.
   */
  async checkTarget(tenant: string, id: string, contentType: string, size: number | undefined): Promise<void> {
    const existing = await this.options.store.lookup(tenant, id);
    if (existing.state === 'deleted') throw new Errors.DocumentDeleted(id);
    if (existing.state !== 'active') return;
    const stored = existing.record.metadata;
    if (stored.contentType !== contentType || (size !== undefined && size !== stored.size)) throw new Errors.DocumentExists(id);
  }

  /**
   * Commits content that is whole in S3 (a resumable upload's) exactly as a
   * one-request create commits its staged object: one conditional put, with
   * the answers of PUT (the id was the client's) or POST; the object is
   * removed unless it became the document's content.
   */
  async commitStaged(
    tenant: string,
    route: 'POST' | 'PUT',
    document: Pick<DocumentMetadata, 'id' | 'contentType' | 'size' | 'checksum'> & Commitment,
    s3Key: string,
  ): Promise<CreateAnswer> {
    let committed = false;
    try {
      const creation = { tenant, retainUntil: document.retainUntil };
      const received = { metadata: this.newMetadata(creation, document.id, document.contentType, document.size, document.checksum), place: { s3Key } };
      const result = await this.commit(tenant, received);
      const answer = route === 'PUT' ? this.answerPut(document.id, result) : this.answerPost(result);
      committed = answer.committed;
      return { statusCode: answer.statusCode, metadata: answer.metadata, replayed: false };
    } finally {
      if (!committed) this.removeContent(s3Key);
    }
  }

  /**
   * With Object Lock, the retention of a document in S3 is set on its object
   * before the commit: a document is never committed whose object S3 would
   * let go of first. A failure fails the create (503, nothing committed; a
   * retry is safe) rather than commit it unlocked; it is never a failure
   * after the commit. The price: an object locked and then not committed (the
   * loser of a race, an identical PUT, a crash) stays, as a noncurrent
   * version, until its date (docs/encryption-and-retention.md). A replay of
   * an Idempotency-Key never gets here, and locks nothing.
   */
  private async retainObject(s3Key: string, metadata: DocumentMetadata): Promise<void> {
    const locks = this.options.objectLocks;
    const until = metadata.retainUntil;
    if (!locks || until === undefined) return;
    await this.objectLockCall('retention', s3Key, () => locks.retain(s3Key, until));
  }

  /** An Object Lock call; its failure counted, logged and answered 503 (what it guarded is not acknowledged). */
  private async objectLockCall(call: 'retention' | 'legal-hold', s3Key: string, send: () => Promise<void>): Promise<void> {
    try {
      await send();
    } catch (err) {
      this.options.metrics.objectLockFailures.inc({ call });
      this.options.log.error({ err, s3Key, call }, 'S3 Object Lock call failed: answered 503, the retry sets it');
      if (isErrorCode(codeOf(err))) throw err;
      throw dependencyFailure('unavailable', `S3 Object Lock (${call}) of ${s3Key}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, err);
    }
  }

  /** A Retain-Until as sent, checked (400 if it is not a time to come) and normalised; undefined: none asked. */
  retention(sent: string | undefined): string | undefined {
    return sent === undefined ? undefined : parseRetainUntil(sent, this.now());
  }

  /** The id a POST gives a new document. */
  newDocumentId(tenant: string): string {
    return this.newId(tenant);
  }

  /**
   * The one conditional put; a document created has its document.created
   * event pending, and sent at once. An object is retained first (Object Lock).
   */
  private async commit(tenant: string, received: Pick<Received, 'metadata' | 'place'>): Promise<CreateResult> {
    if ('s3Key' in received.place) await this.retainObject(received.place.s3Key, received.metadata);
    const { events } = this.options;
    if (!events) return this.options.store.create(tenant, received.metadata, received.place);
    const origin = events.origin();
    const result = await this.options.store.create(tenant, received.metadata, received.place, { now: this.now().getTime(), traceContext: origin });
    if (result.outcome === 'created') events.send(`${tenant}#${result.metadata.id}`, createdEvent(tenant, result.metadata), origin);
    return result;
  }

  private answerPut(id: string, result: CreateResult): CreateAnswer & { committed: boolean } {
    switch (result.outcome) {
      case 'created':
        return { statusCode: 201, metadata: result.metadata, replayed: false, committed: true };
      case 'identical':
        return { statusCode: 200, metadata: result.metadata, replayed: false, committed: false };
      case 'deleted':
        throw new Errors.DocumentDeleted(id);
      case 'conflict':
        throw new Errors.DocumentExists(id);
    }
  }

  /** For POST the id is ours: an identical item is our own earlier attempt. */
  private answerPost(result: CreateResult): CreateAnswer & { committed: boolean } {
    if (result.outcome === 'created' || result.outcome === 'identical') {
      return { statusCode: 201, metadata: result.metadata, replayed: false, committed: result.outcome === 'created' };
    }
    throw new Error(`a document id of this service collided (${result.outcome})`);
  }

  /** A POST with an Idempotency-Key: the create runs once per key and fingerprint; others replay it or get 422. */
  private async once(
    scope: { tenant: string; key: string },
    received: Received,
    commit: (resourceId: string) => Promise<CreateResult>,
  ): Promise<CreateAnswer & { committed: boolean }> {
    let committed = false;
    const answer = await this.options.requests.run(
      POST_ROUTE,
      {
        ...scope,
        fingerprint: fingerprint([POST_ROUTE, comparableMediaType(received.metadata.contentType), received.metadata.checksum, ...(received.retainUntil ? [received.retainUntil] : [])]),
        resourceId: received.metadata.id,
      },
      async (resourceId) => {
        const created = this.answerPost(await commit(resourceId));
        committed = created.committed;
        return { statusCode: created.statusCode, body: created.metadata };
      },
    );
    return { statusCode: 201, metadata: answer.body, replayed: answer.replayed, committed };
  }

  private removeContent(s3Key: string): void {
    this.options.content
      .remove(s3Key)
      .catch((err: unknown) => this.options.log.warn({ err, s3Key }, 'content not removed; the content sweeper will'));
  }

  /** Counter children by label, so the hot path does not hash labels per request. */
  private countLookup(layer: string, result: string) {
    const key = `${layer}:${result}`;
    let counter = this.lookupCounters.get(key);
    if (!counter) {
      counter = this.options.metrics.cacheLookup({ layer, result });
      this.lookupCounters.set(key, counter);
    }
    counter.inc();
  }

  /** A hit in process memory, answered synchronously; undefined sends the caller to read(). */
  readHot(tenant: string, id: string): WholeDocument | undefined {
    const document = this.options.cache.fromMemory(tenant, id);
    if (document) {
      this.memoryHits.inc();
      this.options.regions?.staleReads.served(tenant, id);
    }
    return document;
  }

  async read(tenant: string, id: string): Promise<Found> {
    const found = await this.find(tenant, id);
    this.options.regions?.staleReads.served(tenant, id);
    return found;
  }

  private async find(tenant: string, id: string): Promise<Found> {
    const cached = await this.options.cache.lookup(tenant, id);
    this.countLookup(cached.result === 'hit' ? cached.layer : 'redis', cached.result);
    if (cached.result === 'hit') return { kind: 'whole', document: cached.document, cacheStatus: 'hit' };
    if (cached.result === 'tombstone') throw new Errors.DocumentNotFound(id);

    const key = `${tenant}#${id}`;
    let pending = this.pendingReads.get(key);
    if (!pending) {
      pending = this.readThrough(tenant, id, cached.result === 'miss');
      this.pendingReads.set(key, pending);
      pending.finally(() => this.pendingReads.delete(key)).catch(() => {});
    }
    const found = await pending;
    if (!found) throw new Errors.DocumentNotFound(id);
    return found;
  }

  private async readThrough(tenant: string, id: string, fill: boolean): Promise<Found | undefined> {
    const found = await this.options.store.lookup(tenant, id);
    if (found.state !== 'active') {
      if (found.state === 'deleted' && fill) await this.options.cache.fillTombstone(tenant, id);
      return undefined;
    }
    const { metadata, content, s3Key } = found.record;
    const cacheable = metadata.size <= this.options.limits.cacheMaxBytes;
    let whole = content;
    if (!whole && s3Key) {
      if (!cacheable) return { kind: 'object', metadata, s3Key, cacheStatus: 'fwd=miss' };
      whole = await this.options.content.readWhole(s3Key);
      // Content removed between the two reads: the document was deleted meanwhile.
      if (!whole) return undefined;
    }
    if (!whole) throw new Error(`document ${id} has neither content nor an object`);
    if (whole.length !== metadata.size || sha256Of(whole) !== metadata.checksum) throw this.integrityFailure(metadata, s3Key);
    const document = { metadata, content: whole };
    if (fill && cacheable) await this.options.cache.fill(tenant, id, document);
    return { kind: 'whole', document, cacheStatus: 'fwd=miss' };
  }

  /**
   * The content of a document found in S3, or `[start, end]` of it, as a
   * stream. A whole read is verified as it goes (VerifiedContent); a slice
   * can only be checked against the object's size, which S3 states before
   * the first byte is sent.
   */
  async stream(found: Extract<Found, { kind: 'object' }>, range?: { start: number; end: number }): Promise<Readable> {
    const { metadata, s3Key } = found;
    const object = await this.options.content.open(s3Key, range);
    // Removed between the metadata read and this one: deleted meanwhile.
    if (!object) throw new Errors.DocumentNotFound(metadata.id);
    if (object.totalSize !== metadata.size) {
      object.body.destroy();
      throw this.integrityFailure(metadata, s3Key);
    }
    if (range) return object.body;
    const verified = new VerifiedContent(metadata, () => this.countIntegrityFailure(metadata, s3Key));
    return pipeline(object.body, verified, () => {});
  }

  private integrityFailure(metadata: DocumentMetadata, s3Key: string | undefined): ContentIntegrityError {
    this.countIntegrityFailure(metadata, s3Key);
    return new ContentIntegrityError(metadata.id);
  }

  private countIntegrityFailure(metadata: DocumentMetadata, s3Key: string | undefined) {
    this.options.metrics.integrityFailures.inc();
    this.options.log.error({ documentId: metadata.id, s3Key }, 'stored content does not match its checksum: not delivered');
  }

  /**
   * A direct link to an active document's object: 404 for one that is not
   * active (deleted, another tenant's), 409 NO_DIRECT_LINK for content
   * stored inline, which has no object. The object key is not in the
   * document caches: it is read from the table, then kept in memory under
   * the same invalidation as a read's (DocumentCache.location).
   */
  async link(tenant: string, id: string): Promise<DocumentLink> {
    const link = await this.linkOf(tenant, id);
    if (!link) throw new Errors.NoDirectLink(id);
    return link;
  }

  /**
   * A link instead of a read just made (the redirect of a large document);
   * undefined for content stored inline, which is served as it is. A document
   * found in S3 already has its key; one found whole in a cache is looked up.
   */
  linkInstead(tenant: string, found: Found): Promise<DocumentLink | undefined> {
    if (found.kind === 'object') return this.signed(found.metadata, found.s3Key);
    return this.linkOf(tenant, found.document.metadata.id);
  }

  private async linkOf(tenant: string, id: string): Promise<DocumentLink | undefined> {
    const location = await this.options.cache.location(tenant, id, async () => {
      const found = await this.options.store.lookup(tenant, id);
      return found.state === 'active' ? { metadata: found.record.metadata, s3Key: found.record.s3Key } : undefined;
    });
    if (!location) throw new Errors.DocumentNotFound(id);
    this.options.regions?.staleReads.served(tenant, id);
    return location.s3Key === undefined ? undefined : this.signed(location.metadata, location.s3Key);
  }

  /** Signed for the expiry bucket of now (linkValidity), through the memo: one signature per object and bucket. */
  private async signed(metadata: DocumentMetadata, s3Key: string): Promise<DocumentLink> {
    const { signer, ttlSeconds } = this.links;
    const { expiresAt, ...validity } = linkValidity(this.now(), ttlSeconds);
    const url = await signer.sign({ s3Key, contentType: metadata.contentType, filename: metadata.id }, validity);
    return {
      url,
      expiresAt: expiresAt.toISOString(),
      size: metadata.size,
      contentType: metadata.contentType,
      sha256: metadata.checksum,
    };
  }

  /**
   * Read from the table, not the caches: the legal hold is the one thing of
   * a document that changes, and the metadata must show it as it is. A
   * tombstone in the cache still answers 404 without a read.
   */
  async metadata(tenant: string, id: string): Promise<DocumentMetadata> {
    if (this.options.cache.fromMemory(tenant, id) === undefined && (await this.options.cache.lookup(tenant, id)).result === 'tombstone') {
      throw new Errors.DocumentNotFound(id);
    }
    const found = await this.options.store.lookup(tenant, id);
    if (found.state !== 'active') throw new Errors.DocumentNotFound(id);
    this.options.regions?.staleReads.served(tenant, id);
    return found.record.metadata;
  }

  /**
   * Places or lifts a legal hold (idempotent); 404 for a document that is
   * not active, a delete that came first included. With Object Lock the
   * object's hold follows the item's before the answer: a failure is a 503
   * (the item, the authority, already says what was asked; the retry, which
   * is idempotent, sets the object's too).
   */
  async setLegalHold(tenant: string, id: string, on: boolean): Promise<DocumentMetadata> {
    const record = await this.options.store.setLegalHold(tenant, id, on);
    if (!record) throw new Errors.DocumentNotFound(id);
    const { s3Key } = record;
    const locks = this.options.objectLocks;
    if (locks && s3Key) await this.objectLockCall('legal-hold', s3Key, () => locks.hold(s3Key, on));
    return record.metadata;
  }

  /** A page of the tenant's active documents, newest first; `cursor`: the `next` of the page before. */
  async list(tenant: string, limit: number, cursor: string | undefined): Promise<{ items: DocumentMetadata[]; next?: string }> {
    const page = await this.options.store.list(tenant, limit, cursor === undefined ? undefined : positionOf(tenant, cursor));
    return { items: page.items, ...(page.next ? { next: cursorOf(tenant, page.next) } : {}) };
  }

  /**
   * 204 only once the tombstone is in the store AND in Redis: if Redis cannot
   * take it, a stale cached copy could outlive the delete, so the client gets
   * a 503 and its retry (deletes are idempotent) finishes the job. The
   * content goes after the tombstone; what a failure leaves, the content
   * sweeper removes. Of several regions, the delete is also announced to the
   * others' caches before the 204 (a 503 if SNS did not take it, for the
   * same reason).
   */
  async delete(tenant: string, id: string, conditions: Preconditions = {}): Promise<void> {
    // A deleted document: the delete already happened, 204 whatever the conditions (RFC 9110 §13.1.1 allows it).
    if (hasPreconditions(conditions)) await this.checkWrite(tenant, id, conditions, false);
    const now = this.now().getTime();
    const result = await this.options.store.delete(tenant, id, now);
    switch (result.outcome) {
      case 'absent':
        throw new Errors.DocumentNotFound(id);
      case 'retained':
        throw new Errors.DocumentRetained(id, result.retainUntil);
      case 'held':
        throw new Errors.DocumentOnLegalHold(id);
    }
    if (result.s3Key) this.removeContent(result.s3Key);
    // A tombstone written before deletedAt was recorded: announced with the time of this delete.
    const deletedAt = result.deletedAt ?? new Date(now).toISOString();
    const { events } = this.options;
    if (events) {
      const origin = events.origin();
      await this.options.store.recordDeletion(tenant, id, deletedAt, { now, traceContext: origin });
      events.send(deletionEventKey(tenant, id), deletedEvent(tenant, id, deletedAt), origin);
    }
    if (!(await this.options.cache.tombstone(tenant, id))) throw new Errors.ServiceUnavailable();
    const { regions } = this.options;
    if (!regions) return;
    try {
      await regions.deletions.announce(tenant, id, deletedAt);
    } catch (err) {
      this.options.log.warn({ err, documentId: id }, 'delete not announced to the other regions: 503, the retry announces it');
      throw new Errors.ServiceUnavailable();
    }
  }

  private newId(tenant: string): string {
    return this.options.regions?.newId(tenant) ?? uuidv7();
  }
}

/** The media type a create stores: the one sent, or application/octet-stream; 415 for one that is not a media type. */
export function contentTypeOf(sent: string | undefined): string {
  const contentType = sent?.trim() || DEFAULT_CONTENT_TYPE;
  if (!MEDIA_TYPE.test(contentType)) {
    throw new Errors.UnsupportedMediaType(`Content-Type ${JSON.stringify(contentType.slice(0, 64))}`, DOCUMENT_TYPES);
  }
  return contentType;
}

function sha256Of(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}
