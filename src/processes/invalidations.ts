import { createAwsClients } from '../adapters/aws.ts';
import { RedisCircuit, createRedis } from '../adapters/redis.ts';
import { readRedisPassword } from '../adapters/secrets.ts';
import { loadConfig } from '../config.ts';
import { DocumentCache } from '../documents/document-cache.ts';
import { InvalidationConsumer } from '../documents/invalidation-consumer.ts';
import { MemoryCache } from '../documents/memory-cache.ts';
import { runEntryPoint } from './shutdown.ts';
import { runBackgroundLoop } from './ops-server.ts';

// The invalidation worker of a multi-region deployment (one or more per
// region): long-polls DOCUMENT_INVALIDATIONS_QUEUE, subscribed to the other
// regions' document-events topics, and makes each delete made there final
// here (Redis tombstone, every API instance's memory). Serves /health/live,
// /health/ready and /metrics on METRICS_PORT; on SIGTERM/SIGINT it ends its
// long poll, finishes the messages in hand, closes its clients and exits 0.
await runEntryPoint(async () => {
  const config = loadConfig();
  // The AUTH token, read once at start with this worker's own role, as the API does; a secret that cannot be read stops the start.
  const password = await readRedisPassword(config);
  const aws = createAwsClients(config);
  const redis = createRedis(config, 'invalidations', undefined, password);
  const subscriber = createRedis(config, 'invalidations-acks', undefined, password);
  // In the background, as in the API: the worker starts without Redis and uses it once it answers.
  for (const connection of [redis, subscriber]) connection.connect().catch(() => {});
  await runBackgroundLoop(config, 'invalidations', (ops) => {
    const cache = new DocumentCache({
      circuit: new RedisCircuit(redis),
      ttlSeconds: config.DOCUMENT_CACHE_TTL_SECONDS,
      // Holds nothing: the worker serves no reads, it only announces deletes and waits for the instances' acknowledgements.
      memory: { cache: new MemoryCache(0), subscriber, leaseMs: config.MEMORY_CACHE_LEASE_MS },
    });
    const consumer = new InvalidationConsumer({
      sqs: aws.sqs,
      tombstone: (tenant, id, remote) => cache.tombstone(tenant, id, remote),
      region: config.AWS_REGION,
      queueName: config.DOCUMENT_INVALIDATIONS_QUEUE,
      waitTimeSeconds: config.CONSUMER_WAIT_SECONDS,
      visibilityTimeoutSeconds: config.CONSUMER_VISIBILITY_TIMEOUT_SECONDS,
      log: ops.log,
      registry: ops.registry,
    });
    return {
      loop: consumer.loop,
      close: () => {
        aws.destroy();
        redis.disconnect();
        subscriber.disconnect();
      },
      describe: { queue: config.DOCUMENT_INVALIDATIONS_QUEUE, region: config.AWS_REGION },
    };
  });
});
