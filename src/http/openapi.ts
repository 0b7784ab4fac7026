import { STATUS_CODES } from 'node:http';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import type { RouteOptions } from 'fastify';
import { Problem } from './schemas.ts';

/** Response headers a route's answers carry besides the ones every answer has, by status. */
type ResponseHeaderNames = Partial<Record<number, (keyof typeof RESPONSE_HEADERS)[]>>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the OpenAPI document says of a route beyond its validating schemas. */
    openapi?: {
      /** The body is read raw, as bytes of any media type (documents), never parsed or validated. */
      binaryBody?: boolean;
      responseHeaders?: ResponseHeaderNames;
    };
  }
}

// Node refuses request headers over 16 KiB in total: no header value is longer.
const HEADER_BYTES = 16_384;
const ETAG = '"[0-9a-f]{64}"';
// `*`, or a list of entity tags (RFC 9110 §8.8.3).
const ENTITY_TAGS = '^(\\*|(W/)?"[\\x21\\x23-\\x7e]*"(\\s*,\\s*(W/)?"[\\x21\\x23-\\x7e]*")*)$';
// IMF-fixdate (RFC 9110 §5.6.7).
const HTTP_DATE = '^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT$';

/** Every response header the service sends, described once (components.headers). */
const RESPONSE_HEADERS = {
  'X-Request-Id': {
    description: 'The request id: the one sent if well-formed, else a fresh UUID. Also in every problem body and log line.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$', maxLength: 128 },
  },
  RateLimit: {
    description:
      'What is left of the tenant quota (draft-ietf-httpapi-ratelimit-headers): r requests, t seconds until the window resets. With AUTH_MODE=api-key, on every answer the limit counted.',
    schema: { type: 'string', pattern: '^"tenant";r=[0-9]+;t=[0-9]+$', maxLength: 64 },
  },
  'RateLimit-Policy': {
    description: 'The tenant quota: q requests per w seconds (draft-ietf-httpapi-ratelimit-headers). Sent with RateLimit.',
    schema: { type: 'string', pattern: '^"tenant";q=[0-9]+;w=60$', maxLength: 64 },
  },
  'Retry-After': {
    description: 'Seconds to wait before retrying.',
    schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 3600 },
  },
  'WWW-Authenticate': { description: 'The scheme to authenticate with.', schema: { type: 'string', enum: ['Bearer'] } },
  Location: {
    description: 'Where the created resource is read; of a 307, the direct link to the document (as the url of GET /documents/{id}/link).',
    // A link signs the document's Content-Type, percent-encoded: up to three times its 16 KiB.
    schema: { type: 'string', pattern: '^(/(documents|orders|uploads)/[A-Za-z0-9_-]{1,128}|https?://[\\x21-\\x7e]+)$', maxLength: 65_536 },
  },
  ETag: { description: 'Strong validator: the SHA-256 of the content, quoted.', schema: { type: 'string', pattern: `^${ETAG}$`, maxLength: 66 } },
  'Idempotent-Replayed': {
    description: 'Present when this answer is the replay of an earlier one (same Idempotency-Key, or the same order payload within the dedup window).',
    schema: { type: 'string', enum: ['true'] },
  },
  'Cache-Status': {
    description: 'RFC 9211: hit (process memory or Redis) or fwd=miss (read from the stores).',
    schema: { type: 'string', enum: ['docsvc; hit', 'docsvc; fwd=miss'] },
  },
  'Accept-Ranges': { description: 'Byte ranges are served.', schema: { type: 'string', enum: ['bytes'] } },
  'Repr-Digest': {
    description: 'RFC 9530: the SHA-256 of the whole document, whatever range is sent.',
    schema: { type: 'string', pattern: '^sha-256=:[A-Za-z0-9+/]{43}=:$', maxLength: 56 },
  },
  'Content-Range': {
    description: 'The range sent (206), or the size when none could be (416).',
    schema: { type: 'string', pattern: '^bytes ([0-9]+-[0-9]+|\\*)/[0-9]+$', maxLength: 64 },
  },
  'Content-Location': {
    description: 'Resumable uploads: the document the upload makes (it exists once the upload completed).',
    schema: { type: 'string', pattern: '^/documents/[A-Za-z0-9_-]{1,128}$', maxLength: 139 },
  },
  'Upload-Offset': {
    description: 'Resumable uploads: the bytes of the upload stored durably (resume from here), on every answer about it, errors included.',
    schema: { type: 'integer', format: 'int64', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
  },
  'Upload-Length': {
    description: 'Resumable uploads: the length of the document, once known.',
    schema: { type: 'integer', format: 'int64', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
  },
  'Upload-Complete': {
    description: 'Resumable uploads (IETF): ?1 once the upload is complete and its document committed.',
    schema: { type: 'string', enum: ['?0', '?1'] },
  },
  'Upload-Expires': {
    description: 'Resumable uploads (tus): when the upload expires, its bytes removed, unless completed.',
    schema: { type: 'string', maxLength: 29, pattern: HTTP_DATE },
  },
  'Cache-Control': {
    description:
      "A document's bytes (200, 206, 304): private, no-cache (one tenant's, never in a shared cache; kept, but revalidated with the ETag, so that a deleted document is never served again). " +
      'This document: public, max-age=300 (the same for every caller, changed only by a deploy). Everything else: no-store.',
    schema: { type: 'string', enum: ['no-store', 'private, no-cache', 'public, max-age=300'] },
  },
  'Upload-Limit': {
    description: 'Resumable uploads (IETF): max-size (MAX_DOCUMENT_BYTES), and max-age (expires in draft -05): the seconds the upload has left.',
    schema: { type: 'string', maxLength: 96, pattern: '^max-size=[0-9]+(, max-age=[0-9]+, expires=[0-9]+)?$' },
  },
  'Tus-Resumable': { description: 'tus: the protocol version of the answer.', schema: { type: 'string', enum: ['1.0.0'] } },
  'X-Content-Type-Options': { description: 'Content types are never sniffed.', schema: { type: 'string', enum: ['nosniff'] } },
  'Content-Security-Policy': {
    description: 'A stored HTML document runs nothing and cannot be framed.',
    schema: { type: 'string', enum: ["default-src 'none'; frame-ancestors 'none'; sandbox"] },
  },
} as const;

/** The same for every caller, changed only by a deploy: five minutes of an older description after one is harmless. */
const OPENAPI_CACHE_CONTROL = 'public, max-age=300';

/** Headers on every answer of every route. */
const EVERY_ANSWER = ['X-Request-Id', 'Cache-Control', 'X-Content-Type-Options', 'Content-Security-Policy'] as const;

/**
 * The bounds of the request headers the service reads. Their route schemas
 * only say that they are strings, so that their own parsers answer with
 * their own codes (INVALID_IDEMPOTENCY_KEY, INVALID_DIGEST, ...); these are
 * what those parsers accept, documented.
 */
const REQUEST_HEADER_SCHEMAS: Record<string, Record<string, unknown>> = {
  'idempotency-key': { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7e]+$' },
  'content-type': { type: 'string', maxLength: HEADER_BYTES, pattern: '^[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}' },
  'content-digest': { type: 'string', maxLength: HEADER_BYTES, pattern: '^[A-Za-z0-9*_.-]+=:[A-Za-z0-9+/=]*:' },
  'repr-digest': { type: 'string', maxLength: HEADER_BYTES, pattern: '^[A-Za-z0-9*_.-]+=:[A-Za-z0-9+/=]*:' },
  'if-none-match': { type: 'string', maxLength: HEADER_BYTES, pattern: ENTITY_TAGS },
  'if-match': { type: 'string', maxLength: HEADER_BYTES, pattern: ENTITY_TAGS },
  'if-unmodified-since': { type: 'string', maxLength: 29, pattern: HTTP_DATE },
  range: { type: 'string', maxLength: HEADER_BYTES, pattern: '^bytes=' },
  'if-range': { type: 'string', maxLength: 68, pattern: `^${ETAG}$` },
  'tus-resumable': { type: 'string', maxLength: 16, pattern: '^[0-9.]+$' },
  'upload-draft-interop-version': { type: 'string', maxLength: 4, pattern: '^[0-9]+$' },
  'upload-length': { type: 'string', maxLength: 16, pattern: '^[0-9]+$' },
  'upload-offset': { type: 'string', maxLength: 16, pattern: '^[0-9]+$' },
  'upload-defer-length': { type: 'string', enum: ['1'] },
  'upload-complete': { type: 'string', enum: ['?0', '?1'] },
  'upload-metadata': { type: 'string', maxLength: 4096, pattern: '^[\\x20-\\x7e]+$' },
  'upload-checksum': { type: 'string', maxLength: 64, pattern: '^sha256 [A-Za-z0-9+/]{43}=$' },
};

/** Request headers every route reads. */
const EVERY_REQUEST = [
  {
    in: 'header',
    name: 'x-request-id',
    required: false,
    description: 'Your id for this request (1-128 of A-Z a-z 0-9 . _ -), echoed back; anything else is replaced.',
    schema: { type: 'string', maxLength: 128, pattern: '^[\\x20-\\x7e]*$' },
  },
  {
    in: 'header',
    name: 'traceparent',
    required: false,
    description: 'W3C trace context: the request joins your trace when tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT).',
    schema: { type: 'string', maxLength: 55, pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' },
  },
  {
    in: 'header',
    name: 'tracestate',
    required: false,
    description: 'W3C trace context, vendor part; passed on with traceparent.',
    schema: { type: 'string', maxLength: 512, pattern: '^[\\x20-\\x7e]*$' },
  },
];

/**
 * The plumbing routes, which have no validating schema (their answers are
 * not JSON of ours): what the document says of them.
 */
const PLUMBING: Record<string, Json> = {
  '/metrics': {
    operationId: 'getMetrics',
    tags: ['operations'],
    summary: 'Prometheus metrics of this process',
    description: 'The Prometheus text exposition format (requests, cache, outbox, runtime). Never shed, never rate-limited.',
    response: {
      200: {
        description: 'Prometheus text format 0.0.4',
        content: { 'text/plain': { schema: { type: 'string', pattern: '^(# (HELP|TYPE) |[a-zA-Z_:])' } } },
      },
    },
  },
  '/openapi.json': {
    operationId: 'getOpenApi',
    tags: ['operations'],
    summary: 'This document',
    description: 'OpenAPI 3.1, generated from the schemas that validate the requests.',
    response: { 200: { description: 'The OpenAPI document', type: 'object', additionalProperties: true } },
  },
};

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** Answers any operation can give, whether or not its route lists them. */
const STANDARD_PROBLEMS: Record<string, { description: string; unlessPublic?: boolean }> = {
  400: { description: 'Malformed request (BAD_REQUEST, VALIDATION_FAILED, ...)' },
  401: { description: 'No or an unknown API key (AUTH_MODE=api-key)', unlessPublic: true },
  429: { description: 'Over the tenant rate limit (RATE_LIMITED)', unlessPublic: true },
  431: { description: 'Request headers over 16 KiB in all (HEADERS_TOO_LARGE)' },
  500: { description: 'A bug (INTERNAL_ERROR); the body says nothing more' },
  503: { description: 'A store down, load shed or shutting down (SERVICE_UNAVAILABLE, OVERLOADED, SHUTTING_DOWN)', unlessPublic: true },
};

type Json = Record<string, any>;
const EXTENSION = 'x-docsvc-response-headers';
const METHODS = ['get', 'head', 'put', 'post', 'delete', 'patch', 'options'];

/** Per route, before conversion: public routes need no key; a raw body is bytes of any type. */
function transformRoute(maxDocumentBytes: number) {
  return ({ schema, url, route }: { schema: Json; url: string; route: RouteOptions }) => {
    const docs = route.config?.openapi;
    const next: Json = { ...(PLUMBING[url] ?? schema) };
    if (route.config?.public) next.security = [];
    if (docs?.binaryBody) {
      next.body = {
        description: 'The document, stored byte for byte with its Content-Type',
        content: { '*/*': { schema: { type: 'string', format: 'binary', minLength: 1, maxLength: maxDocumentBytes } } },
      };
    }
    if (docs?.responseHeaders) next[EXTENSION] = docs.responseHeaders;
    return { schema: next, url };
  };
}

/**
 * The longest string an anchored pattern made of literals, escapes and
 * classes with bounded quantifiers matches (`^CUST-[0-9]{8}$`: 13);
 * undefined for anything else (*, +, groups, alternatives).
 */
export function boundedLength(pattern: string): number | undefined {
  const tokens = /^\^((?:\\.|\[(?:\\.|[^\]\\])+\]|[^\\[\](){}|*+?^$.])(?:\{(\d+)(?:,(\d+))?\}|\?)?)*\$$/;
  if (!tokens.test(pattern)) return undefined;
  let length = 0;
  for (const match of pattern.slice(1, -1).matchAll(/(?:\\.|\[(?:\\.|[^\]\\])+\]|[^\\[\]{}?])(?:\{(\d+)(?:,(\d+))?\}|(\?))?/g)) {
    const [, exactly, atMost, optional] = match;
    length += optional ? 1 : Number(atMost ?? exactly ?? 1);
  }
  return length;
}

