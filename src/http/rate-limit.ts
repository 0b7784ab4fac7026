import fp from 'fastify-plugin';
import type { FastifyReply, HookHandlerDoneFunction, onRequestHookHandler } from 'fastify';
import type { Redis } from 'ioredis';
import type { RedisCircuit } from '../adapters/redis.ts';
import { Errors } from '../errors.ts';
import { BatchedWindowCounter } from './batched-window-counter.ts';
import { windowCounter, type WindowCount } from './window-counter.ts';

/** The window of RATE_LIMIT_PER_MINUTE. */
export const RATE_LIMIT_WINDOW_MS = 60_000;

/**
 * The per-tenant request limit: a fixed one-minute window per tenant,
 * counted across instances through Redis in batches (BatchedWindowCounter),
 * behind the Redis circuit: with Redis sick the limit is not enforced (fail
 * open) and costs nothing, rather than adding a timeout to every request.
 *
 * Every counted answer carries the IETF fields
 * (draft-ietf-httpapi-ratelimit-headers, structured fields): the quota per
 * 60 s window (`RateLimit-Policy`), what is left of it and the seconds until
 * the window resets (`RateLimit`). An answer the limit did not count (public
 * routes, Redis down) has neither. Past the limit: 429 RATE_LIMITED with
 * Retry-After.
 *
 * One callback hook, answered without a promise when the count is made in
 * the instance: it replaced @fastify/rate-limit, whose async hook, header
 * trio (renamed here in an onSend hook) and store promise cost a hot read
 * more than the count itself (bench/README.md, "Authentication and the rate
 * limit"). Like the library's, it is the last `onRequest` hook of each
 * route that is not public, added as routes are declared: a request refused
 * before it (unrouted, too large, of a type the route does not take) is not
 * counted, and keeps its own answer when the tenant is over its limit.
 */
export const rateLimitPlugin = fp(
  async (app, options: { perMinute: number; redis: Redis; circuit: RedisCircuit }) => {
    const { perMinute } = options;
    const counter = new BatchedWindowCounter({ count: windowCounter(options.redis, options.circuit), windowMs: RATE_LIMIT_WINDOW_MS, limit: perMinute });
    // Counts made here and not sent yet go before the Redis client closes.
    app.addHook('preClose', () => counter.flush());
    const policy = `"tenant";q=${perMinute};w=${RATE_LIMIT_WINDOW_MS / 1000}`;

    const decide = (reply: FastifyReply, counted: WindowCount | undefined, done: HookHandlerDoneFunction) => {
      if (counted === undefined) return done();
      const reset = Math.ceil(counted.ttl / 1000);
      reply.header('ratelimit-policy', policy).header('ratelimit', `"tenant";r=${Math.max(0, perMinute - counted.current)};t=${reset}`);
      if (counted.current <= perMinute) return done();
      done(Object.assign(new Errors.RateLimited(), { retryAfter: Math.max(1, reset) }));
    };
    const limit: onRequestHookHandler = (request, reply, done) => {
      const counted = counter.add(`ratelimit:${request.tenant}`);
      if (counted instanceof Promise) void counted.then((result) => decide(reply, result, done));
      else decide(reply, counted, done);
    };
    app.addHook('onRoute', (route) => {
      // Probes, metrics and the API description are never limited.
      if (route.config?.public === true) return;
      const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
      route.onRequest = [...own, limit];
    });
  },
  { name: 'rate-limit', fastify: '5.x', dependencies: ['auth'] },
);
