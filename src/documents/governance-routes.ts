import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Errors } from '../errors.ts';
import { refuseUnlessJson } from '../http/json-body.ts';
import { queryValidator } from '../http/query-validator.ts';
import { problems } from '../http/schemas.ts';
import type { DocumentService } from './document-service.ts';
import { DocumentMetadataRef, DocumentParams, LegalHold, Listing, ListingQuery } from './schemas.ts';

export type GovernanceRoutesOptions = {
  service: DocumentService;
  /** Counts each change of a legal hold, by the state it set. */
  holdChanges: { inc(labels: { status: 'ON' | 'OFF' }): void };
};

/** What a tenant's compliance side asks of its documents: the listing, and legal holds. JSON, unlike the documents' bodies. */
export const governanceRoutes: FastifyPluginAsyncTypebox<GovernanceRoutesOptions> = async (app, { service, holdChanges }) => {
  // JSON only, as for orders: text/plain would reach the schema as a string.
  app.removeContentTypeParser('text/plain');

  app.get(
    '/documents',
    {
      validatorCompiler: queryValidator,
      schema: {
        operationId: 'listDocuments',
        summary: "List the tenant's active documents, newest first",
        description:
          'Pages of at most `limit` (1-1000, default 100). `next` is the cursor of the next page, absent on the last; a cursor is opaque, ' +
          'and only its tenant can use it (another gets 400 INVALID_CURSOR). A document whose DELETE answered is never listed. ' +
          'A page may hold fewer than `limit` items and still have a `next`.',
        tags: ['documents'],
        querystring: ListingQuery,
        response: { 200: Listing, ...problems(400, 401, 429, 503) },
      },
    },
    async (request) => service.list(request.tenant, request.query.limit ?? 100, request.query.cursor),
  );

  app.put(
    '/documents/:id/legal-hold',
    {
      onRequest: refuseUnlessJson,
      // A bad id is its own 400, as on every document route; a bad body, a validation failure.
      schemaErrorFormatter: (errors, dataVar) =>
        dataVar === 'params' ? new Errors.InvalidDocumentId() : Object.assign(new Error(`${dataVar} is invalid`), { validation: errors, validationContext: dataVar }),
      schema: {
        operationId: 'setLegalHold',
        summary: 'Place (ON) or lift (OFF) the legal hold of a document',
        description:
          'Idempotent. While ON, DELETE is 409 DOCUMENT_ON_LEGAL_HOLD. With AUTH_MODE=api-key only keys marked :legal-hold in API_KEYS ' +
          'may change a hold (others 403 FORBIDDEN); every change is logged with the key id. 404 for a deleted or unknown document.',
        tags: ['documents'],
        params: DocumentParams,
        body: LegalHold,
        response: { 200: DocumentMetadataRef, ...problems(400, 401, 403, 404, 415, 429, 503) },
      },
    },
    async (request) => {
      const { principal } = request;
      if (!principal.legalHold) throw new Errors.Forbidden('place or lift legal holds');
      const { status } = request.body;
      const metadata = await service.setLegalHold(request.tenant, request.params.id, status === 'ON');
      request.log.info({ audit: 'legal-hold', documentId: metadata.id, status, keyId: principal.keyId }, 'legal hold set');
      holdChanges.inc({ status });
      return metadata;
    },
  );
};
