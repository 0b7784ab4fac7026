import { Type } from 'typebox';

// The request headers of resumable uploads, as the routes declare them: only
// strings, so that protocols.ts answers a malformed one with its own 400
// naming it. Their bounds are documented in http/openapi.ts.

const optional = (description: string) => Type.Optional(Type.String({ description }));

/** Which protocol a request speaks. */
export const ProtocolHeaders = {
  'tus-resumable': optional('tus: 1.0.0 (any other version: 412 with Tus-Version)'),
  'upload-draft-interop-version': optional('IETF draft "Resumable Uploads for HTTP": interop version 6, 7 or 8 (drafts -05 to -12)'),
};

/** A resumable creation on POST /documents or PUT /documents/{id}. */
export const CreationHeaders = {
  ...ProtocolHeaders,
  'upload-length': optional('The length of the document, when known (tus: this or Upload-Defer-Length is required)'),
  'upload-defer-length': optional('tus: 1, the length comes with a later PATCH'),
  'upload-metadata': optional('tus: key base64value pairs; filetype or contentType: the content type; documentId: a client id (rules of PUT)'),
  'upload-complete': optional('IETF: ?1 when the body is the whole document, ?0 when more follows'),
};

/** An append. */
export const AppendHeaders = Type.Object({
  ...ProtocolHeaders,
  'content-type': optional('tus: application/offset+octet-stream; IETF: application/partial-upload'),
  'upload-offset': Type.String({ description: 'The offset of the upload, as HEAD gives it' }),
  'upload-complete': optional('IETF: ?1 when this body ends the document'),
  'upload-length': optional('The length of the document (tus: once, when the creation deferred it)'),
  'upload-checksum': optional('tus: sha256 <base64>; the bytes must match, else 460 and nothing of them is stored'),
  'content-digest': optional('RFC 9530 sha-256 of this body; the bytes must match, else 400 and nothing of them is stored'),
});

export const UploadRequestHeaders = Type.Object(ProtocolHeaders);
