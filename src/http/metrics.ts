import fp from 'fastify-plugin';
import { Histogram } from 'prom-client';
import { createMetrics, type Metrics } from '../metrics.ts';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

/** The app's metrics (or a test's), the request latency histogram, the access log and GET /metrics. */
export const metricsPlugin = fp(
  async (app, options: { metrics?: Metrics }) => {
    const metrics = options.metrics ?? createMetrics();
    app.decorate('metrics', metrics);
    const latency = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route, method and status',
      labelNames: ['route', 'method', 'status_code'],
      // 0.3: the boundary of the POST /orders latency objective (monitoring/rules.yml).
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5],
      registers: [metrics.registry],
    });

    // One child per route, method and status: labels are hashed once, not per request.
    const children = new Map<string, Histogram.Internal<'route' | 'method' | 'status_code'>>();
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const key = `${request.method} ${route} ${reply.statusCode}`;
      let child = children.get(key);
      if (!child) {
        child = latency.labels({ route, method: request.method, status_code: reply.statusCode });
        children.set(key, child);
      }
      const ms = reply.elapsedTime;
      child.observe(ms / 1000);
      // The access log: one line per request, with the request id (pino child logger).
      request.log.info({ method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(ms) }, 'request completed');
      done();
    });

    app.get('/metrics', { schema: { hide: true }, config: { public: true, shedding: false } }, async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    });
  },
  { name: 'metrics', fastify: '5.x' },
);
