import fp from 'fastify-plugin';
import type { FastifyHttpOptions } from 'fastify';
import type { Server } from 'node:http';
import { expectationPlugin } from './expectation.ts';
import { headerError } from './header-rules.ts';
import { MAX_PARAM_LENGTH, clientErrorHandler, frameworkErrorHandler, noteAnswer, problemPlugin, unroutedError } from './problem.ts';
import { requestIdOf } from './request-id.ts';
import { SECURITY_HEADERS } from './security-headers.ts';

/**
 * What every server of the service does the same way, the API and the ops
 * ports of the relay and the consumer alike: request ids, and problem+json
 * with the security headers for everything refused, including what Node and
 * Fastify refuse before any route runs.
 */
export const conventionServerOptions = {
  genReqId: requestIdOf,
  requestIdHeader: false,
  // Ids are validated by schema (400); the router must not cut them off first (414).
  routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
  frameworkErrors: frameworkErrorHandler,
  clientErrorHandler,
  // Node's own 400 for a missing Host has no body; header-rules.ts answers it as a problem.
  http: { requireHostHeader: false },
  // Fastify's own 503 while closing is plain JSON; load-shedding.ts answers SHUTTING_DOWN instead.
  return503OnClosing: false,
} satisfies FastifyHttpOptions<Server>;

/** The plugins and the hook behind those conventions, registered before any route. */
export const conventionsPlugin = fp(
  async (app) => {
    await app.register(problemPlugin);
    await app.register(expectationPlugin);
    // X-Request-Id and the security headers set first, so that every answer carries them,
    // errors included; then the header rules. One callback hook for both: this runs on
    // every request, and a promise, or a second hook, per request is measurable at the top.
    app.addHook('onRequest', (request, reply, done) => {
      reply.headers(SECURITY_HEADERS);
      reply.header('x-request-id', request.id);
      noteAnswer(request.raw.socket, reply.raw);
      const error = headerError(request.raw.rawHeaders, request.raw.httpVersion === '1.1') ?? (request.is404 ? unroutedError(app, request) : undefined);
      if (error === undefined) done();
      else done(error);
    });
  },
  { name: 'conventions', fastify: '5.x' },
);
