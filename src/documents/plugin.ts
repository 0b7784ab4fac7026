import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { windowCounter } from '../http/window-counter.ts';
import { arnInRegion, Regions, type RegionalClients } from '../adapters/regions.ts';
import { DocumentCache, type DocumentCacheOptions } from './document-cache.ts';
import { DocumentEventPublisher, DocumentEvents, type DocumentEvent } from './document-events.ts';
import { DocumentService } from './document-service.ts';
import { contentKeys } from './encryption.ts';
import { governanceRoutes } from './governance-routes.ts';
import { documentLinkSigner } from './links.ts';
import { retentionDefaults } from './retention.ts';
import { registerOutboxGauges } from '../outbox/outbox-metrics.ts';
import { MemoryCache } from './memory-cache.ts';
import { ObjectLocks } from './object-lock.ts';
import { multiRegionDocuments } from './multi-region.ts';
import { documentRoutes } from './routes.ts';
import { DocumentMetadata } from './schemas.ts';
import { documentStores } from './stores.ts';
import { UploadSlots } from './upload-slots.ts';
import { uploadHome, type UploadHome } from './uploads/upload-home.ts';
import { uploadPk } from './uploads/upload-records.ts';
import { ResumableUploads, type UploadHomes } from './uploads/resumable-uploads.ts';
import { uploadRoutes } from './uploads/routes.ts';
import { HashThread } from './uploads/upload-hash.ts';

export type DocumentsOptions = {
  config: Config;
  /** A test seam: a cache of the test's own (a slowed fill, for the delete race). */
  cache?: (options: DocumentCacheOptions) => DocumentCache;
  /** The app's clock (AppOverrides.now), the document service's: tests move past a link's expiry bucket instead of sleeping. */
  now?: (() => number) | undefined;
};

/**
 * Where each resumable upload lives: the region that created it (its id is
 * chosen so that the region is its home), whose table holds its item and
 * whose bucket its bytes, whichever region continues it.
 */
function uploadHomes(regions: Regions, clients: RegionalClients): UploadHomes {
  const homes = new Map<string, UploadHome>(regions.names.map((region) => [region, uploadHome(regions.configOf(region), clients.of(region))]));
  const local = homes.get(regions.local)!;
  return {
    local,
    of: (tenant, uploadId) => homes.get(regions.homeOf(uploadPk(tenant, uploadId))) ?? local,
    newUploadId(tenant) {
      for (;;) {
        const id = randomUUID();
        if (regions.homeOf(uploadPk(tenant, id)) === regions.local) return id;
      }
    },
  };
}

/**
 * The topic each document event goes to: its home region's, as the home's
 * relay would publish it (the same topic name in every region), so that an
 * event reaches one region's topic whichever region took the request.
 */
function eventPublishers(config: Config, regions: Regions, clients: RegionalClients): (event: DocumentEvent) => DocumentEventPublisher {
  const publishers = new Map(
    regions.names.map((region) => {
      const topicArn = region === regions.local ? config.DOCUMENT_CHANGES_TOPIC_ARN : arnInRegion(config.DOCUMENT_CHANGES_TOPIC_ARN, region);
      return [region, new DocumentEventPublisher({ sns: clients.of(region).sns, topicArn })];
    }),
  );
  const local = publishers.get(regions.local)!;
  return (event) => publishers.get(regions.homeOf(`${event.tenant}#${event.subject}`)) ?? local;
}

