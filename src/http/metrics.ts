import fp from 'fastify-plugin';
import { Histogram, type Registry } from 'prom-client';
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
    const latency = latencyHistogram(metrics.registry);
    // Series by route, then method, then status: no key string per request.
    const byRoute = new Map<string, Map<string, Map<number, LatencySeries>>>();
    const seriesOf = (route: string, method: string, status: number): LatencySeries => {
      let byMethod = byRoute.get(route);
      if (!byMethod) byRoute.set(route, (byMethod = new Map()));
      let byStatus = byMethod.get(method);
      if (!byStatus) byMethod.set(method, (byStatus = new Map()));
      let series = byStatus.get(status);
      if (!series) byStatus.set(status, (series = latency.series({ route, method, status_code: status })));
      return series;
    };
    app.addHook('onResponse', (request, reply, done) => {
      const { method } = request;
      const status = reply.statusCode;
      const ms = reply.elapsedTime;
      seriesOf(request.routeOptions.url ?? 'unmatched', method, status).observe(ms / 1000);
      // The access log: one line per request, with the request id (pino child logger).
      request.log.info({ method, url: request.url, statusCode: status, ms: Math.round(ms) }, 'request completed');
      done();
    });

    app.get('/metrics', { schema: { hide: true }, config: { public: true, shedding: false } }, async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    });
  },
  { name: 'metrics', fastify: '5.x' },
);

type LatencyLabels = { route: string; method: string; status_code: number };

/** One series of the latency histogram: observe() adds to it directly. */
export type LatencySeries = { observe(seconds: number): void };

/** The values prom-client keeps for one series of a histogram (lib/histogram.js, createBaseValues). */
type HistogramValues = { labels: LatencyLabels; bucketValues: Record<string, number>; sum: number; count: number };

// 0.3: the boundary of the POST /orders latency objective (monitoring/rules.yml).
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5];

/**
 * http_request_duration_seconds, a prom-client Histogram that prom-client
 * still exposes, but whose series are added to without prom-client's
 * `observe`: that one checks the labels, hashes them into a string and looks
 * that string up on every call, even through a child (`labels(...)`), about
 * 3 µs of the 86 of a cached GET. A series here is prom-client's own values
 * object, found once (zero() creates it), and observe() does what
 * prom-client's does to it: the bucket the value falls in, the sum and the
 * count. test/unit/metrics-fast-paths.test.ts checks that the exposition is
 * the same as prom-client's observe gives, should prom-client change.
 * Nothing may reset() it: that would leave these series out of it.
 */
export function latencyHistogram(registry: Registry) {
  const histogram = new Histogram<keyof LatencyLabels>({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route, method and status',
    labelNames: ['route', 'method', 'status_code'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  // prom-client keys bucketValues by the bound as a property name: those names, once.
  const keys = LATENCY_BUCKETS.map(String);
  const internal = histogram as unknown as { hashMap: Record<string, HistogramValues> };
  return {
    histogram,
    series(labels: LatencyLabels): LatencySeries {
      histogram.zero(labels);
      const values = Object.values(internal.hashMap).find((candidate) => candidate.labels === labels);
      if (!values) throw new Error('prom-client no longer keeps a histogram series as this module expects');
      const { bucketValues } = values;
      return {
        observe(seconds: number) {
          // prom-client: the first bound the value is not above; above them all, only +Inf (the count).
          for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
            if (seconds <= LATENCY_BUCKETS[i]!) {
              bucketValues[keys[i]!]! += 1;
              break;
            }
          }
          values.sum += seconds;
          values.count += 1;
        },
      };
    },
  };
}
