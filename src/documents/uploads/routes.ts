import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { Type } from 'typebox';
import { Errors } from '../../errors.ts';
import { problems } from '../../http/schemas.ts';
import { parseIdempotencyKey } from '../../idempotency/idempotency-key.ts';
import { DocumentMetadataRef } from '../schemas.ts';
import {
  checkBodyType,
  contentLength,
  discoveryHeaders,
  hasBody,
  parseAppend,
  parseCreation,
  protocolOf,
  stateHeaders,
  TUS_VERSION,
} from './protocols.ts';
import type { Protocol, ResumableUploads } from './resumable-uploads.ts';
import type { Upload } from './upload-records.ts';
import { AppendHeaders, UploadRequestHeaders } from './schemas.ts';

/** Upload ids are random UUIDs. */
const UploadParams = Type.Object({
  uploadId: Type.String({
    pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$',
    description: 'The id in the Location of the creation',
  }),
});
/** Any other id is an upload that does not exist: 404, as for an unknown or another tenant's. */
const unknownUpload = () => new Errors.UploadNotFound('of that id');

/**
 * A request the route schema refuses: a path that is no upload id is an
 * unknown upload (404); a header (Upload-Offset missing) is a malformed
 * request (400), as protocols.ts answers it.
 */
const schemaError = (errors: FastifySchemaValidationError[], dataVar: string): Error => {
  if (dataVar === 'params') return unknownUpload();
  const [first] = errors;
  const missing = first?.params.missingProperty;
  return new Errors.InvalidUploadRequest(
    missing === 'upload-offset' ? 'an append needs Upload-Offset' : `${String(missing ?? first?.instancePath.slice(1) ?? 'a header')} is missing or malformed`,
  );
};

function bodyOf(request: FastifyRequest): Readable | undefined {
  return request.body instanceof Readable ? request.body : undefined;
}

/** The protocol of a request about an upload: its own headers say, and for HEAD and DELETE without them, the upload's. */
function speaks(request: FastifyRequest, reply: FastifyReply): Protocol | undefined {
  const protocol = protocolOf(request.headers);
  if (protocol) announce(reply, protocol);
  return protocol;
}

/** Every answer in tus names its version, errors included. */
function announce(reply: FastifyReply, protocol: Protocol): void {
  if (protocol === 'tus') reply.header('tus-resumable', TUS_VERSION);
}

/** An answer without a body (the status and headers say it all). */
function empty(reply: FastifyReply, status: number) {
  // Explicit, so that Node need not close the connection to end an answer (a HEAD's) it cannot chunk.
  if (status !== 204) reply.header('content-length', '0');
  return reply.code(status).send();
}

/**
 * The answer to the request that completed an upload: tus 204 (the upload
 * is done; Content-Location and ETag name the document), IETF the answer of
 * the create itself, with Upload-Complete.
 */
function sendUpload(reply: FastifyReply, protocol: Protocol, upload: Upload, maxBytes: number, created = false) {
  reply.headers(stateHeaders(protocol, upload, maxBytes));
  if (upload.state === 'COMPLETED' && protocol === 'ietf' && upload.result) {
    return reply.code(upload.result.statusCode).header('location', `/documents/${upload.documentId}`).send(upload.result.metadata);
  }
  return empty(reply, created ? 201 : 204);
}

/**
 * A creation on POST /documents or PUT /documents/{id} that speaks one of
 * the protocols: the upload is created (once per Idempotency-Key), and a
 * body it carries is its first append.
 */
