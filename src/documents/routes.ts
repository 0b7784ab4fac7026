import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { Errors } from '../errors.ts';
import { problems } from '../http/schemas.ts';
import { parseIdempotencyKey } from '../idempotency/idempotency-key.ts';
import type { CreateAnswer, DocumentService } from './document-service.ts';
import type { StoredDocument } from './document-store.ts';
import {
  BinaryContent,
  DocumentMetadata,
  DocumentMetadataRef,
  DocumentParams,
  DocumentReadHeaders,
  DocumentWriteHeaders,
} from './schemas.ts';

const CACHE_NAME = 'docsvc';

/** A bad id in the path is its own 400, not a generic validation failure. */
const invalidId = () => new Errors.InvalidDocumentId();

function etagOf(checksum: string) {
  return `"${checksum}"`;
}

/** RFC 9110 If-None-Match: `*`, or a list of (weak or strong) tags. */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

function sendDocument(ifNoneMatch: string | undefined, reply: FastifyReply, document: StoredDocument, cacheStatus: string) {
  const etag = etagOf(document.metadata.checksum);
  reply.header('etag', etag).header('cache-status', `${CACHE_NAME}; ${cacheStatus}`);
  if (matches(ifNoneMatch, etag)) return reply.code(304).send(null);
  return reply.type(document.metadata.contentType).header('content-length', document.content.length).send(document.content);
}

function sendCreated(reply: FastifyReply, answer: CreateAnswer) {
  reply
    .code(answer.statusCode)
    .header('location', `/documents/${answer.metadata.id}`)
    .header('etag', etagOf(answer.metadata.checksum));
  if (answer.replayed) reply.header('idempotent-replayed', 'true');
  return answer.metadata;
}

export const documentRoutes: FastifyPluginAsyncTypebox<{ service: DocumentService; maxBytes: number }> = async (
  app,
  { service, maxBytes },
) => {
  // Documents are opaque bytes of any type: no parsing, only a size limit
  // that refuses an oversized body before it is buffered whole.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxBytes }, (_request, body, done) => done(null, body));

  app.post(
    '/documents',
    {
      schema: {
        summary: 'Create a document with a server-made UUIDv7 id',
        tags: ['documents'],
        headers: DocumentWriteHeaders,
        response: { 201: DocumentMetadataRef, ...problems(400, 401, 409, 413, 415, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const idempotencyKey = parseIdempotencyKey(request.headers['idempotency-key']);
      const answer = await service.post(
        request.tenant,
        { content: request.body as Buffer | undefined, contentType: request.headers['content-type'] },
        idempotencyKey,
      );
      return sendCreated(reply, answer);
    },
  );

  app.put(
    '/documents/:id',
    {
      schemaErrorFormatter: invalidId,
      schema: {
        summary: 'Create a document with a client-chosen id (a retry with the same content is safe)',
        tags: ['documents'],
        params: DocumentParams,
        response: { 200: DocumentMetadataRef, 201: DocumentMetadataRef, ...problems(400, 401, 409, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const answer = await service.put(request.tenant, request.params.id, {
        content: request.body as Buffer | undefined,
        contentType: request.headers['content-type'],
      });
      return sendCreated(reply, answer);
    },
  );

  app.get(
    '/documents/:id',
    {
      schemaErrorFormatter: invalidId,
      schema: {
        summary: 'Read a document: its exact bytes, Content-Type and ETag',
        tags: ['documents'],
        params: DocumentParams,
        headers: DocumentReadHeaders,
        response: { 200: BinaryContent, 304: Type.Null(), ...problems(400, 401, 404, 429, 503) },
      },
    },
    (request, reply) => {
      // A document in process memory is answered without a single promise.
      const hot = service.readHot(request.tenant, request.params.id);
      if (hot) return sendDocument(request.headers['if-none-match'], reply, hot, 'hit');
      return service
        .read(request.tenant, request.params.id)
        .then(({ document, cacheStatus }) => sendDocument(request.headers['if-none-match'], reply, document, cacheStatus));
    },
  );

  app.get(
    '/documents/:id/metadata',
    {
      schemaErrorFormatter: invalidId,
      schema: {
        summary: 'Read the metadata of a document',
        tags: ['documents'],
        params: DocumentParams,
        response: { 200: DocumentMetadata, ...problems(400, 401, 404, 429, 503) },
      },
    },
    async (request, reply) => {
      const metadata = await service.metadata(request.tenant, request.params.id);
      reply.header('etag', etagOf(metadata.checksum));
      return metadata;
    },
  );

  app.delete(
    '/documents/:id',
    {
      schemaErrorFormatter: invalidId,
      schema: {
        summary: 'Delete a document (idempotent; a deleted document is never served again)',
        tags: ['documents'],
        params: DocumentParams,
        response: { 204: Type.Null(), ...problems(400, 401, 404, 429, 503) },
      },
    },
    async (request, reply) => {
      await service.delete(request.tenant, request.params.id);
      return reply.code(204).send(null);
    },
  );
};
