import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  Errors,
  errorDefinition,
  isErrorCode,
  problemTypeOf,
  titleOf,
  type ErrorCode,
  type FieldError,
} from '../errors.ts';
import { JSON_ONLY } from './json-body.ts';
import type { Problem } from './schemas.ts';
import { SECURITY_HEADERS } from './security-headers.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What a 415 of Fastify's (a Content-Type it cannot parse) says the route takes; JSON_ONLY when unset. */
    accepts?: string;
  }
}

/**
 * What a thrown error may carry beyond its code: a Retry-After, headers the
 * answer must have whatever it is (a resumable upload's Upload-Offset), and
 * members a problem type defines (expected-offset).
 */
type AnyError = FastifyError & { retryAfter?: number; headers?: Record<string, string>; members?: Record<string, number> };

type AjvError = { instancePath: string; message?: string; keyword: string; params: Record<string, unknown> };

/** Maps whatever was thrown to one problem code; unknown errors are 500s. */
export function classify(error: AnyError): ErrorCode {
  if (isErrorCode(error.code)) return error.code;
  if (error.validation) return 'VALIDATION_FAILED';
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'PAYLOAD_TOO_LARGE';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'MALFORMED_JSON';
  }
  // JSON.parse and secure-json-parse (prototype poisoning) throw SyntaxErrors with a 400.
  if (error instanceof SyntaxError && error.statusCode === 400) return 'MALFORMED_JSON';
  const status = error.statusCode ?? 500;
  if (status === 413) return 'PAYLOAD_TOO_LARGE';
  if (status === 415) return 'UNSUPPORTED_MEDIA_TYPE';
  if (status >= 400 && status < 500) return 'BAD_REQUEST';
  return 'INTERNAL_ERROR';
}

function fieldErrors(validation: AjvError[]): FieldError[] {
  return validation.map((issue) => {
    const missing = issue.params.missingProperty ?? issue.params.additionalProperty;
    const path = missing === undefined ? issue.instancePath || '/' : `${issue.instancePath}/${String(missing)}`;
    const message =
      issue.keyword === 'additionalProperties' ? 'is not an allowed property' : (issue.message ?? 'is invalid');
    return { path, message };
  });
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, code: ErrorCode, error?: AnyError) {
  const definition = errorDefinition(code);
  const status = definition.status;
  // 5xx details are generic on purpose: internal messages stay in the log.
  const detail = status >= 500 || !error?.message ? definition.message.replaceAll(' %s', '') : error.message;
  const body: Problem = {
    type: problemTypeOf(code),
    title: titleOf(code),
    status,
    detail,
    code,
    requestId: request.id,
  };
  if (code === 'VALIDATION_FAILED') {
    body.errors = fieldErrors((error?.validation ?? []) as AjvError[]);
  }
  // Only errors of ours: another library's error may have fields of these names.
  if (error && isErrorCode(error.code)) {
    if (error.members && status < 500) Object.assign(body, error.members);
    if (error.headers) reply.headers(error.headers);
  }
  const retryAfter = error?.retryAfter ?? definition.retryAfter;
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  return reply.code(status).type('application/problem+json').send(body);
}

/**
 * Longest path parameter the routers accept. Ids are validated by schema (400
 * or 404); the router must not cut them off first. Far above what Node's
 * header limit (16 KiB for the request line and headers) lets in at all.
 */
export const MAX_PARAM_LENGTH = 65_536;

/**
 * Errors Fastify raises before any route or hook runs (a URL that does not
 * percent-decode, a parameter over MAX_PARAM_LENGTH): problem details too,
 * instead of Fastify's own JSON shape.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const code: ErrorCode = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'URI_TOO_LONG' : classify(error);
  request.log.info({ code, reason: error.message }, 'request refused');
  // No route, so no hooks: the headers those would add to every answer.
  reply.header('x-request-id', request.id).headers(SECURITY_HEADERS);
  // The URL may be anything: the detail names no part of it.
  return sendProblem(request, reply, code, errorDefinition(code).status >= 500 ? error : undefined);
}

/** A problem answer as status, headers and body, for where Node answers and there is no Fastify reply. */
export function rawProblem(code: ErrorCode, requestId: string) {
  const { status, message } = errorDefinition(code);
  const detail = message.replaceAll(' %s', '');
  const body = JSON.stringify({ type: problemTypeOf(code), title: titleOf(code), status, detail, code, requestId });
  const headers = {
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'x-request-id': requestId,
    ...SECURITY_HEADERS,
    connection: 'close',
  };
  return { status, headers, body };
}

/** The response each connection is writing, as the routes' hooks saw it (Node keeps its own privately). */
const answers = new WeakMap<object, ServerResponse>();

/** Called as each request is routed: the response a refused next request on its connection must not cut into. */
export function noteAnswer(socket: object | undefined, response: ServerResponse): void {
  if (socket) answers.set(socket, response);
}

