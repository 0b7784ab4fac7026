import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import type { IdempotentRequests } from '../idempotency/idempotent-requests.ts';
import { DocumentCache, type DocumentCacheOptions } from './document-cache.ts';
import { DocumentService } from './document-service.ts';
import { DocumentStore } from './document-store.ts';
import { MemoryCache } from './memory-cache.ts';
import { documentRoutes } from './routes.ts';
import { DocumentMetadata } from './schemas.ts';

export type DocumentsOptions = {
  config: Config;
  requests: IdempotentRequests;
  /** A test seam: a cache of the test's own (a slowed fill, for the delete race). */
  cache?: (options: DocumentCacheOptions) => DocumentCache;
};

/** The documents domain: store, two-layer cache, service and routes. */
export const documentsPlugin = fp(
  async (app, { config, requests, cache }: DocumentsOptions) => {
    const { aws, redis } = app;
    const service = new DocumentService({
      store: new DocumentStore({
        dynamo: aws.dynamo,
        s3: aws.s3,
        table: config.DOCUMENTS_TABLE,
        bucket: config.DOCUMENTS_BUCKET,
        inlineMaxBytes: config.INLINE_CONTENT_MAX_BYTES,
        tombstoneSeconds: config.DOCUMENT_TOMBSTONE_SECONDS,
        onContentCleanupFailure: (err, s3Key) => app.log.warn({ err, s3Key }, 'content of a deleted document not removed'),
      }),
      cache: (cache ?? ((options) => new DocumentCache(options)))({
        circuit: redis.circuit,
        ttlSeconds: config.DOCUMENT_CACHE_TTL_SECONDS,
        ...(redis.subscriber
          ? { memory: { cache: new MemoryCache(config.MEMORY_CACHE_MAX_BYTES), subscriber: redis.subscriber } }
          : {}),
      }),
      requests,
      metrics: app.metrics,
      maxBytes: config.MAX_DOCUMENT_BYTES,
    });
    app.addSchema(DocumentMetadata);
    await app.register(documentRoutes, { service, maxBytes: config.MAX_DOCUMENT_BYTES });
  },
  { name: 'documents', fastify: '5.x', dependencies: ['aws', 'redis', 'metrics'] },
);