export async function createUpload(uploads: ResumableUploads, request: FastifyRequest, reply: FastifyReply, protocol: Protocol, pathId?: string) {
  announce(reply, protocol);
  const creation = parseCreation(protocol, request.headers);
  if (pathId !== undefined && creation.documentId !== undefined && creation.documentId !== pathId) {
    throw new Errors.InvalidUploadRequest('Upload-Metadata names another documentId than the path');
  }
  const documentId = pathId ?? creation.documentId;
  const { upload, replayed } = await uploads.create(request.tenant, {
    protocol,
    route: documentId === undefined ? 'POST' : 'PUT',
    ...(documentId !== undefined ? { documentId } : {}),
    contentType: creation.contentType,
    ...(creation.metadata !== undefined ? { metadata: creation.metadata } : {}),
    ...(creation.length !== undefined ? { length: creation.length } : {}),
    ...(creation.reprSha256 ? { reprSha256: creation.reprSha256 } : {}),
    ...(creation.retainUntil !== undefined ? { retainUntil: creation.retainUntil } : {}),
    idempotencyKey: parseIdempotencyKey(request.headers['idempotency-key']),
  });
  // Set before the body is read: an answer that fails mid-body still says where to resume.
  reply.header('location', `/uploads/${upload.uploadId}`);
  if (replayed) reply.header('idempotent-replayed', 'true');
  const appends = !replayed && upload.state === 'OPEN' && (hasBody(request.headers) || creation.complete === true);
  if (!appends) return sendUpload(reply, protocol, upload, uploads.maxBytes, true);
  if (hasBody(request.headers) && protocol === 'tus') checkBodyType(protocol, request.headers);
  const appended = await uploads.append(request.tenant, upload.uploadId, {
    offset: 0,
    body: bodyOf(request),
    declaredLength: contentLength(request.headers),
    ...(creation.complete !== undefined ? { complete: creation.complete } : {}),
    ...(creation.digest ? { digest: creation.digest } : {}),
  });
  return sendUpload(reply, protocol, appended, uploads.maxBytes, appended.state !== 'COMPLETED' || protocol === 'tus');
}

const STATE_HEADERS = ['Upload-Offset', 'Upload-Length', 'Upload-Complete', 'Upload-Expires', 'Upload-Limit', 'Content-Location', 'Tus-Resumable'] as const;

export type UploadRoutesOptions = { uploads: ResumableUploads; uploadMinBytesPerSecond: number };

