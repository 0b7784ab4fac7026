import Fastify, { LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import fp from 'fastify-plugin';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import { trustProxyOf, type Config } from './config.ts';
import type { AwsClients } from './adapters/aws.ts';
import { awsPlugin, redisPlugin, regionsPlugin } from './adapters/plugins.ts';
import { conventionServerOptions, conventionsPlugin } from './http/conventions.ts';
import { metricsPlugin } from './http/metrics.ts';
import type { Metrics } from './metrics.ts';
import { openapiPlugin } from './http/openapi.ts';
import { loadSheddingPlugin } from './http/load-shedding.ts';
import { authPlugin } from './http/auth.ts';
import { AuthFailureLimiter } from './http/auth-failures.ts';
import { windowCounter } from './http/window-counter.ts';
import { rateLimitPlugin } from './http/rate-limit.ts';
import { lazyRequestLogger } from './http/request-logger.ts';
import { headTimeoutOf, requestDeadlinePlugin } from './http/request-deadline.ts';
import { httpTracingPlugin } from './telemetry/http-spans.ts';
import { loggerOptions } from './telemetry/logger.ts';
import { healthPlugin } from './health/routes.ts';
import type { DocumentCache, DocumentCacheOptions } from './documents/document-cache.ts';
import { documentsPlugin } from './documents/plugin.ts';
import { idempotencyPlugin } from './idempotency/plugin.ts';
import type { OrderIntakeOptions } from './orders/order-intake.ts';
import { ordersPlugin } from './orders/plugin.ts';

/** What tests may swap for their own: clients pointing elsewhere, a slowed cache, a clock. */
export type AppOverrides = {
  aws?: AwsClients;
  redis?: Redis;
  metrics?: Metrics;
  documentCache?: (options: DocumentCacheOptions) => DocumentCache;
  /** Test seams of the order intake (an injected crash between write and publish). */
  orderIntake?: Pick<OrderIntakeOptions, 'afterWrite'>;
  /**
   * The clock of the order dedup window, Idempotency-Key records, the
   * health cache and the document service (links' expiry buckets), so that tests move past a window instead of sleeping through it.
   */
  now?: () => number;
};

export type AppOptions = { config: Config; overrides?: AppOverrides };

export function serverOptions(config: Config): FastifyHttpOptions<Server> {
  return {
    ...conventionServerOptions,
    logger: loggerOptions(config),
    childLoggerFactory: lazyRequestLogger,
    // request.ip, the client address the failed-authentication limit counts by.
    trustProxy: trustProxyOf(config.TRUST_PROXY),
    // One log line per request (onResponse below) instead of Fastify's two.
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    // Bodies are small JSON except documents, whose route raises the limit.
    bodyLimit: 16 * 1024,
    // Idle keep-alive connections outlive the load balancer's 60 s idle timeout, so it never
    // reuses one the service is closing (a 502).
    keepAliveTimeout: 65_000,
    // Slowloris: the head of a request within a third of REQUEST_TIMEOUT_MS, checked every
    // second; the body within the rest, by requestDeadlinePlugin. Node's own requestTimeout
    // would also end a large upload that is on its way at a good rate, so it is off.
    requestTimeout: 0,
    http: {
      ...conventionServerOptions.http,
      headersTimeout: headTimeoutOf(config.REQUEST_TIMEOUT_MS),
      connectionsCheckingInterval: 1000,
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
  };
}

/**
 * The whole service as one plugin: adapters first, then plumbing, then the
 * domains. It never listens; processes/api.ts does, and tests inject.
 */
export const appPlugin = fp<AppOptions>(
  async (app, { config, overrides = {} }) => {
    // Plumbing every request goes through, in this order; the request span first, so it covers all.
    await app.register(httpTracingPlugin);
    await app.register(conventionsPlugin);
    await app.register(requestDeadlinePlugin, {
      bodyTimeoutMs: config.REQUEST_TIMEOUT_MS - headTimeoutOf(config.REQUEST_TIMEOUT_MS),
    });
    // Before any route, so that it documents them all (/metrics included).
    await app.register(openapiPlugin, { maxDocumentBytes: config.MAX_DOCUMENT_BYTES });
    await app.register(metricsPlugin, { metrics: overrides.metrics });
    await app.register(loadSheddingPlugin, {
      maxEventLoopDelayMs: config.LOAD_SHED_EVENT_LOOP_DELAY_MS,
      maxEventLoopUtilization: config.LOAD_SHED_EVENT_LOOP_UTILIZATION,
      maxInFlight: config.MAX_IN_FLIGHT_REQUESTS,
    });

    // Adapters.
    await app.register(awsPlugin, { config, clients: overrides.aws });
    await app.register(redisPlugin, { config, client: overrides.redis });

    const count = windowCounter(app.redis.client, app.redis.circuit);
    await app.register(authPlugin, {
      mode: config.AUTH_MODE,
      apiKeys: config.API_KEYS,
      failures: new AuthFailureLimiter({ perMinute: config.AUTH_FAILURES_PER_MINUTE, count }),
    });
    // Without authentication every client is one tenant: a shared limit would throttle them all together.
    if (config.AUTH_MODE === 'api-key') {
      await app.register(rateLimitPlugin, { perMinute: config.RATE_LIMIT_PER_MINUTE, redis: app.redis.client, circuit: app.redis.circuit });
    }

    await app.register(regionsPlugin, { config });
    await app.register(healthPlugin, { now: overrides.now });

    // Domains.
    await app.register(idempotencyPlugin, { config, now: overrides.now });
    await app.register(documentsPlugin, { config, cache: overrides.documentCache, now: overrides.now });
    await app.register(ordersPlugin, { config, intake: overrides.orderIntake, now: overrides.now });
  },
  { name: 'app', fastify: '5.x' },
);

/** The app, logging to `logger` (the process's) when given. */
export async function buildApp(options: AppOptions & { logger?: FastifyBaseLogger }): Promise<FastifyInstance> {
  const { logger, ...rest } = serverOptions(options.config);
  const app = Fastify(options.logger ? { ...rest, loggerInstance: options.logger } : { ...rest, logger }).withTypeProvider<TypeBoxTypeProvider>();
  await app.register(appPlugin, options);
  return app;
}