/** The documents domain: metadata and content stores, two-layer cache, service, resumable uploads and routes. */
export const documentsPlugin = fp(
  async (app, { config, cache, now }: DocumentsOptions) => {
    const { aws, redis, idempotentRequests: requests } = app;
    // Of several regions, the multi-region document path.
    const { regions, clients } = app.regional;
    const { onRemoteDelete, ...multi } = regions.multi
      ? multiRegionDocuments(config, regions, clients, app.metrics.registry)
      : { onRemoteDelete: undefined };
    const local = documentStores(config, aws);
    const stores = { ...local, ...multi };
    registerOutboxGauges(app.metrics.registry, 'documents', local.store.outbox);
    // Without its table and bucket the service cannot serve (unhealthy); without Redis it serves uncached (degraded).
    app.health.add('storage', (abortSignal) =>
      Promise.all([
        aws.dynamo.getItem({ TableName: config.DOCUMENTS_TABLE, Key: { pk: '__health__' } }, { abortSignal }),
        aws.s3.send(new HeadBucketCommand({ Bucket: config.DOCUMENTS_BUCKET }), { abortSignal }),
      ]),
    );
    app.health.add('cache', () => redis.client.ping());
    const events = config.DOCUMENT_EVENTS === 'off' ? undefined : new DocumentEvents({
      publisherOf: eventPublishers(config, regions, clients),
      published: (key, now) => stores.store.eventPublished(key, now),
      publishTimeoutMs: config.ORDER_PUBLISH_TIMEOUT_MS,
      log: app.log,
    });
    const keys = contentKeys(config);
    const slots = new UploadSlots({
      max: config.MAX_CONCURRENT_UPLOADS,
      perTenant: config.MAX_CONCURRENT_UPLOADS_PER_TENANT,
      gauge: app.metrics.uploadsInFlight,
    });
    const objectLocks =
      config.S3_OBJECT_LOCK_MODE === 'off'
        ? undefined
        : new ObjectLocks({
            mode: config.S3_OBJECT_LOCK_MODE,
            // Of several regions, every region's bucket: a copy replicated already is locked too.
            buckets: regions.names.map((region) => ({ s3: clients.of(region).s3, bucket: regions.configOf(region).DOCUMENTS_BUCKET })),
          });
    await objectLocks?.check();
    const service = new DocumentService({
      ...stores,
      ...(now ? { now: () => new Date(now()) } : {}),
      cache: (cache ?? ((options) => new DocumentCache(options)))({
        ...(onRemoteDelete ? { onRemoteDelete } : {}),
        circuit: redis.circuit,
        ttlSeconds: config.DOCUMENT_CACHE_TTL_SECONDS,
        ...(redis.subscriber
          ? {
              memory: {
                cache: new MemoryCache(config.MEMORY_CACHE_MAX_BYTES, { ttlMs: config.DOCUMENT_CACHE_TTL_SECONDS * 1000 }),
                subscriber: redis.subscriber,
                leaseMs: config.MEMORY_CACHE_LEASE_MS,
              },
            }
          : {}),
      }),
      requests,
      metrics: app.metrics,
      log: app.log,
      slots,
      retentionDays: retentionDefaults(config.RETENTION_DEFAULTS),
      ...(events ? { events } : {}),
      ...(objectLocks ? { objectLocks } : {}),
      links: { signer: await documentLinkSigner(config, aws.s3), ttlSeconds: config.DOCUMENT_LINK_TTL_SECONDS },
      limits: {
        maxBytes: config.MAX_DOCUMENT_BYTES,
        // Content in the item is under the table's key, not the tenant's: a tenant with its own key has all of it in S3.
        inlineMaxBytes: (tenant) => (keys.hasOwnKey(tenant) ? 0 : config.INLINE_CONTENT_MAX_BYTES),
        cacheMaxBytes: config.DOCUMENT_CACHE_MAX_BYTES,
      },
    });
    const count = windowCounter(redis.client, redis.circuit);
    const hashing = new HashThread();
    app.addHook('onClose', async () => hashing.close());
    // Events queued for a shared PublishBatch go out before the clients close (the relay would publish them anyway).
    if (events) app.addHook('onClose', async () => events.close());
    const uploads = new ResumableUploads({
      hashing,
      homes: uploadHomes(regions, clients),
      documents: service,
      requests,
      slots,
      buffers: stores.content.partBuffers,
      partsInFlight: config.S3_PARTS_IN_FLIGHT,
      async countCreation(tenant) {
        const counted = await count(`upload-creations:${tenant}`, 60_000);
        return counted && counted.current > config.UPLOAD_CREATIONS_PER_MINUTE ? Math.max(1, Math.ceil(counted.ttl / 1000)) : undefined;
      },
      maxBytes: config.MAX_DOCUMENT_BYTES,
      expirySeconds: config.UPLOAD_EXPIRY_SECONDS,
      log: app.log,
    });
    // A drain: appends in progress store what arrived and end, so that their clients resume on another instance.
    app.addHook('preClose', async () => uploads.stopAll());
    app.addSchema(DocumentMetadata);
    const uploadMinBytesPerSecond = config.DOCUMENT_UPLOAD_MIN_BYTES_PER_SECOND;
    await app.register(documentRoutes, {
      service,
      uploads,
      maxBytes: config.MAX_DOCUMENT_BYTES,
      uploadMinBytesPerSecond,
      redirectMinBytes: config.DOCUMENT_REDIRECT_MIN_BYTES,
    });
    await app.register(uploadRoutes, { uploads, uploadMinBytesPerSecond });
    await app.register(governanceRoutes, { service, holdChanges: app.metrics.legalHoldChanges });
  },
  { name: 'documents', fastify: '5.x', dependencies: ['aws', 'redis', 'regions', 'idempotency', 'metrics', 'health'] },
);