/** The upload resource: HEAD (its offset), PATCH (append), DELETE (cancel), and OPTIONS (what is supported). */
export const uploadRoutes: FastifyPluginAsyncTypebox<UploadRoutesOptions> = async (app, { uploads, uploadMinBytesPerSecond }) => {
  // An append is bytes: handed over as the stream they are; its content type is checked by protocol.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  // tus: every answer names the version, those refused before a handler runs too (an id that is none, a header missing).
  app.addHook('onRequest', async (request, reply) => {
    const tus = request.headers['tus-resumable'];
    if (typeof tus === 'string' && tus.trim() === TUS_VERSION) announce(reply, 'tus');
  });
  const { maxBytes } = uploads;

  app.route({
    // A list, not 'HEAD': @fastify/swagger leaves a route of method 'HEAD' (Fastify's own for every GET) out of the document.
    method: ['HEAD'],
    url: '/uploads/:uploadId',
    schemaErrorFormatter: schemaError,
    config: { openapi: { responseHeaders: { 200: [...STATE_HEADERS], 204: [...STATE_HEADERS] } } },
    schema: {
      operationId: 'headUpload',
      summary: 'The offset of a resumable upload: the bytes stored, on any instance',
      description:
        'Upload-Offset is what S3 holds for the upload, whichever instance took the bytes: resume from it. tus answers 200, the IETF draft 204. ' +
        'A completed upload answers offset = length with the Content-Location of its document until it expires; one that failed, its problem.',
      tags: ['uploads'],
      params: UploadParams,
      headers: UploadRequestHeaders,
      response: { 200: Type.Null(), 204: Type.Null(), ...problems(400, 401, 404, 409, 410, 412, 429, 503) },
    },
    handler: async (request, reply) => {
      const { uploadId } = request.params;
      const sent = speaks(request, reply);
      const upload = await uploads.status(request.tenant, uploadId);
      const protocol = sent ?? upload.protocol;
      announce(reply, protocol);
      reply.headers(stateHeaders(protocol, upload, maxBytes));
      return empty(reply, protocol === 'tus' ? 200 : 204);
    },
  });

  app.patch(
    '/uploads/:uploadId',
    {
      schemaErrorFormatter: schemaError,
      config: {
        bodyBytesPerSecond: uploadMinBytesPerSecond,
        accepts: 'an append takes application/offset+octet-stream (tus) or application/partial-upload (IETF)',
        openapi: { binaryBody: true, responseHeaders: { 200: ['Location', 'ETag', ...STATE_HEADERS], 201: ['Location', 'ETag', ...STATE_HEADERS], 204: [...STATE_HEADERS, 'ETag'] } },
      },
      schema: {
        operationId: 'appendUpload',
        summary: 'Append bytes to a resumable upload at its offset',
        description:
          'tus: Content-Type application/offset+octet-stream; the upload completes when its Upload-Length is reached. IETF: application/partial-upload ' +
          'with Upload-Complete. Upload-Offset must be the upload\'s (else 409 with the right one). Each part stored is durable at once: a cut ' +
          'connection or a lost instance costs the bytes after it. The append that completes the upload commits the document: tus 204 with ' +
          'Content-Location and ETag, IETF the document\'s 201 (200 for a PUT of identical content). Upload-Checksum (tus, sha256) or ' +
          'Content-Digest (sha-256): the bytes must match (460 / 400), or nothing of them is stored.',
        tags: ['uploads'],
        params: UploadParams,
        headers: AppendHeaders,
        response: {
          200: DocumentMetadataRef,
          201: DocumentMetadataRef,
          204: Type.Null(),
          ...problems(400, 401, 404, 408, 409, 410, 412, 413, 415, 429, 460, 503),
        },
      },
    },
    async (request, reply) => {
      const { uploadId } = request.params;
      const protocol = speaks(request, reply);
      if (!protocol) throw Object.assign(new Errors.UnsupportedUploadVersion('6, 7, 8'), { headers: { 'tus-version': TUS_VERSION } });
      checkBodyType(protocol, request.headers);
      const append = parseAppend(protocol, request.headers);
      const upload = await uploads.append(request.tenant, uploadId, {
        offset: append.offset,
        body: bodyOf(request),
        declaredLength: contentLength(request.headers),
        ...(append.complete !== undefined ? { complete: append.complete } : {}),
        ...(append.length !== undefined ? { length: append.length } : {}),
        ...(append.digest ? { digest: append.digest } : {}),
      });
      return sendUpload(reply, protocol, upload, maxBytes);
    },
  );

  app.delete(
    '/uploads/:uploadId',
    {
      schemaErrorFormatter: schemaError,
      config: { openapi: { responseHeaders: { 204: ['Tus-Resumable'] } } },
      schema: {
        operationId: 'cancelUpload',
        summary: 'Cancel a resumable upload: its stored bytes are removed at once',
        description: '204, then 404 for it. A completed upload is left as it is (its document stays; DELETE /documents/{id} deletes that).',
        tags: ['uploads'],
        params: UploadParams,
        headers: UploadRequestHeaders,
        response: { 204: Type.Null(), ...problems(400, 401, 404, 410, 412, 429, 503) },
      },
    },
    async (request, reply) => {
      const { uploadId } = request.params;
      speaks(request, reply);
      await uploads.cancel(request.tenant, uploadId);
      return empty(reply, 204);
    },
  );

  for (const url of ['/uploads', '/documents']) {
    app.options(
      url,
      {
        config: { public: true, openapi: { responseHeaders: { 204: ['Tus-Resumable'] } } },
        schema: {
          operationId: url === '/uploads' ? 'discoverUploads' : 'discoverDocumentUploads',
          summary: 'What resumable uploads this server supports (tus discovery; the IETF draft\'s Upload-Limit)',
          description: `Tus-Version ${TUS_VERSION}, Tus-Extension, Tus-Max-Size (MAX_DOCUMENT_BYTES), Tus-Checksum-Algorithm sha256, Accept-Patch, Upload-Limit.`,
          tags: ['uploads'],
          response: { 204: Type.Null() },
        },
      },
      async (_request, reply) => empty(reply.headers(discoveryHeaders(maxBytes)), 204),
    );
  }
};
