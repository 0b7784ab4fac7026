import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import { createAwsClients, type AwsClients } from './aws.ts';
import { createRedis, RedisCircuit, registerCircuitGauge } from './redis.ts';
import { readRedisPassword } from './secrets.ts';

declare module 'fastify' {
  interface FastifyInstance {
    aws: AwsClients;
    redis: { client: Redis; circuit: RedisCircuit; subscriber: Redis | undefined };
  }
}

/** The AWS clients, closed with the app unless a test passed its own. */
export const awsPlugin = fp(
  async (app, { config, clients }: { config: Config; clients?: AwsClients }) => {
    const aws = clients ?? createAwsClients(config);
    app.decorate('aws', aws);
    if (!clients) app.addHook('onClose', async () => aws.destroy());
  },
  { name: 'aws', fastify: '5.x' },
);

/**
 * Redis: the command connection behind its circuit, and (when the in-process
 * document cache is on) a subscriber connection that hears deletes made on
 * other instances. Both connect in the background: the app starts without
 * Redis and uses it once it answers.
 */
export const redisPlugin = fp(
  async (app, { config, client }: { config: Config; client?: Redis }) => {
    // The AUTH token, read once at start with the process's own role; a secret that cannot be read stops the start.
    const password = await readRedisPassword(config);
    const redis = client ?? createRedis(config, 'api', app.log, password);
    if (!client) redis.connect().catch(() => {});
    const subscriber =
      config.MEMORY_CACHE_MAX_BYTES > 0 ? createRedis(config, 'api-invalidations', app.log, password) : undefined;
    subscriber?.connect().catch(() => {});
    const circuit = new RedisCircuit(redis, { log: app.log });
    registerCircuitGauge(app.metrics.registry, circuit);
    app.decorate('redis', { client: redis, circuit, subscriber });
    app.addHook('onClose', async () => {
      if (!client) redis.disconnect();
      subscriber?.disconnect();
    });
  },
  { name: 'redis', fastify: '5.x', dependencies: ['metrics'] },
);