/**
 * Bounds that validating schemas imply without stating (a validator would
 * report a second error for one bad value), written out for the document:
 * maxLength of a bounded pattern, the integer format of a bounded range.
 */
function stateImpliedBounds(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(stateImpliedBounds);
  if (typeof node !== 'object' || node === null) return;
  const schema = node as Json;
  if (schema.type === 'string' && typeof schema.pattern === 'string' && schema.maxLength === undefined) {
    const length = boundedLength(schema.pattern);
    if (length !== undefined) schema.maxLength = length;
  }
  if (schema.type === 'integer' && schema.format === undefined && typeof schema.minimum === 'number' && typeof schema.maximum === 'number') {
    schema.format = schema.minimum >= -(2 ** 31) && schema.maximum < 2 ** 31 ? 'int32' : 'int64';
  }
  for (const value of Object.values(schema)) stateImpliedBounds(value);
}

function headerRef(name: string) {
  return { $ref: `#/components/headers/${name}` };
}

/** Whole document, after conversion: the conventions every operation shares. */
function transformDocument(openapiObject: Json, maxDocumentBytes: number): Json {
  // Relative: the host that served the document, wherever it runs; public, not an internal API.
  openapiObject.servers = [
    { url: '/', description: 'The host that served this document: local (make dev), staging or production alike', 'x-internal': false },
  ];
  openapiObject.components.headers = structuredClone(RESPONSE_HEADERS);
  for (const item of Object.values(openapiObject.paths ?? {}) as Json[]) {
    // A route of several methods (GET and HEAD) shares one operation object: each method gets its own.
    if (item.head && item.head === item.get) item.head = structuredClone(item.get);
    for (const method of METHODS) {
      const operation = item[method];
      if (operation) describeOperation(method, operation, item.get, maxDocumentBytes);
    }
  }
  stateImpliedBounds(openapiObject.paths);
  stateImpliedBounds(openapiObject.components.schemas);
  return openapiObject;
}

