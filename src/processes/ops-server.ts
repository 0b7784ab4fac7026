import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { conventionServerOptions, conventionsPlugin } from '../http/conventions.ts';

export type OpsServer = { app: FastifyInstance; registry: Registry };

/**
 * The background processes serve no API, only what their probes and
 * Prometheus need, on METRICS_PORT: liveness, readiness (the loop is running
 * and its dependencies answer; 503 from the first shutdown signal on) and
 * /metrics. Unlike the API's, this readiness may follow a shared store: no
 * Service routes traffic by it; it holds back a rollout and raises an alert. Every answer follows the API's conventions: problem+json errors,
 * request ids, the security headers.
 */
export function buildOpsServer(log: FastifyBaseLogger, ready: () => boolean): OpsServer {
  const app = Fastify({
    ...conventionServerOptions,
    loggerInstance: log,
    // Probes and scrapes every few seconds are not worth a log line each.
    logController: new LogController({ disableRequestLogging: true }),
  });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let draining = false;
  app.addHook('preClose', async () => {
    draining = true;
  });

  app.register(conventionsPlugin);
  // After the conventions, so that their hooks (the 405 router among them) see these routes.
  app.register(async (ops) => {
    ops.get('/health/live', async () => ({ status: 'ok' }));
    ops.get('/health/ready', async (_request, reply) => {
      if (draining) return reply.code(503).header('retry-after', '1').send({ status: 'shutting down' });
      if (!ready()) return reply.code(503).header('retry-after', '5').send({ status: 'not ready' });
      return { status: 'ready' };
    });
    ops.get('/metrics', async (_request, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    });
  });
  return { app, registry };
}
