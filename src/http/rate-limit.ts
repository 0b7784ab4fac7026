import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { onSendHookHandler } from 'fastify';
import type { Redis } from 'ioredis';
import type { RedisCircuit } from '../adapters/redis.ts';
import { Errors } from '../errors.ts';
import { BatchedWindowCounter } from './batched-window-counter.ts';
import { windowCounter, type WindowCount } from './window-counter.ts';

type Callback = (error: Error | null, result?: WindowCount) => void;

/** The window of RATE_LIMIT_PER_MINUTE. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

/**
 * A fixed-window count per tenant, shared by every instance through Redis
 * in batches (BatchedWindowCounter), behind the Redis circuit: with Redis
 * sick the limit is not enforced (fail open) and costs nothing, rather than
 * adding a timeout to every request.
 */
function batchedStore(counter: BatchedWindowCounter) {
  return class TenantRateLimitStore {
    incr(key: string, callback: Callback) {
      const counted = counter.add(`ratelimit:${key}`);
      if (!(counted instanceof Promise)) return callback(null, counted);
      void counted.then((result) => {
        if (result) callback(null, result);
        else callback(new Error('rate limit store unavailable'));
      });
    }
    child() {
      return this;
    }
  };
}

/**
 * The IETF fields (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy`
 * and `RateLimit`, structured fields) in place of the X-RateLimit-* trio
 * @fastify/rate-limit writes, from the same counter: the tenant's quota per
 * 60 s window, what is left of it and the seconds until the window resets.
 * An answer the limit did not count (public routes, Redis down) has neither.
 */
export function rateLimitFields(perMinute: number): onSendHookHandler {
  const policy = `"tenant";q=${perMinute};w=60`;
  return (_request, reply, payload, done) => {
    const remaining = reply.getHeader('x-ratelimit-remaining');
    const reset = reply.getHeader('x-ratelimit-reset');
    if (remaining !== undefined && reset !== undefined) {
      reply.header('ratelimit-policy', policy).header('ratelimit', `"tenant";r=${remaining};t=${reset}`);
      reply.removeHeader('x-ratelimit-limit').removeHeader('x-ratelimit-remaining').removeHeader('x-ratelimit-reset');
    }
    done(null, payload);
  };
}

export const rateLimitPlugin = fp(
  async (app, options: { perMinute: number; redis: Redis; circuit: RedisCircuit }) => {
    const counter = new BatchedWindowCounter({ count: windowCounter(options.redis, options.circuit), windowMs: RATE_LIMIT_WINDOW_MS, limit: options.perMinute });
    // Counts made here and not sent yet go before the Redis client closes.
    app.addHook('preClose', () => counter.flush());
    await app.register(rateLimit, {
      max: options.perMinute,
      timeWindow: RATE_LIMIT_WINDOW_MS,
      store: batchedStore(counter),
      skipOnError: true,
      keyGenerator: (request) => request.tenant,
      // Probes, metrics and the API description are never limited.
      allowList: (request) => request.routeOptions.config.public === true,
      addHeadersOnExceeding: { 'x-ratelimit-limit': true, 'x-ratelimit-remaining': true, 'x-ratelimit-reset': true },
      errorResponseBuilder: (_request, context) =>
        Object.assign(new Errors.RateLimited(), { retryAfter: Math.max(1, Math.ceil(context.ttl / 1000)) }),
    });
    app.addHook('onSend', rateLimitFields(options.perMinute));
  },
  { name: 'rate-limit', fastify: '5.x', dependencies: ['auth'] },
);