function describeOperation(method: string, operation: Json, get: Json | undefined, maxDocumentBytes: number) {
  const isPublic = Array.isArray(operation.security) && operation.security.length === 0;
  const extra: ResponseHeaderNames = operation[EXTENSION] ?? {};
  delete operation[EXTENSION];
  // A HEAD route of its own (GET and HEAD in one), or the one Fastify adds to every GET (operationId suffixed -head).
  if (method === 'head' && get && (operation.operationId === get.operationId || operation.operationId === `${get.operationId}-head`)) {
    const id: string = get.operationId;
    operation.operationId = id.startsWith('get') ? id.replace(/^get/, 'head') : `head${id.charAt(0).toUpperCase()}${id.slice(1)}`;
    operation.summary = `${operation.summary} (headers only)`;
    operation.description = 'The same status and headers as GET, without the body.';
  }

  const parameters: Json[] = (operation.parameters ??= []);
  for (const parameter of parameters) {
    const documented = parameter.in === 'header' ? REQUEST_HEADER_SCHEMAS[parameter.name] : undefined;
    if (documented) parameter.schema = { ...documented };
  }
  parameters.push(...EVERY_REQUEST);

  const responses: Json = operation.responses;
  for (const [status, { description, unlessPublic }] of Object.entries(STANDARD_PROBLEMS)) {
    if (!responses[status] && !(unlessPublic && isPublic)) responses[status] = { description };
  }
  for (const [status, response] of Object.entries(responses) as [string, Json][]) {
    const code = Number(status);
    // Problems are application/problem+json (the route schemas say which shape, not which type).
    const problem = code >= 400 && (!response.content || JSON.stringify(response.content).includes('#/components/schemas/Problem'));
    if (problem) Object.assign(response, problemResponse(response.description === 'Default Response' ? description(code) : response.description));
    if (response.description === 'Default Response') response.description = STATUS_CODES[code] ?? String(code);
    if (method === 'head') delete response.content;
    // Bytes of a document, whatever their type: at most MAX_DOCUMENT_BYTES.
    for (const media of Object.values(response.content ?? {}) as Json[]) {
      if (media.schema?.format === 'binary') media.schema.maxLength = maxDocumentBytes;
    }
    const headers: Json = Object.fromEntries(EVERY_ANSWER.map((name) => [name, headerRef(name)]));
    for (const name of extra[code] ?? []) headers[name] = headerRef(name);
    // Counted by the tenant limit: everything authenticated that got past authentication.
    if (!isPublic && code !== 401 && (code < 300 || (code >= 400 && code < 500))) {
      headers.RateLimit = headerRef('RateLimit');
      headers['RateLimit-Policy'] = headerRef('RateLimit-Policy');
    }
    if (code === 429 || code === 503 || code === 409) headers['Retry-After'] = headerRef('Retry-After');
    if (code === 401) headers['WWW-Authenticate'] = headerRef('WWW-Authenticate');
    response.headers = headers;
  }
}

