import type { FastifyReply, FastifyRequest } from 'fastify';
import { Errors } from '../errors.ts';

/** What the JSON routes take, as a 415 says it. */
export const JSON_ONLY = 'this route takes application/json, in UTF-8 (charset utf-8 or none)';

/** The charset parameter of a media type, lowercased and unquoted; undefined when there is none. */
function charsetOf(parameters: readonly string[]): string | undefined {
  for (const parameter of parameters) {
    const equals = parameter.indexOf('=');
    if (equals < 0 || parameter.slice(0, equals).trim().toLowerCase() !== 'charset') continue;
    return parameter.slice(equals + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
  }
  return undefined;
}

/**
 * onRequest of a JSON route: a Content-Type other than application/json, or
 * JSON in another charset than UTF-8 (RFC 8259 §8.1), is 415 before a byte of
 * the body is read. A request without Content-Type is left to Fastify (no
 * body: the schema's 400; a body: 415).
 */
export function refuseUnlessJson(request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void {
  const sent = request.headers['content-type'];
  if (sent === undefined) return done();
  const [essence = '', ...parameters] = sent.split(';');
  const charset = charsetOf(parameters);
  if (essence.trim().toLowerCase() === 'application/json' && (charset === undefined || charset === 'utf-8')) return done();
  done(new Errors.UnsupportedMediaType(`Content-Type ${JSON.stringify(sent.slice(0, 64))}`, JSON_ONLY));
}
