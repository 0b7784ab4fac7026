import { describe, expect, it } from 'vitest';
import { codeOf, Errors, errorDefinition, hasCode, hasName, isErrorCode, problemTypeOf, titleOf } from '../../src/errors.ts';

// The registry is part of the contract: codes are stable and unique, and each
// maps to exactly one status.
describe('error registry', () => {
  const entries = Object.entries(Errors).map(([name, ErrorClass]) => ({ name, error: new ErrorClass('x', 'y') }));

  it('gives every error class a distinct UPPER_SNAKE code that the registry knows', () => {
    const codes = entries.map(({ error }) => error.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(isErrorCode(code)).toBe(true);
    }
  });

  it('maps each code to a 4xx or 5xx status that the instance carries', () => {
    for (const { error } of entries) {
      expect(error.statusCode).toBe(errorDefinition(error.code as never).status);
      expect(error.statusCode).toBeGreaterThanOrEqual(400);
    }
  });

  it('has the codes the contract names, with their statuses', () => {
    const expected: Record<string, number> = {
      INVALID_IDEMPOTENCY_KEY: 400,
      IDEMPOTENCY_KEY_REUSED: 422,
      IDEMPOTENCY_KEY_IN_USE: 409,
      EMPTY_DOCUMENT: 400,
      PAYLOAD_TOO_LARGE: 413,
      DOCUMENT_EXISTS: 409,
      DOCUMENT_DELETED: 409,
      DOCUMENT_NOT_FOUND: 404,
      INVALID_DOCUMENT_ID: 400,
      ROUTE_NOT_FOUND: 404,
      METHOD_NOT_ALLOWED: 405,
      UNSUPPORTED_MEDIA_TYPE: 415,
      VALIDATION_FAILED: 400,
      MALFORMED_JSON: 400,
      ORDER_NOT_FOUND: 404,
      UNAUTHENTICATED: 401,
      RATE_LIMITED: 429,
    };
    for (const [code, status] of Object.entries(expected)) {
      expect(isErrorCode(code), code).toBe(true);
      expect(errorDefinition(code as never).status).toBe(status);
    }
  });

  it('tells clients when to retry: every 503, 429 and in-flight 409 has a Retry-After', () => {
    for (const { error } of entries) {
      const definition = errorDefinition(error.code as never);
      if (definition.status === 503 || definition.status === 429 || error.code === 'IDEMPOTENCY_KEY_IN_USE') {
        expect(definition.retryAfter, error.code).toBeGreaterThan(0);
      }
    }
  });

  it('derives titles and problem types from the code', () => {
    expect(titleOf('DOCUMENT_NOT_FOUND')).toBe('Document not found');
    expect(problemTypeOf('DOCUMENT_NOT_FOUND')).toBe('urn:problem-type:document-not-found');
  });

  it('keeps stack traces off expected conditions only', () => {
    expect(new Errors.DocumentNotFound('x').stack ?? '').not.toMatch(/\n\s+at /);
    expect(new Errors.InternalError().stack).toMatch(/\n\s+at /);
  });
});

describe('codeOf, hasCode and hasName', () => {
  it('read a string code or name off anything thrown, and nothing else', () => {
    expect(codeOf(new Errors.UploadSuperseded('u'))).toBe('UPLOAD_SUPERSEDED');
    expect(codeOf(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe('ECONNRESET');
    expect(codeOf({ code: 'ETIMEDOUT' })).toBe('ETIMEDOUT');
    for (const thrown of [undefined, null, 'ECONNRESET', 42, { code: 5 }, { name: Symbol('x') }, new Error('plain')]) {
      expect(codeOf(thrown)).toBeUndefined();
      expect(hasCode(thrown, 'ECONNRESET', '5', 'undefined')).toBe(false);
    }
    expect(hasCode(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'EPIPE', 'ECONNRESET')).toBe(true);
    expect(hasCode(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'EPIPE')).toBe(false);
    expect(hasName(Object.assign(new Error('gone'), { name: 'NoSuchKey' }), 'NotFound', 'NoSuchKey')).toBe(true);
    expect(hasName(new Error('plain'), 'Error')).toBe(true);
    expect(hasName(new Error('plain'), 'NoSuchKey')).toBe(false);
    expect(hasName({ name: 5 }, '5')).toBe(false);
    expect(hasName(null, 'null')).toBe(false);
  });
});