function description(status: number): string {
  return STANDARD_PROBLEMS[status]?.description ?? `Problem details (HTTP ${status})`;
}

/**
 * OpenAPI 3.1 generated from the same TypeBox schemas that validate
 * requests, with what they cannot say added here once for every route: the
 * problem answers any route can give, the headers every answer carries, the
 * public routes. Registered before any route so that every route is
 * collected; a domain adds its own shared schemas. `spectral lint` (spectral:oas and the OWASP API ruleset, see
 * .spectral.yaml) passes on it without errors or warnings.
 */
export const openapiPlugin = fp(
  async (app, options: { maxDocumentBytes: number }) => {
    app.addSchema(Problem);
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Documents and orders service',
          description:
            'Immutable documents (any bytes, read whole or by range, cached) and order intake (deduplicated, published as CloudEvents). ' +
            'Errors are RFC 9457 problem details with a stable code. With AUTH_MODE=api-key every operation but the probes needs ' +
            '`Authorization: Bearer <key>` and is rate-limited per tenant.',
          version: '1.0.0',
        },
        tags: [
          { name: 'documents', description: 'Immutable documents: create, read (whole, by range, conditionally), delete' },
          {
            name: 'uploads',
            description:
              'Resumable uploads (tus 1.0 and the IETF draft): created on POST /documents or PUT /documents/{id}, continued on any instance from the bytes stored',
          },
          { name: 'orders', description: 'Order intake: accepted once, published to the order-events topic' },
          { name: 'operations', description: 'Probes for load balancers and orchestrators; no key needed' },
        ],
        components: {
          securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key of the tenant (AUTH_MODE=api-key)' } },
        },
        security: [{ apiKey: [] }],
      },
      // Fastify serves a HEAD for every GET: documented, as served.
      exposeHeadRoutes: true,
      transform: transformRoute(options.maxDocumentBytes),
      transformObject: (document) =>
        'openapiObject' in document ? transformDocument(document.openapiObject, options.maxDocumentBytes) : document.swaggerObject,
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    });
    app.get('/openapi.json', { schema: { hide: true }, config: { public: true, shedding: false } }, async (_request, reply) => {
      reply.header('cache-control', OPENAPI_CACHE_CONTROL);
      return app.swagger();
    });
  },
  { name: 'openapi', fastify: '5.x' },
);
