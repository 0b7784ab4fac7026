import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { HomedIdempotencyStore } from './homed-idempotency-store.ts';
import { IdempotencyStore } from './idempotency-store.ts';
import { IdempotentRequests } from './idempotent-requests.ts';

declare module 'fastify' {
  interface FastifyInstance {
    idempotentRequests: IdempotentRequests;
  }
}

/**
 * Idempotency-Key records, shared by the domains: one table, keys scoped by
 * tenant and route; with several regions, each key's record lives in its home region.
 */
export const idempotencyPlugin = fp(
  async (app, { config, now }: { config: Config; now?: () => number }) => {
    const { regions, clients } = app.regional;
    const records = (region: string) =>
      new IdempotencyStore({
        dynamo: clients.of(region).dynamo,
        table: config.IDEMPOTENCY_TABLE,
        ttlSeconds: config.IDEMPOTENCY_TTL_SECONDS,
        lockSeconds: config.IDEMPOTENCY_LOCK_SECONDS,
        now,
      });
    const store = regions.multi
      ? new HomedIdempotencyStore(regions, new Map(regions.names.map((region) => [region, records(region)])))
      : records(regions.local);
    app.decorate('idempotentRequests', new IdempotentRequests({ store, metrics: app.metrics }));
  },
  { name: 'idempotency', fastify: '5.x', dependencies: ['regions', 'metrics'] },
);