/** A response on this connection has begun and not been handed to the socket whole: anything written now would land inside it. */
function midResponse(socket: Socket): boolean {
  const response = answers.get(socket);
  return response !== undefined && response.headersSent && !response.writableFinished;
}

/**
 * Requests Node's HTTP parser refuses (malformed request line or headers,
 * headers over the limit, too slow, a method no server implements): a
 * problem+json answer written on the socket, which is then closed, as Node
 * and Fastify do with their own text.
 */
export function clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Socket) {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const code = clientErrorCode(error);
  const { status, headers, body } = rawProblem(code, randomUUID());
  this.log.debug({ err: error, code, requestId: headers['x-request-id'] }, 'malformed request refused');
  if (socket.writable && !midResponse(socket)) {
    const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines.join('')}\r\n${body}`);
  }
  socket.destroy(error);
}

// A request line of the right shape whose method Node's parser does not know (llhttp knows every registered one).
const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [\x21-\x7e]+ HTTP\/1\.[01]\r?\n/;

function clientErrorCode(error: Error & { code?: string; rawPacket?: Buffer }): ErrorCode {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'HEADERS_TOO_LARGE';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'REQUEST_TIMEOUT';
    case 'HPE_INVALID_METHOD':
      return error.rawPacket && REQUEST_LINE.test(error.rawPacket.toString('latin1')) ? 'NOT_IMPLEMENTED' : 'BAD_REQUEST';
    default:
      return 'BAD_REQUEST';
  }
}

const METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * Methods of HTTP's own semantics (RFC 9110, PATCH, QUERY): on a path that
 * does not take one, 405 with Allow. Any other method (WebDAV's, or a made-up
 * one) no route of this server implements: 501 on every path (RFC 9110 §15.6.2).
 */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']);

/** The routes as a router of their own, to tell a wrong method on a known path from an unknown path. */
const routers = new WeakMap<FastifyInstance, ReturnType<typeof FindMyWay>>();

/**
 * What a request no route matched gets: 501, 405 with Allow, or 404. Decided
 * before its body is read: Fastify would refuse a QUERY without a
 * Content-Type (400) before any not-found handler ran.
 */
export function unroutedError(app: FastifyInstance, request: FastifyRequest): AnyError {
  const path = request.url.split('?')[0] ?? '/';
  if (!KNOWN_METHODS.has(request.method)) return new Errors.NotImplemented(request.method);
  const routes = routers.get(app);
  const allowed = routes ? METHODS.filter((method) => routes.find(method, path) !== null) : [];
  if (allowed.length === 0) return new Errors.RouteNotFound(request.method, path);
  const error: AnyError = new Errors.MethodNotAllowed(request.method, path);
  error.headers = { allow: allowed.join(', ') };
  return error;
}

/**
 * Fastify's own refusals of a body, as ours, saying what is wanted: the
 * limit of the route; the types it takes.
 */
function inOurTerms(error: AnyError, request: FastifyRequest): AnyError {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Errors.PayloadTooLarge(`${request.routeOptions.bodyLimit} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new Errors.UnsupportedMediaType(
        `Content-Type ${JSON.stringify((request.headers['content-type'] ?? '').slice(0, 64))}`,
        request.routeOptions.config.accepts ?? JSON_ONLY,
      );
    default:
      return error;
  }
}

/**
 * One error handler for the whole app, and a not-found handler that tells a
 * wrong method (405 + Allow) from an unknown path (404) and from a method
 * not implemented at all (501).
 */
export const problemPlugin = fp(
  async (app) => {
    const routes = FindMyWay({ ignoreTrailingSlash: false, maxParamLength: MAX_PARAM_LENGTH });
    routers.set(app, routes);
    app.addHook('onRoute', (route) => {
      const methods = ([] as string[]).concat(route.method);
      for (const method of methods) {
        if (!routes.hasRoute(method as HTTPMethod, route.url)) routes.on(method as HTTPMethod, route.url, () => {});
      }
    });

    app.setErrorHandler((thrown: AnyError, request, reply) => {
      const error = inOurTerms(thrown, request);
      const code = classify(error);
      const status = errorDefinition(code).status;
      // A bug gets the stack; a shed or a dependency outage is a state, logged as one line each.
      if (status === 500) request.log.error({ err: error, code }, 'request failed');
      else if (status >= 500) request.log.warn({ code, reason: error.message }, 'request not served');
      else request.log.info({ code, reason: error.message }, 'request refused');
      return sendProblem(request, reply, code, error);
    });

    app.setNotFoundHandler((request, reply) => {
      const error = unroutedError(app, request);
      return sendProblem(request, reply, classify(error), error);
    });
  },
  { name: 'problem', fastify: '5.x' },
);
