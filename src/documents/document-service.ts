import { v7 as uuidv7 } from 'uuid';
import { Errors } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { fingerprint } from '../idempotency/idempotency-key.ts';
import type { IdempotentRequests } from '../idempotency/idempotent-requests.ts';
import type { DocumentCache } from './document-cache.ts';
import { sha256Hex, type DocumentStore, type StoredDocument } from './document-store.ts';
import type { DocumentMetadata } from './schemas.ts';

export type NewDocument = { content: Buffer | undefined; contentType: string | undefined };

export type CreateAnswer = { statusCode: 200 | 201; metadata: DocumentMetadata; replayed: boolean };

export type ReadAnswer = { document: StoredDocument; cacheStatus: 'hit' | 'fwd=miss' };

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
// type/subtype[; parameters], as RFC 9110 allows, kept to a sane length.
const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]{1,127}\/[A-Za-z0-9!#$&^_.+-]{1,127}(\s*;[\x20-\x7e]*)?$/;

export type DocumentServiceOptions = {
  store: DocumentStore;
  cache: DocumentCache;
  requests: IdempotentRequests;
  metrics: Metrics;
  maxBytes: number;
  now?: () => Date;
};

/**
 * The document use cases: create (idempotent), read through the cache, delete
 * with a tombstone that beats every cache.
 */
export class DocumentService {
  private readonly options: DocumentServiceOptions;
  private readonly now: () => Date;
  /** Concurrent misses of one document in this process share one store read. */
  private readonly pendingReads = new Map<string, Promise<StoredDocument | undefined>>();

  constructor(options: DocumentServiceOptions) {
    this.options = options;
    this.now = options.now ?? (() => new Date());
    this.memoryHits = options.metrics.cacheLookups.labels({ layer: 'memory', result: 'hit' });
  }

  private prepare(id: string, input: NewDocument): { metadata: DocumentMetadata; content: Buffer } {
    const content = input.content;
    if (!content || content.length === 0) throw new Errors.EmptyDocument();
    if (content.length > this.options.maxBytes) throw new Errors.PayloadTooLarge(this.options.maxBytes);
    const contentType = input.contentType?.trim() || DEFAULT_CONTENT_TYPE;
    if (!MEDIA_TYPE.test(contentType)) throw new Errors.UnsupportedMediaType(JSON.stringify(contentType.slice(0, 64)));
    return {
      metadata: {
        id,
        status: 'ACTIVE',
        contentType,
        size: content.length,
        checksum: sha256Hex(content),
        createdAt: this.now().toISOString(),
      },
      content,
    };
  }

  /** PUT: 201 new, 200 identical retry, 409 when the id holds other content or was deleted. */
  async put(tenant: string, id: string, input: NewDocument): Promise<CreateAnswer> {
    const { metadata, content } = this.prepare(id, input);
    const result = await this.options.store.create(tenant, metadata, content);
    switch (result.outcome) {
      case 'created':
        return { statusCode: 201, metadata: result.metadata, replayed: false };
      case 'identical':
        return { statusCode: 200, metadata: result.metadata, replayed: false };
      case 'deleted':
        throw new Errors.DocumentDeleted(id);
      case 'conflict':
        throw new Errors.DocumentExists(id);
    }
  }

  /** POST: a new UUIDv7 document; with a key, exactly one document per key. */
  async post(tenant: string, input: NewDocument, idempotencyKey: string | undefined): Promise<CreateAnswer> {
    const prepared = this.prepare(uuidv7(), input);
    if (idempotencyKey === undefined) return this.insert(tenant, prepared);
    const answer = await this.options.requests.run(
      'POST /documents',
      {
        tenant,
        key: idempotencyKey,
        fingerprint: fingerprint(['POST /documents', prepared.metadata.contentType, prepared.metadata.checksum]),
        resourceId: prepared.metadata.id,
      },
      async (id) => {
        const created = await this.insert(tenant, { metadata: { ...prepared.metadata, id }, content: prepared.content });
        return { statusCode: created.statusCode, body: created.metadata };
      },
    );
    return { statusCode: answer.statusCode as 201, metadata: answer.body, replayed: answer.replayed };
  }

  private async insert(tenant: string, prepared: { metadata: DocumentMetadata; content: Buffer }): Promise<CreateAnswer> {
    const result = await this.options.store.create(tenant, prepared.metadata, prepared.content);
    // For POST the id is ours: an identical item is our own earlier attempt.
    if (result.outcome === 'created' || result.outcome === 'identical') {
      return { statusCode: 201, metadata: result.metadata, replayed: false };
    }
    throw new Error(`server-generated id ${prepared.metadata.id} collided (${result.outcome})`);
  }

  private readonly lookupCounters = new Map<string, { inc(): void }>();
  private readonly memoryHits: { inc(): void };

  /** Counter children by label, so the hot path does not hash labels per request. */
  private countLookup(layer: string, result: string) {
    const key = `${layer}:${result}`;
    let counter = this.lookupCounters.get(key);
    if (!counter) {
      counter = this.options.metrics.cacheLookups.labels({ layer, result });
      this.lookupCounters.set(key, counter);
    }
    counter.inc();
  }

  /** A hit in process memory, answered synchronously; undefined sends the caller to read(). */
  readHot(tenant: string, id: string): StoredDocument | undefined {
    const document = this.options.cache.fromMemory(tenant, id);
    if (document) this.memoryHits.inc();
    return document;
  }

  async read(tenant: string, id: string): Promise<ReadAnswer> {
    const cached = await this.options.cache.lookup(tenant, id);
    this.countLookup(cached.result === 'hit' ? cached.layer : 'redis', cached.result);
    if (cached.result === 'hit') return { document: cached.document, cacheStatus: 'hit' };
    if (cached.result === 'tombstone') throw new Errors.DocumentNotFound(id);

    const key = `${tenant}#${id}`;
    let pending = this.pendingReads.get(key);
    if (!pending) {
      pending = this.readThrough(tenant, id, cached.result === 'miss');
      this.pendingReads.set(key, pending);
      pending.finally(() => this.pendingReads.delete(key)).catch(() => {});
    }
    const document = await pending;
    if (!document) throw new Errors.DocumentNotFound(id);
    return { document, cacheStatus: 'fwd=miss' };
  }

  private async readThrough(tenant: string, id: string, fill: boolean): Promise<StoredDocument | undefined> {
    const found = await this.options.store.read(tenant, id);
    if (found.state === 'active') {
      if (fill) await this.options.cache.fill(tenant, id, found.document);
      return found.document;
    }
    if (found.state === 'deleted' && fill) await this.options.cache.fillTombstone(tenant, id);
    return undefined;
  }

  async metadata(tenant: string, id: string): Promise<DocumentMetadata> {
    const cached = await this.options.cache.lookup(tenant, id);
    if (cached.result === 'hit') return cached.document.metadata;
    if (cached.result === 'tombstone') throw new Errors.DocumentNotFound(id);
    const metadata = await this.options.store.metadata(tenant, id);
    if (!metadata || metadata === 'deleted') throw new Errors.DocumentNotFound(id);
    return metadata;
  }

  /**
   * 204 only once the tombstone is in the store AND in Redis: if Redis cannot
   * take it, a stale cached copy could outlive the delete, so the client gets
   * a 503 and its retry (deletes are idempotent) finishes the job.
   */
  async delete(tenant: string, id: string): Promise<void> {
    const result = await this.options.store.delete(tenant, id);
    if (result === 'absent') throw new Errors.DocumentNotFound(id);
    if (!(await this.options.cache.tombstone(tenant, id))) throw new Errors.ServiceUnavailable();
  }
}
