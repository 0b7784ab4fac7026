import createError from '@fastify/error';

// Every condition a client can see has one stable code, one HTTP status and,
// where a retry makes sense, a Retry-After. Expected conditions skip the stack
// trace: they are answers, not bugs.
// `type` names a problem type another specification registered (the resumable-upload
// draft's, at IANA); the others are `urn:problem-type:<code>`.
type Definition = { status: number; message: string; retryAfter?: number; type?: string };

const IANA_PROBLEM_TYPES = 'https://iana.org/assignments/http-problem-types#';

const definitions = {
  ROUTE_NOT_FOUND: { status: 404, message: 'No route %s %s' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method %s is not allowed on %s' },
  NOT_IMPLEMENTED: { status: 501, message: 'Method %s is not implemented by this server' },
  BAD_REQUEST: { status: 400, message: 'The request is malformed' },
  DUPLICATE_HEADER: { status: 400, message: 'The %s header may be sent only once' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request was not received in time' },
  URI_TOO_LONG: { status: 414, message: 'The request target is too long' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large' },
  EXPECTATION_FAILED: { status: 417, message: 'The only expectation understood is Expect: 100-continue' },
  VALIDATION_FAILED: { status: 400, message: 'The request does not match the schema' },
  MALFORMED_JSON: { status: 400, message: 'The body is not valid JSON' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: '%s is not accepted here: %s' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The body is larger than the limit of %s' },
  UPLOAD_INCOMPLETE: { status: 400, message: 'The body ended before its declared length' },
  INVALID_DIGEST: { status: 400, message: 'Content-Digest and Repr-Digest take an RFC 9530 dictionary with %s' },
  DIGEST_MISMATCH: { status: 400, message: 'The body does not match its %s' },
  PRECONDITION_FAILED: { status: 412, message: '%s does not hold for document %s' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'The range starts past the end of the %s-byte document' },
  INVALID_DOCUMENT_ID: { status: 400, message: 'A document id is 1-128 of A-Z a-z 0-9 _ -' },
  INVALID_IDEMPOTENCY_KEY: { status: 400, message: 'An Idempotency-Key is 1-255 printable ASCII characters' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, message: 'This Idempotency-Key was used for a different request' },
  IDEMPOTENCY_KEY_IN_USE: {
    status: 409,
    message: 'A request with this Idempotency-Key is still in progress',
    retryAfter: 1,
  },
  EMPTY_DOCUMENT: { status: 400, message: 'A document needs a non-empty body' },
  DOCUMENT_NOT_FOUND: { status: 404, message: 'Document %s does not exist' },
  DOCUMENT_EXISTS: { status: 409, message: 'Document %s exists with other content; documents never change' },
  DOCUMENT_DELETED: { status: 409, message: 'Document %s was deleted; its id cannot be reused' },
  DOCUMENT_RETAINED: { status: 409, message: 'Document %s is retained until %s; it cannot be deleted before' },
  DOCUMENT_ON_LEGAL_HOLD: { status: 409, message: 'Document %s is on legal hold; it cannot be deleted while it is' },
  NO_DIRECT_LINK: { status: 409, message: 'Document %s is small enough to be stored with its metadata: it has no direct link, GET it' },
  INVALID_RETAIN_UNTIL: { status: 400, message: 'Retain-Until is an RFC 3339 time in the future, before %s' },
  INVALID_CURSOR: { status: 400, message: 'The cursor is not one this listing gave' },
  FORBIDDEN: { status: 403, message: 'This API key may not %s' },
  ORDER_NOT_FOUND: { status: 404, message: 'Order %s does not exist' },
  UNAUTHENTICATED: { status: 401, message: 'A valid API key is required' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; retry later', retryAfter: 1 },
  SERVICE_UNAVAILABLE: { status: 503, message: 'A dependency is unavailable; retry later', retryAfter: 1 },
  DEPENDENCY_TIMEOUT: { status: 503, message: 'A dependency did not answer in time; retry later', retryAfter: 1 },
  // A key is disabled on purpose (a tenant crypto-shredded) and stays so, or is enabled again by hand: minutes, not seconds.
  CONTENT_KEY_UNAVAILABLE: {
    status: 503,
    message: 'The KMS key this content is encrypted under cannot be used (disabled, or scheduled for deletion)',
    retryAfter: 60,
  },
  OVERLOADED: { status: 503, message: 'The service is overloaded; retry later', retryAfter: 2 },
  SHUTTING_DOWN: { status: 503, message: 'The service is shutting down; retry on another instance', retryAfter: 1 },
  INTERNAL_ERROR: { status: 500, message: 'An unexpected error occurred' },
  UPLOAD_NOT_FOUND: { status: 404, message: 'Upload %s does not exist' },
  UPLOAD_EXPIRED: { status: 410, message: 'Upload %s expired; its bytes are gone' },
  UPLOAD_STATE_LOST: { status: 410, message: 'Upload %s cannot be continued (its stored state is gone); start a new one' },
  UPLOAD_OFFSET_MISMATCH: {
    status: 409,
    message: 'Upload-Offset %s is not the offset of the upload, %s',
    type: `${IANA_PROBLEM_TYPES}mismatching-upload-offset`,
  },
  UPLOAD_COMPLETED: { status: 400, message: 'Upload %s is complete; nothing can be appended', type: `${IANA_PROBLEM_TYPES}completed-upload` },
  UPLOAD_LENGTH_MISMATCH: { status: 400, message: '%s', type: `${IANA_PROBLEM_TYPES}inconsistent-upload-length` },
  UPLOAD_SUPERSEDED: { status: 409, message: 'Another request took over upload %s; ask its offset with HEAD', retryAfter: 1 },
  INVALID_UPLOAD_REQUEST: { status: 400, message: '%s' },
  INVALID_UPLOAD_METADATA: { status: 400, message: 'Upload-Metadata is comma-separated "key base64value" pairs, each key once: %s' },
  UNSUPPORTED_UPLOAD_VERSION: { status: 412, message: 'This server speaks tus 1.0.0 and resumable-upload interop versions %s' },
  UNSUPPORTED_CHECKSUM_ALGORITHM: { status: 400, message: 'Upload-Checksum takes sha256 only' },
  CHECKSUM_MISMATCH: { status: 460, message: 'The body does not match its %s; nothing of it was stored' },
} as const satisfies Record<string, Definition>;

export type ErrorCode = keyof typeof definitions;

function define<C extends ErrorCode>(code: C) {
  const { status, message } = definitions[code];
  return createError(code, message, status, Error, status >= 500);
}

export const Errors = {
  RouteNotFound: define('ROUTE_NOT_FOUND'),
  MethodNotAllowed: define('METHOD_NOT_ALLOWED'),
  NotImplemented: define('NOT_IMPLEMENTED'),
  BadRequest: define('BAD_REQUEST'),
  DuplicateHeader: define('DUPLICATE_HEADER'),
  RequestTimeout: define('REQUEST_TIMEOUT'),
  UriTooLong: define('URI_TOO_LONG'),
  HeadersTooLarge: define('HEADERS_TOO_LARGE'),
  ExpectationFailed: define('EXPECTATION_FAILED'),
  ValidationFailed: define('VALIDATION_FAILED'),
  MalformedJson: define('MALFORMED_JSON'),
  UnsupportedMediaType: define('UNSUPPORTED_MEDIA_TYPE'),
  PayloadTooLarge: define('PAYLOAD_TOO_LARGE'),
  UploadIncomplete: define('UPLOAD_INCOMPLETE'),
  InvalidDigest: define('INVALID_DIGEST'),
  DigestMismatch: define('DIGEST_MISMATCH'),
  PreconditionFailed: define('PRECONDITION_FAILED'),
  RangeNotSatisfiable: define('RANGE_NOT_SATISFIABLE'),
  InvalidDocumentId: define('INVALID_DOCUMENT_ID'),
  InvalidIdempotencyKey: define('INVALID_IDEMPOTENCY_KEY'),
  IdempotencyKeyReused: define('IDEMPOTENCY_KEY_REUSED'),
  IdempotencyKeyInUse: define('IDEMPOTENCY_KEY_IN_USE'),
  EmptyDocument: define('EMPTY_DOCUMENT'),
  DocumentNotFound: define('DOCUMENT_NOT_FOUND'),
  DocumentExists: define('DOCUMENT_EXISTS'),
  DocumentDeleted: define('DOCUMENT_DELETED'),
  DocumentRetained: define('DOCUMENT_RETAINED'),
  DocumentOnLegalHold: define('DOCUMENT_ON_LEGAL_HOLD'),
  NoDirectLink: define('NO_DIRECT_LINK'),
  InvalidRetainUntil: define('INVALID_RETAIN_UNTIL'),
  InvalidCursor: define('INVALID_CURSOR'),
  Forbidden: define('FORBIDDEN'),
  OrderNotFound: define('ORDER_NOT_FOUND'),
  Unauthenticated: define('UNAUTHENTICATED'),
  RateLimited: define('RATE_LIMITED'),
  ServiceUnavailable: define('SERVICE_UNAVAILABLE'),
  DependencyTimeout: define('DEPENDENCY_TIMEOUT'),
  ContentKeyUnavailable: define('CONTENT_KEY_UNAVAILABLE'),
  Overloaded: define('OVERLOADED'),
  ShuttingDown: define('SHUTTING_DOWN'),
  InternalError: define('INTERNAL_ERROR'),
  UploadNotFound: define('UPLOAD_NOT_FOUND'),
  UploadExpired: define('UPLOAD_EXPIRED'),
  UploadStateLost: define('UPLOAD_STATE_LOST'),
  UploadOffsetMismatch: define('UPLOAD_OFFSET_MISMATCH'),
  UploadCompleted: define('UPLOAD_COMPLETED'),
  UploadLengthMismatch: define('UPLOAD_LENGTH_MISMATCH'),
  UploadSuperseded: define('UPLOAD_SUPERSEDED'),
  InvalidUploadRequest: define('INVALID_UPLOAD_REQUEST'),
  InvalidUploadMetadata: define('INVALID_UPLOAD_METADATA'),
  UnsupportedUploadVersion: define('UNSUPPORTED_UPLOAD_VERSION'),
  UnsupportedChecksumAlgorithm: define('UNSUPPORTED_CHECKSUM_ALGORITHM'),
  ChecksumMismatch: define('CHECKSUM_MISMATCH'),
};

/** A thrown value's `code`, when it has one that is a string: ours, Node's (ECONNRESET) or AWS's. */
export function codeOf(error: unknown): string | undefined {
  return stringProperty(error, 'code');
}

/** A thrown value's `name`, when it has one that is a string: how the AWS SDK tells its errors apart (NoSuchKey). */
function nameOf(error: unknown): string | undefined {
  return stringProperty(error, 'name');
}

/** Whether a thrown value's `code` is one of `codes`. */
export function hasCode(error: unknown, ...codes: string[]): boolean {
  const code = codeOf(error);
  return code !== undefined && codes.includes(code);
}

/** Whether a thrown value's `name` is one of `names`. */
export function hasName(error: unknown, ...names: string[]): boolean {
  const name = nameOf(error);
  return name !== undefined && names.includes(name);
}

function stringProperty(value: unknown, key: 'code' | 'name'): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const property: unknown = Reflect.get(value, key);
  return typeof property === 'string' ? property : undefined;
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(definitions, code);
}

export function errorDefinition(code: ErrorCode): Definition {
  return definitions[code];
}

/** A field-level validation failure, reported in `errors` of a 400. */
export type FieldError = { path: string; message: string };

/**
 * A dependency down, throttling us or too slow, as adapters report it: a
 * coded 503 whose message (logged, never sent) says what failed, with the
 * original error as its cause.
 */
export function dependencyFailure(kind: 'unavailable' | 'timeout', what: string, cause: unknown) {
  const error = kind === 'timeout' ? new Errors.DependencyTimeout({ cause }) : new Errors.ServiceUnavailable({ cause });
  error.message = what;
  return error;
}

/** A KMS key S3 could not use for an object (KMS.DisabledException and the like), as adapters report it: logged, never sent. */
export function contentKeyFailure(what: string, cause: unknown) {
  const error = new Errors.ContentKeyUnavailable({ cause });
  error.message = what;
  return error;
}

/** Problem title: the code read as words ("DOCUMENT_NOT_FOUND" → "Document not found"). */
export function titleOf(code: ErrorCode): string {
  const words = code.toLowerCase().replaceAll('_', ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function problemTypeOf(code: ErrorCode): string {
  const definition: Definition = definitions[code];
  return definition.type ?? `urn:problem-type:${code.toLowerCase().replaceAll('_', '-')}`;
}
