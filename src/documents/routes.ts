import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { Errors } from '../errors.ts';
import { problems } from '../http/schemas.ts';
import { parseIdempotencyKey } from '../idempotency/idempotency-key.ts';
import { declaredDigests } from './content-digest.ts';
import { DOCUMENT_TYPES, type CreateAnswer, type DocumentService, type Found, type NewDocument } from './document-service.ts';
import { describeBytes } from './incoming-body.ts';
import { preconditionFailed, preconditionsOf } from './preconditions.ts';
import { CACHE_NAME, planRead, representationOf, type ReadPlan } from './representation.ts';
import { protocolOf } from './uploads/protocols.ts';
import type { ResumableUploads } from './uploads/resumable-uploads.ts';
import { createUpload } from './uploads/routes.ts';
import {
  BinaryContent,
  DocumentConditionHeaders,
  DocumentLinkBody,
  DocumentMetadata,
  DocumentMetadataRef,
  DocumentParams,
  DocumentPutHeaders,
  DocumentReadHeaders,
  DocumentWriteHeaders,
  type WholeDocument,
} from './schemas.ts';

/** A bad id in the path is its own 400, not a generic validation failure. */
const invalidId = () => new Errors.InvalidDocumentId();

/** The body as the service reads it: the request stream itself, never buffered here. */
function newDocument(request: FastifyRequest): NewDocument {
  const length = request.headers['content-length'];
  return {
    body: request.body instanceof Readable ? request.body : undefined,
    contentType: request.headers['content-type'],
    contentEncoding: request.headers['content-encoding'],
    declaredLength: length === undefined ? undefined : Number(length),
    digests: declaredDigests(request.headers),
    retainUntil: singleHeader(request.headers['retain-until']),
  };
}

/** A header that may be sent once; sent twice, it is no header of ours (400). */
function singleHeader(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) throw new Errors.InvalidRetainUntil('a single value');
  return value;
}

function sendCreated(reply: FastifyReply, answer: CreateAnswer) {
  reply
    .code(answer.statusCode)
    .header('location', `/documents/${answer.metadata.id}`)
    .header('etag', representationOf(answer.metadata).etag);
  if (answer.replayed) reply.header('idempotent-replayed', 'true');
  return answer.metadata;
}

/**
 * Sets the status and headers of a read: 304, 412 or 416 (thrown), or
 * 200/206. Headers describing the document are set only here, once nothing
 * can fail any more, so that an error answered instead never carries them.
 */
