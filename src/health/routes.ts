import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { HealthChecker } from './health-checker.ts';

const State = Type.Union([Type.Literal('ok'), Type.Literal('down')]);
const HealthReport = Type.Object({
  status: Type.Union([Type.Literal('healthy'), Type.Literal('degraded'), Type.Literal('unhealthy')]),
  storage: State,
  cache: State,
  events: State,
});
const Probe = Type.Object({ status: Type.String() });

export const healthRoutes: FastifyPluginAsyncTypebox<{ checker: HealthChecker }> = async (app, { checker }) => {
  const config = { public: true, shedding: false };

  app.get(
    '/health',
    { config, schema: { tags: ['operations'], summary: 'Dependencies at a glance', response: { 200: HealthReport, 503: HealthReport } } },
    async (_request, reply) => {
      const report = await checker.report();
      if (report.storage === 'down') reply.code(503).header('retry-after', '5');
      return report;
    },
  );

  app.get(
    '/health/live',
    { config, schema: { tags: ['operations'], summary: 'The process can serve', response: { 200: Probe } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/health/ready',
    {
      config,
      schema: { tags: ['operations'], summary: 'Storage answers and the process is not shutting down', response: { 200: Probe, 503: Probe } },
    },
    async (_request, reply) => {
      if (app.draining) {
        reply.code(503).header('retry-after', '1');
        return { status: 'shutting down' };
      }
      const report = await checker.report();
      if (report.storage === 'down') {
        reply.code(503).header('retry-after', '5');
        return { status: 'storage down' };
      }
      return { status: 'ready' };
    },
  );
};
