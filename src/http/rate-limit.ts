import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import type { RedisCircuit } from '../adapters/redis.ts';
import { Errors } from '../errors.ts';
import { windowCounter, type WindowCount } from './window-counter.ts';

type Callback = (error: Error | null, result?: WindowCount) => void;

/**
 * A fixed-window counter per tenant in Redis, shared by every instance, that
 * goes through the Redis circuit: with Redis sick the limit is not enforced
 * (fail open) and costs nothing, rather than adding a timeout to every request.
 */
function circuitStore(redis: Redis, circuit: RedisCircuit) {
  const count = windowCounter(redis, circuit);
  return class TenantRateLimitStore {
    incr(key: string, callback: Callback, timeWindow: number) {
      count(`ratelimit:${key}`, timeWindow).then((counted) => {
        if (counted) callback(null, counted);
        else callback(new Error('rate limit store unavailable'));
      });
    }
    child() {
      return this;
    }
  };
}

export const rateLimitPlugin = fp(
  async (app, options: { perMinute: number; redis: Redis; circuit: RedisCircuit }) => {
    await app.register(rateLimit, {
      max: options.perMinute,
      timeWindow: 60_000,
      store: circuitStore(options.redis, options.circuit),
      skipOnError: true,
      keyGenerator: (request) => request.tenant,
      // Probes, metrics and the API description are never limited.
      allowList: (request) => request.routeOptions.config.public === true,
      addHeadersOnExceeding: { 'x-ratelimit-limit': true, 'x-ratelimit-remaining': true, 'x-ratelimit-reset': true },
      errorResponseBuilder: (_request, context) =>
        Object.assign(new Errors.RateLimited(), { retryAfter: Math.max(1, Math.ceil(context.ttl / 1000)) }),
    });
  },
  { name: 'rate-limit', fastify: '5.x', dependencies: ['auth'] },
);