function describe(reply: FastifyReply, plan: ReadPlan, metadata: DocumentMetadata, cacheStatus: string): void {
  if (plan.kind === 'precondition-failed') throw preconditionFailed(plan.conditions, metadata.id);
  if (plan.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${metadata.size}`);
    throw new Errors.RangeNotSatisfiable(metadata.size);
  }
  reply.headers(representationOf(metadata).headers).header('cache-status', `${CACHE_NAME}; ${cacheStatus}`);
  switch (plan.kind) {
    case 'not-modified':
      reply.code(304);
      return;
    case 'whole':
      reply.type(metadata.contentType).header('content-length', metadata.size);
      return;
    case 'slice':
      reply
        .code(206)
        .type(metadata.contentType)
        .header('content-range', `bytes ${plan.start}-${plan.end}/${metadata.size}`)
        .header('content-length', plan.end - plan.start + 1);
  }
}

/** Whether the answer has a body at all. */
function withBody(request: FastifyRequest, plan: ReadPlan): plan is Extract<ReadPlan, { kind: 'whole' | 'slice' }> {
  return request.method !== 'HEAD' && (plan.kind === 'whole' || plan.kind === 'slice');
}

function sendWhole(request: FastifyRequest, reply: FastifyReply, document: WholeDocument, cacheStatus: string) {
  const plan = planRead(request.method, request.headers, document.metadata);
  describe(reply, plan, document.metadata, cacheStatus);
  if (!withBody(request, plan)) return reply.send();
  return reply.send(plan.kind === 'slice' ? document.content.subarray(plan.start, plan.end + 1) : document.content);
}

/** A GET that takes the whole document as it is: no Range, no conditions, not HEAD. Only such a GET is redirected. */
function plainGet(request: FastifyRequest): boolean {
  const { headers } = request;
  return (
    request.method === 'GET' &&
    headers.range === undefined &&
    headers['if-match'] === undefined &&
    headers['if-none-match'] === undefined &&
    headers['if-modified-since'] === undefined &&
    headers['if-unmodified-since'] === undefined &&
    headers['if-range'] === undefined
  );
}

function sizeOf(found: Found): number {
  return found.kind === 'whole' ? found.document.metadata.size : found.metadata.size;
}

async function sendFound(service: DocumentService, request: FastifyRequest, reply: FastifyReply, found: Found) {
  if (found.kind === 'whole') return sendWhole(request, reply, found.document, found.cacheStatus);
  const plan = planRead(request.method, request.headers, found.metadata);
  // Opened before any header is set: a failure to open it is a plain error answer.
  const stream = withBody(request, plan) ? await service.stream(found, plan.kind === 'slice' ? plan : undefined) : undefined;
  describe(reply, plan, found.metadata, found.cacheStatus);
  return reply.send(stream);
}

export type DocumentRoutesOptions = {
  service: DocumentService;
  uploads: ResumableUploads;
  maxBytes: number;
  uploadMinBytesPerSecond: number;
  /** A plain GET of a document in S3 this large or larger answers 307 to a direct link; undefined: never. */
  redirectMinBytes?: number | undefined;
};

type App = Parameters<FastifyPluginAsyncTypebox<DocumentRoutesOptions>>[0];

const CREATED_HEADERS = ['Location', 'ETag', 'Idempotent-Replayed'] as const;
const READ_HEADERS = ['ETag', 'Accept-Ranges', 'Repr-Digest', 'Cache-Status'] as const;

const postSchema = {
  operationId: 'createDocument',
  summary: 'Create a document with a server-made UUIDv7 id',
  description:
    'Stores the body byte for byte with its Content-Type, streamed (up to MAX_DOCUMENT_BYTES). With an Idempotency-Key, ' +
    'a retry with the same body answers the original 201 (Idempotent-Replayed); another body with it is 422. ' +
    'Content-Digest or Repr-Digest (sha-256 or sha-512), when sent, must match the body. A Content-Encoding other than identity: 415.',
  tags: ['documents'],
  headers: DocumentWriteHeaders,
  response: { 201: DocumentMetadataRef, ...problems(400, 401, 408, 409, 413, 415, 422, 429, 503) },
};

const putSchema = {
  operationId: 'putDocument',
  summary: 'Create a document with a client-chosen id (a retry with the same content is safe)',
  description:
    '201 when created, 200 when the same content is already there (a retry), 409 for other content or a deleted id: documents never change. ' +
    'If-None-Match: * creates only: 412 when the id holds a document, these bytes included. If-Match (strong) and If-Unmodified-Since: 412 unless they hold.',
  tags: ['documents'],
  params: DocumentParams,
  headers: DocumentPutHeaders,
  response: { 200: DocumentMetadataRef, 201: DocumentMetadataRef, ...problems(400, 401, 408, 409, 412, 413, 415, 429, 503) },
};

export const getSchema = {
  operationId: 'getDocument',
  summary: 'Read a document: its exact bytes, Content-Type and ETag; a Range of it',
  description:
    'The exact bytes with the stored Content-Type. If-None-Match with the ETag: 304; If-Match without it, or If-Unmodified-Since before the creation: 412. ' +
    'One Range (bytes=a-b, a-, -n): 206 with Content-Range, or 416 past the end; If-Range limits the Range to the ETag. Cache-Status says which layer answered.',
  tags: ['documents'],
  params: DocumentParams,
  headers: DocumentReadHeaders,
  response: {
    200: BinaryContent,
    206: BinaryContent,
    304: Type.Null(),
    307: Type.Null({ description: 'DOCUMENT_REDIRECT_MIN_BYTES set, and a plain GET of a document that large in S3: Location is a direct link to its bytes' }),
    ...problems(400, 401, 404, 412, 416, 429, 503),
  },
};

const linkSchema = {
  operationId: 'getDocumentLink',
  summary: 'A short-lived direct link to a document\'s bytes, which do not pass through the service',
  description:
    'A URL (an S3 presigned GET) valid until expiresAt: DOCUMENT_LINK_TTL_SECONDS from now rounded down to a bucket of min(60 s, TTL / 5), so between TTL minus a bucket and TTL, and the same URL for every request within a bucket; serving the exact bytes with the stored Content-Type and Content-Disposition: attachment, ' +
    'with the size and SHA-256 to check the download against. A deleted document\'s link stops working by its expiry at the latest. ' +
    'Content small enough to be stored with the metadata has no link: 409 NO_DIRECT_LINK, GET the document instead.',
  tags: ['documents'],
  params: DocumentParams,
  response: { 200: DocumentLinkBody, ...problems(400, 401, 404, 409, 429, 503) },
};

const metadataSchema = {
  operationId: 'getDocumentMetadata',
  summary: 'Read the metadata of a document',
  description: 'id, status, Content-Type, size, SHA-256 and creation time, without the content.',
  tags: ['documents'],
  params: DocumentParams,
  response: { 200: DocumentMetadata, ...problems(400, 401, 404, 429, 503) },
};

const deleteSchema = {
  operationId: 'deleteDocument',
  summary: 'Delete a document (idempotent; a deleted document is never served again)',
  description:
    '204 once the deletion is in DynamoDB and in Redis (else 503: retry, it finishes the job); again 204 for a deleted one; then every GET is 404. ' +
    'If-Match (strong), If-None-Match or If-Unmodified-Since that does not hold for the document: 412, nothing deleted.',
  tags: ['documents'],
  params: DocumentParams,
  headers: DocumentConditionHeaders,
  response: { 204: Type.Null(), ...problems(400, 401, 404, 409, 412, 429, 503) },
};

/** Documents are opaque bytes of any type: the body is handed to the service as the stream it is, and read there as it arrives. */
function takeBodiesAsStreams(app: App): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
}

/** POST and PUT: one-request creates, or resumable ones (Tus-Resumable, Upload-Draft-Interop-Version: uploads/routes.ts). */
function createRoutes(app: App, { service, uploads, maxBytes, uploadMinBytesPerSecond }: DocumentRoutesOptions): void {
  const config = { bodyBytesPerSecond: uploadMinBytesPerSecond, accepts: DOCUMENT_TYPES };
  // A declared length over the limit is refused before anything else, before a byte is read.
  const refuseOversized = (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) => {
    const length = request.headers['content-length'];
    done(length !== undefined && Number(length) > maxBytes ? new Errors.PayloadTooLarge(describeBytes(maxBytes)) : undefined);
  };

  app.post(
    '/documents',
    { config: { ...config, openapi: { binaryBody: true, responseHeaders: { 201: [...CREATED_HEADERS] } } }, onRequest: refuseOversized, schema: postSchema },
    async (request, reply) => {
      const protocol = protocolOf(request.headers);
      if (protocol) return createUpload(uploads, request, reply, protocol);
      const idempotencyKey = parseIdempotencyKey(request.headers['idempotency-key']);
      return sendCreated(reply, await service.post(request.tenant, newDocument(request), idempotencyKey));
    },
  );

  app.put(
    '/documents/:id',
    {
      config: { ...config, openapi: { binaryBody: true, responseHeaders: { 200: ['Location', 'ETag'], 201: ['Location', 'ETag'] } } },
      onRequest: refuseOversized,
      schemaErrorFormatter: invalidId,
      schema: putSchema,
    },
    async (request, reply) => {
      const protocol = protocolOf(request.headers);
      if (protocol) return createUpload(uploads, request, reply, protocol, request.params.id);
      return sendCreated(reply, await service.put(request.tenant, request.params.id, newDocument(request), preconditionsOf(request.headers)));
    },
  );
}

/** GET and HEAD of a document's bytes (or, large enough, a 307 to its direct link), and of its metadata. */
function readRoutes(app: App, service: DocumentService, redirectMinBytes: number | undefined): void {
  // Only when redirects are on does a GET look at its size and headers first.
  const redirectAt = (request: FastifyRequest) => (redirectMinBytes !== undefined && plainGet(request) ? redirectMinBytes : undefined);
  const redirected = async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, found: Found) => {
    const link = await service.linkInstead(request.tenant, found);
    if (!link) return sendFound(service, request, reply, found);
    return reply.code(307).header('location', link.url).send();
  };
  app.route({
    method: ['GET', 'HEAD'],
    url: '/documents/:id',
    schemaErrorFormatter: invalidId,
    config: {
      openapi: {
        responseHeaders: { 200: [...READ_HEADERS], 206: [...READ_HEADERS, 'Content-Range'], 304: [...READ_HEADERS], 307: ['Location'], 416: ['Content-Range'] },
      },
    },
    schema: getSchema,
    handler: (request, reply) => {
      const minBytes = redirectAt(request);
      // A document in process memory is answered without a single promise.
      const hot = service.readHot(request.tenant, request.params.id);
      if (hot && (minBytes === undefined || hot.metadata.size < minBytes)) return sendWhole(request, reply, hot, 'hit');
      return service.read(request.tenant, request.params.id).then((found) =>
        minBytes !== undefined && sizeOf(found) >= minBytes ? redirected(request, reply, found) : sendFound(service, request, reply, found),
      );
    },
  });

  app.get(
    '/documents/:id/metadata',
    { schemaErrorFormatter: invalidId, config: { openapi: { responseHeaders: { 200: ['ETag'] } } }, schema: metadataSchema },
    async (request, reply) => {
      const metadata = await service.metadata(request.tenant, request.params.id);
      reply.header('etag', representationOf(metadata).etag);
      return metadata;
    },
  );
}

/** The direct link to a document's bytes: read rules (tenant, 404), and no byte through here. */
function linkRoute(app: App, service: DocumentService): void {
  app.get('/documents/:id/link', { schemaErrorFormatter: invalidId, schema: linkSchema }, (request) => service.link(request.tenant, request.params.id));
}

function deleteRoute(app: App, service: DocumentService): void {
  app.delete('/documents/:id', { schemaErrorFormatter: invalidId, schema: deleteSchema }, async (request, reply) => {
    await service.delete(request.tenant, request.params.id, preconditionsOf(request.headers));
    return reply.code(204).send(null);
  });
}

export const documentRoutes: FastifyPluginAsyncTypebox<DocumentRoutesOptions> = async (app, options) => {
  takeBodiesAsStreams(app);
  createRoutes(app, options);
  readRoutes(app, options.service, options.redirectMinBytes);
  linkRoute(app, options.service);
  deleteRoute(app, options.service);
};
