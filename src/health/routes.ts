import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';
import { Type } from 'typebox';
import { HealthChecker } from './health-checker.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** Where each domain adds the checks of the dependencies it owns. */
    health: HealthChecker;
  }
}

const State = Type.Union([Type.Literal('ok'), Type.Literal('down')]);
const HealthReport = Type.Object({
  status: Type.Union([Type.Literal('healthy'), Type.Literal('degraded'), Type.Literal('unhealthy')]),
  storage: State,
  cache: State,
  events: State,
});
const Probe = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('ready'), Type.Literal('shutting down'), Type.Literal('event loop stalled')]),
});

const healthRoutes: FastifyPluginAsyncTypebox<{ checker: HealthChecker }> = async (app, { checker }) => {
  const config = { public: true, shedding: false };

  app.get(
    '/health',
    {
      config,
      schema: {
        operationId: 'getHealth',
        tags: ['operations'],
        summary: 'Dependencies at a glance',
        description: 'storage (DynamoDB and S3), cache (Redis) and events (SNS): degraded while only the cache or events are down, 503 while storage is.',
        response: { 200: HealthReport, 503: HealthReport },
      },
    },
    async (_request, reply) => {
      const report = await checker.report();
      if (report.storage === 'down') reply.code(503).header('retry-after', '5');
      return report;
    },
  );

  app.get(
    '/health/live',
    {
      config,
      schema: {
        operationId: 'getLiveness',
        tags: ['operations'],
        summary: 'The process can serve',
        description: 'Liveness: 200 while the event loop turns; asks no dependency.',
        response: { 200: Probe },
      },
    },
    async () => ({ status: 'ok' }) as const,
  );

  app.get(
    '/health/ready',
    {
      config,
      schema: {
        operationId: 'getReadiness',
        tags: ['operations'],
        summary: 'This process can serve: started, not shutting down, event loop not stalled',
        description:
          'Readiness: 503 from the first shutdown signal on, and while the event loop lags past LOAD_SHED_EVENT_LOOP_DELAY_MS, so that traffic goes to another pod. Asks no dependency: a store that is down is down for every pod, and is reported by /health and answered per request (503 with Retry-After).',
        response: { 200: Probe, 503: Probe },
      },
    },
    async (_request, reply) => {
      if (app.draining) {
        reply.code(503).header('retry-after', '1');
        return { status: 'shutting down' } as const;
      }
      if (app.stalled()) {
        reply.code(503).header('retry-after', '1');
        return { status: 'event loop stalled' } as const;
      }
      return { status: 'ready' } as const;
    },
  );
};

/** /health, /health/live and /health/ready over the checks the domains add to `app.health`. */
export const healthPlugin = fp<{ now?: () => number }>(
  async (app, { now }) => {
    const checker = new HealthChecker({ now });
    app.decorate('health', checker);
    await app.register(healthRoutes, { checker });
  },
  { name: 'health', fastify: '5.x', dependencies: ['load-shedding'] },
);
