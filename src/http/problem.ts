import fp from 'fastify-plugin';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import {
  Errors,
  errorDefinition,
  isErrorCode,
  problemTypeOf,
  titleOf,
  type ErrorCode,
  type FieldError,
} from '../errors.ts';
import { isDependencyFailure } from '../adapters/aws.ts';
import type { Problem } from './schemas.ts';

type AnyError = FastifyError & { errors?: FieldError[]; retryAfter?: number };

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
  if (isDependencyFailure(error)) return 'SERVICE_UNAVAILABLE';
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
    body.errors = error?.errors ?? fieldErrors((error?.validation ?? []) as AjvError[]);
  }
  const retryAfter = error?.retryAfter ?? definition.retryAfter;
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  return reply.code(status).type('application/problem+json').send(body);
}

const METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * One error handler for the whole app, and a not-found handler that tells a
 * wrong method (405 + Allow) from an unknown path (404).
 */
export const problemPlugin = fp(
  async (app) => {
    const routes = FindMyWay({ ignoreTrailingSlash: false });
    app.addHook('onRoute', (route) => {
      const methods = ([] as string[]).concat(route.method);
      for (const method of methods) {
        if (!routes.hasRoute(method as HTTPMethod, route.url)) routes.on(method as HTTPMethod, route.url, () => {});
      }
    });

    app.setErrorHandler((error: AnyError, request, reply) => {
      const code = classify(error);
      if (errorDefinition(code).status >= 500) {
        request.log.error({ err: error, code }, 'request failed');
      } else {
        request.log.info({ code, reason: error.message }, 'request refused');
      }
      return sendProblem(request, reply, code, error);
    });

    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0] ?? '/';
      const allowed = METHODS.filter((method) => routes.find(method, path) !== null);
      if (allowed.length > 0) {
        reply.header('allow', allowed.join(', '));
        return sendProblem(request, reply, 'METHOD_NOT_ALLOWED', new Errors.MethodNotAllowed(request.method, path));
      }
      return sendProblem(request, reply, 'ROUTE_NOT_FOUND', new Errors.RouteNotFound(request.method, path));
    });
  },
  { name: 'problem', fastify: '5.x' },
);
