import { Type, type Static } from 'typebox';
import { CreationHeaders } from './uploads/schemas.ts';

export const DOCUMENT_ID_PATTERN = '^[A-Za-z0-9_-]{1,128}$';

export const DocumentId = Type.String({ pattern: DOCUMENT_ID_PATTERN, description: 'UUIDv7 from POST, or chosen by the client with PUT' });

export const DocumentParams = Type.Object({ id: DocumentId });

export const DocumentMetadata = Type.Object(
  {
    id: DocumentId,
    status: Type.Literal('ACTIVE'),
    // As sent: a media type with any parameters, bounded by Node's 16 KiB of request headers.
    contentType: Type.String({ pattern: '^[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}', maxLength: 16_384 }),
    size: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, format: 'int64', description: 'Bytes' }),
    checksum: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the content, hex' }),
    createdAt: Type.String({ format: 'date-time', maxLength: 32 }),
    retainUntil: Type.Optional(Type.String({ format: 'date-time', maxLength: 32, description: 'Until when the document cannot be deleted (Retain-Until, or the tenant\'s default)' })),
    legalHold: Type.Optional(Type.Union([Type.Literal('ON'), Type.Literal('OFF')], { description: 'ON: the document cannot be deleted until the hold is lifted' })),
  },
  { $id: 'DocumentMetadata' },
);
export type DocumentMetadata = Static<typeof DocumentMetadata>;

export const DocumentMetadataRef = Type.Ref('DocumentMetadata');

export const DocumentLinkBody = Type.Object({
  url: Type.String({
    format: 'uri',
    maxLength: 65_536,
    description: 'GET it, without credentials, until expiresAt: the exact bytes, with the stored Content-Type and Content-Disposition: attachment',
  }),
  expiresAt: Type.String({ format: 'date-time', maxLength: 32, description: 'The url is refused after this' }),
  size: DocumentMetadata.properties.size,
  contentType: DocumentMetadata.properties.contentType,
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the bytes the url serves, hex: check the download against it' }),
});

export const DocumentWriteHeaders = Type.Object({
  // A resumable creation (uploads/): these headers make the create an upload.
  ...CreationHeaders,
  'content-type': Type.Optional(Type.String({ description: 'Stored and served back; default application/octet-stream' })),
  'idempotency-key': Type.Optional(
    Type.String({ description: 'POST only: 1-255 printable ASCII, bare or an RFC 8941 string' }),
  ),
  'content-digest': Type.Optional(
    Type.String({ description: 'RFC 9530, sha-256=:<base64>: and/or sha-512=:<base64>:; the body must match each, else 400 DIGEST_MISMATCH; naming neither: 400 INVALID_DIGEST' }),
  ),
  'repr-digest': Type.Optional(Type.String({ description: 'RFC 9530; checked like Content-Digest (bodies are stored as sent)' })),
  'retain-until': Type.Optional(
    // Printable ASCII only here: the service parses the time itself, and says what is wrong with it (400 INVALID_RETAIN_UNTIL).
    Type.String({ maxLength: 64, pattern: '^[\\x20-\\x7e]+$', description: 'An RFC 3339 date-time with an offset (Z or ±hh:mm): the document cannot be deleted before (409 DOCUMENT_RETAINED)' }),
  ),
});

export const LegalHold = Type.Object(
  { status: Type.Union([Type.Literal('ON'), Type.Literal('OFF')], { description: 'ON: deletes are refused until it is OFF again' }) },
  { additionalProperties: false },
);
export type LegalHold = Static<typeof LegalHold>;

export const ListingQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100, format: 'int32', description: 'Documents per page' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z0-9_-]+$', description: 'The next of the previous page' })),
  },
  { additionalProperties: false },
);

export const Listing = Type.Object({
  items: Type.Array(DocumentMetadataRef, { maxItems: 1000, description: 'The tenant\'s active documents, newest first' }),
  next: Type.Optional(Type.String({ maxLength: 1024, pattern: '^[A-Za-z0-9_-]+$', description: 'The cursor of the next page; absent on the last' })),
});

/** Conditional requests on a document (RFC 9110 §13): validated by the service, which answers 412 or 304. */
const Conditions = {
  'if-match': Type.Optional(Type.String({ description: 'ETags (strong comparison) or *: 412 unless one is the document\'s' })),
  'if-none-match': Type.Optional(Type.String({ description: 'ETags (weak comparison) or *: a read answers 304 when one is the document\'s, a write 412' })),
  'if-unmodified-since': Type.Optional(
    Type.String({ description: 'An HTTP-date (IMF-fixdate): 412 when the document was created after it; ignored with If-Match, or when it does not parse' }),
  ),
};

export const DocumentConditionHeaders = Type.Object(Conditions);

export const DocumentReadHeaders = Type.Object({
  ...Conditions,
  range: Type.Optional(Type.String({ description: 'One range: bytes=a-b, bytes=a- or bytes=-n (206); several get the whole document (200)' })),
  'if-range': Type.Optional(Type.String({ description: 'The ETag: the Range applies only while it matches' })),
});

export const DocumentPutHeaders = Type.Object({ ...DocumentWriteHeaders.properties, ...Conditions });

export const BinaryContent = {
  description: 'The exact bytes, with the stored Content-Type',
  content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
};

/** A document held whole in memory: inline content, or S3 content small enough to cache. */
export type WholeDocument = { metadata: DocumentMetadata; content: Buffer };
