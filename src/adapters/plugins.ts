import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import { createAwsClients, type AwsClients } from './aws.ts';
import { redisConnections, RedisCircuit, registerCircuitGauge } from './redis.ts';
import { Regions, type RegionalClients } from './regions.ts';

declare module 'fastify' {
  interface FastifyInstance {
    aws: AwsClients;
    redis: { client: Redis; circuit: RedisCircuit; subscriber: Redis | undefined };
    regional: { regions: Regions; clients: RegionalClients };
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
 * other instances (redisConnections).
 */
export const redisPlugin = fp(
  async (app, { config, client }: { config: Config; client?: Redis }) => {
    const connections = await redisConnections(config, app.log);
    const redis = client ?? connections.open('api');
    const subscriber = config.MEMORY_CACHE_MAX_BYTES > 0 ? connections.open('api-invalidations') : undefined;
    const circuit = new RedisCircuit(redis, { log: app.log });
    registerCircuitGauge(app.metrics.registry, circuit);
    app.decorate('redis', { client: redis, circuit, subscriber });
    app.addHook('onClose', async () => connections.close());
  },
  { name: 'redis', fastify: '5.x', dependencies: ['metrics'] },
);

/**
 * The regions of DOCUMENT_REGIONS and a client set for each (this region's
 * is the app's own); orders stay in the primary. One region unless configured.
 */
export const regionsPlugin = fp(
  async (app, { config }: { config: Config }) => {
    const regions = new Regions(config);
    const clients = regions.connect(app.aws);
    app.decorate('regional', { regions, clients });
    app.addHook('onClose', async () => clients.destroy());
  },
  { name: 'regions', fastify: '5.x', dependencies: ['aws'] },
);
