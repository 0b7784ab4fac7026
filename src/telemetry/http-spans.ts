import { FastifyOtelInstrumentation } from '@fastify/otel';
import { trace } from '@opentelemetry/api';
import fp from 'fastify-plugin';
import { tracingOn } from './tracing.ts';

/** Probes, scrapes and the API description: traffic of machines, each not worth a trace. */
const UNTRACED = /^\/(health(\/live|\/ready)?|metrics|openapi\.json)(\?|$)/;

/**
 * A SERVER span per request (`@fastify/otel`, Fastify's official
 * instrumentation), continuing the caller's traceparent, with one child span
 * for the route handler; hooks are not spanned (a dozen per request, each
 * telling little). Registered first, so that every route is covered; without
 * tracing it registers nothing.
 */
export const httpTracingPlugin = fp(
  async (app) => {
    if (!tracingOn()) return;
    const instrumentation = new FastifyOtelInstrumentation({
      instrumentHooks: false,
      ignorePaths: ({ url }) => UNTRACED.test(url),
      // Semantic conventions name a server span by method and route.
      requestHook: (span, request) => span.updateName(`${request.method} ${request.routeOptions.url ?? ''}`.trim()),
    });
    instrumentation.setTracerProvider(trace.getTracerProvider());
    await app.register(instrumentation.plugin());
  },
  { name: 'http-tracing', fastify: '5.x' },
);
