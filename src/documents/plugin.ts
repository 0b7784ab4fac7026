import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import type { IdempotentRequests } from '../idempotency/idempotent-requests.ts';
import type { RegionalClients, Regions } from '../regions.ts';
import { DocumentCache, type DocumentCacheOptions } from './document-cache.ts';
import { DocumentService } from './document-service.ts';
import { MemoryCache } from './memory-cache.ts';
import { multiRegionDocuments } from './multi-region.ts';
import { documentRoutes } from './routes.ts';
import { DocumentMetadata } from './schemas.ts';
import { documentStores } from './stores.ts';

export type DocumentsOptions = {
  config: Config;
  requests: IdempotentRequests;
  /** A test seam: a cache of the test's own (a slowed fill, for the delete race). */
  cache?: (options: DocumentCacheOptions) => DocumentCache;
  /** The regions and every region's clients; of several regions, the multi-region document path. */
  regional?: { regions: Regions; clients: RegionalClients };
};

/** The documents domain: metadata and content stores, two-layer cache, service and routes. */
export const documentsPlugin = fp(
  async (app, { config, requests, cache, regional }: DocumentsOptions) => {
    const { aws, redis } = app;
    const { onRemoteDelete, ...multi } = regional?.regions.multi
      ? multiRegionDocuments(config, regional.regions, regional.clients, app.metrics.registry)
      : { onRemoteDelete: undefined };
    const service = new DocumentService({
      ...documentStores(config, aws),
      ...multi,
      cache: (cache ?? ((options) => new DocumentCache(options)))({
        ...(onRemoteDelete ? { onRemoteDelete } : {}),
        circuit: redis.circuit,
        ttlSeconds: config.DOCUMENT_CACHE_TTL_SECONDS,
        ...(redis.subscriber
          ? {
              memory: {
                cache: new MemoryCache(config.MEMORY_CACHE_MAX_BYTES),
                subscriber: redis.subscriber,
                leaseMs: config.MEMORY_CACHE_LEASE_MS,
              },
            }
          : {}),
      }),
      requests,
      metrics: app.metrics,
      log: app.log,
      limits: {
        maxBytes: config.MAX_DOCUMENT_BYTES,
        inlineMaxBytes: config.INLINE_CONTENT_MAX_BYTES,
        cacheMaxBytes: config.DOCUMENT_CACHE_MAX_BYTES,
        maxConcurrentUploads: config.MAX_CONCURRENT_UPLOADS,
      },
    });
    app.addSchema(DocumentMetadata);
    await app.register(documentRoutes, {
      service,
      maxBytes: config.MAX_DOCUMENT_BYTES,
      uploadMinBytesPerSecond: config.DOCUMENT_UPLOAD_MIN_BYTES_PER_SECOND,
    });
  },
  { name: 'documents', fastify: '5.x', dependencies: ['aws', 'redis', 'metrics'] },
);
