import fp from 'fastify-plugin';
import { Errors } from '../errors.ts';

/**
 * The headers that name one thing (the target host, the caller, the request)
 * and that Node would merge or pick from silently: a second Host is dropped,
 * a second Authorization too, and two Idempotency-Key lines become the key
 * "a, b". Each is refused instead (RFC 9112 §3.2 for Host), as is an HTTP/1.1
 * request without Host (Node's own check is off so that this answer is a
 * problem too).
 */
export function headerError(rawHeaders: readonly string[], http11: boolean): Error | undefined {
  let host = 0;
  let authorization = 0;
  let idempotencyKey = 0;
  // rawHeaders is [name, value, name, value, ...] as sent; comparing lengths first keeps
  // this to a handful of integer comparisons for a typical request.
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4) {
      if (name.toLowerCase() === 'host') host += 1;
    } else if (name.length === 13) {
      if (name.toLowerCase() === 'authorization') authorization += 1;
    } else if (name.length === 15) {
      if (name.toLowerCase() === 'idempotency-key') idempotencyKey += 1;
    }
  }
  if (host > 1) return new Errors.DuplicateHeader('Host');
  if (authorization > 1) return new Errors.DuplicateHeader('Authorization');
  if (idempotencyKey > 1) return new Errors.DuplicateHeader('Idempotency-Key');
  if (host === 0 && http11) return new Errors.BadRequest();
  return undefined;
}

export const headerRulesPlugin = fp(
  async (app) => {
    // A callback hook: it runs on every request, and a promise per request is measurable on the hottest route.
    app.addHook('onRequest', (request, _reply, done) => {
      const error = headerError(request.raw.rawHeaders, request.raw.httpVersion === '1.1');
      if (error === undefined) done();
      else done(error);
    });
  },
  { name: 'header-rules', fastify: '5.x' },
);
