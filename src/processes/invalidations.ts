import { RedisCircuit, redisConnections } from '../adapters/redis.ts';
import { DocumentCache } from '../documents/document-cache.ts';
import { InvalidationConsumer } from '../documents/invalidation-consumer.ts';
import { MemoryCache } from '../documents/memory-cache.ts';
import { background, runProcess } from './runtime.ts';

// The invalidation consumer of a multi-region deployment (one or more per
// region): long-polls DOCUMENT_INVALIDATIONS_QUEUE, subscribed to the other
// regions' document-events topics, and makes each delete made there final
// here (Redis tombstone, every API instance's memory). Serves /health/live,
// /health/ready and /metrics on METRICS_PORT; on SIGTERM/SIGINT it ends its
// long poll, finishes the messages in hand, closes its clients and exits 0.
await runProcess({
  name: 'invalidations',
  serve: background(async ({ config, log, aws, onClose }, registry) => {
    const redis = await redisConnections(config, log);
    onClose(() => redis.close());
    const cache = new DocumentCache({
      circuit: new RedisCircuit(redis.open('invalidations'), { log }),
      ttlSeconds: config.DOCUMENT_CACHE_TTL_SECONDS,
      // Holds nothing: the process serves no reads, it only announces deletes and waits for the instances' acknowledgements.
      memory: { cache: new MemoryCache(0), subscriber: redis.open('invalidations-acks'), leaseMs: config.MEMORY_CACHE_LEASE_MS },
    });
    const consumer = new InvalidationConsumer({
      sqs: aws().sqs,
      tombstone: (tenant, id, remote) => cache.tombstone(tenant, id, remote),
      region: config.AWS_REGION,
      queueName: config.DOCUMENT_INVALIDATIONS_QUEUE,
      waitTimeSeconds: config.CONSUMER_WAIT_SECONDS,
      visibilityTimeoutSeconds: config.CONSUMER_VISIBILITY_TIMEOUT_SECONDS,
      log,
      registry,
    });
    return { loop: consumer, describe: { queue: config.DOCUMENT_INVALIDATIONS_QUEUE, region: config.AWS_REGION } };
  }),
});
