import { ParseError, parseItem } from 'structured-headers';
import { Errors } from '../../errors.ts';
import { refuseContentCoding } from '../incoming-body.ts';
import { declaredDigests } from '../content-digest.ts';
import { DOCUMENT_ID_PATTERN } from '../schemas.ts';
import type { BodyDigest } from './append.ts';
import type { Protocol } from './resumable-uploads.ts';
import type { Upload } from './upload-records.ts';

// The two protocols of resumable uploads, as headers: what a request says
// (parsed here, each malformed header a 400 naming it) and what an answer
// carries. tus 1.0 (core, creation, creation-with-upload,
// creation-defer-length, termination, expiration, checksum with sha256)
// and the IETF draft "Resumable Uploads for HTTP" (interop versions 6-8:
// drafts -05 to -12, which differ in nothing a server must do differently
// beyond what is sent here for all of them).

type Headers = Record<string, string | string[] | undefined>;

export const TUS_VERSION = '1.0.0';
export const TUS_EXTENSIONS = 'creation,creation-with-upload,creation-defer-length,termination,expiration,checksum';
export const IETF_INTEROP_VERSIONS = [6, 7, 8] as const;
export const TUS_CONTENT_TYPE = 'application/offset+octet-stream';
export const IETF_CONTENT_TYPE = 'application/partial-upload';
const METADATA_MAX_LENGTH = 4096;

function single(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) throw new Errors.InvalidUploadRequest(`${name} may be sent only once`);
  return value;
}

/** Which protocol a request speaks, if any: a creation without either header is a one-request create. */
export function protocolOf(headers: Headers): Protocol | undefined {
  const tus = single(headers, 'tus-resumable');
  const ietf = single(headers, 'upload-draft-interop-version');
  if (tus !== undefined && ietf !== undefined) throw new Errors.InvalidUploadRequest('Tus-Resumable and Upload-Draft-Interop-Version: one protocol at a time');
  if (tus !== undefined) {
    if (tus.trim() !== TUS_VERSION) throw unsupportedVersion();
    return 'tus';
  }
  if (ietf !== undefined) {
    const version = sfInteger(ietf, 'Upload-Draft-Interop-Version');
    if (!(IETF_INTEROP_VERSIONS as readonly number[]).includes(version)) throw unsupportedVersion();
    return 'ietf';
  }
  return undefined;
}

function unsupportedVersion() {
  return Object.assign(new Errors.UnsupportedUploadVersion(IETF_INTEROP_VERSIONS.join(', ')), { headers: { 'tus-version': TUS_VERSION } });
}

function sfInteger(value: string, name: string): number {
  try {
    const [item] = parseItem(value);
    if (typeof item === 'number' && Number.isSafeInteger(item) && item >= 0) return item;
  } catch (error) {
    if (!(error instanceof ParseError)) throw error;
  }
  throw new Errors.InvalidUploadRequest(`${name} must be a non-negative integer`);
}

function sfBoolean(value: string, name: string): boolean {
  try {
    const [item] = parseItem(value);
    if (typeof item === 'boolean') return item;
  } catch (error) {
    if (!(error instanceof ParseError)) throw error;
  }
  throw new Errors.InvalidUploadRequest(`${name} must be ?0 or ?1`);
}

/** tus numbers: digits only. */
function tusInteger(value: string, name: string): number {
  const number = /^[0-9]{1,16}$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(number)) throw new Errors.InvalidUploadRequest(`${name} must be a non-negative integer`);
  return number;
}

function integer(protocol: Protocol, headers: Headers, name: string): number | undefined {
  const value = single(headers, name.toLowerCase());
  if (value === undefined) return undefined;
  return protocol === 'tus' ? tusInteger(value, name) : sfInteger(value, name);
}

/** `key base64value` pairs, comma-separated, each key once (tus Upload-Metadata). */
export function parseMetadata(value: string): Map<string, string> {
  if (value.length > METADATA_MAX_LENGTH) throw new Errors.InvalidUploadMetadata(`at most ${METADATA_MAX_LENGTH} characters`);
  const pairs = new Map<string, string>();
  for (const pair of value.split(',')) {
    const [key, encoded, ...more] = pair.trim().split(' ');
    if (!key || !/^[\x21-\x2b\x2d-\x7e]+$/.test(key) || more.length > 0) throw new Errors.InvalidUploadMetadata(`"${pair.trim().slice(0, 64)}" is not a pair`);
    if (pairs.has(key)) throw new Errors.InvalidUploadMetadata(`${key} twice`);
    if (encoded !== undefined && (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 !== 0)) {
      throw new Errors.InvalidUploadMetadata(`the value of ${key} is not base64`);
    }
    pairs.set(key, Buffer.from(encoded ?? '', 'base64').toString('utf8'));
  }
  return pairs;
}

/** What a creation request asks for, beyond its body. */
export type Creation = {
  protocol: Protocol;
  contentType: string | undefined;
  documentId: string | undefined;
  metadata: string | undefined;
  length: number | undefined;
  /** IETF Upload-Complete; tus: undefined. */
  complete: boolean | undefined;
  reprSha256: Buffer | undefined;
  /** A Content-Digest of the creation request's own body. */
  digest: BodyDigest | undefined;
  /** Retain-Until as sent: the header, else `retainUntil` in Upload-Metadata (what a tus client can always set). */
  retainUntil: string | undefined;
};

export function parseCreation(protocol: Protocol, headers: Headers): Creation {
  refuseContentCoding(headers['content-encoding']);
  const rawMetadata = single(headers, 'upload-metadata');
  const metadata = rawMetadata === undefined ? new Map<string, string>() : parseMetadata(rawMetadata);
  const documentId = metadata.get('documentId');
  if (documentId !== undefined && !new RegExp(DOCUMENT_ID_PATTERN).test(documentId)) throw new Errors.InvalidDocumentId();
  const sentType = single(headers, 'content-type');
  const bodyType = protocol === 'tus' ? TUS_CONTENT_TYPE : IETF_CONTENT_TYPE;
  const contentType =
    metadata.get('contentType') ?? metadata.get('filetype') ?? (sentType !== undefined && !sentType.startsWith(bodyType) && protocol === 'ietf' ? sentType : undefined);

  let length = integer(protocol, headers, 'Upload-Length');
  let complete: boolean | undefined;
  if (protocol === 'tus') {
    const deferred = single(headers, 'upload-defer-length');
    if (deferred !== undefined && deferred.trim() !== '1') throw new Errors.InvalidUploadRequest('Upload-Defer-Length must be 1');
    if ((deferred === undefined) === (length === undefined)) throw new Errors.InvalidUploadRequest('a tus creation needs Upload-Length or Upload-Defer-Length: 1 (one of them)');
  } else {
    const value = single(headers, 'upload-complete');
    if (value === undefined) throw new Errors.InvalidUploadRequest('a resumable creation needs Upload-Complete');
    complete = sfBoolean(value, 'Upload-Complete');
    const declared = contentLength(headers);
    if (complete && declared !== undefined) {
      if (length !== undefined && length !== declared) throw new Errors.UploadLengthMismatch(`Upload-Length ${length} and Content-Length ${declared} disagree`);
      length = declared;
    }
  }
  // An upload's hash is resumed across requests and instances: sha-256 only.
  const digests = declaredDigests(headers, ['sha-256']);
  const repr = digests.find((digest) => digest.field === 'Repr-Digest')?.value;
  const content = digests.find((digest) => digest.field === 'Content-Digest')?.value;
  return {
    protocol,
    contentType,
    documentId,
    metadata: rawMetadata,
    length,
    complete,
    reprSha256: repr,
    digest: content ? { expectedSha256: content, field: 'Content-Digest' } : undefined,
    retainUntil: single(headers, 'retain-until') ?? metadata.get('retainUntil'),
  };
}

export function contentLength(headers: Headers): number | undefined {
  const value = single(headers, 'content-length');
  return value === undefined ? undefined : Number(value);
}

/** Whether a request carries a body at all. */
export function hasBody(headers: Headers): boolean {
  const length = contentLength(headers);
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length > 0);
}

/** The content type an append's body must have. */
export function checkBodyType(protocol: Protocol, headers: Headers): void {
  const expected = protocol === 'tus' ? TUS_CONTENT_TYPE : IETF_CONTENT_TYPE;
  const sent = single(headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (sent !== expected) throw new Errors.UnsupportedMediaType(`Content-Type ${JSON.stringify(sent ?? '')}`, `an append takes ${expected}`);
}

/** What an append (PATCH) request says. */
export type Appending = { offset: number; complete: boolean | undefined; length: number | undefined; digest: BodyDigest | undefined };

export function parseAppend(protocol: Protocol, headers: Headers): Appending {
  refuseContentCoding(headers['content-encoding']);
  const offset = integer(protocol, headers, 'Upload-Offset');
  if (offset === undefined) throw new Errors.InvalidUploadRequest('an append needs Upload-Offset');
  const length = integer(protocol, headers, 'Upload-Length');
  let complete: boolean | undefined;
  if (protocol === 'ietf') {
    const value = single(headers, 'upload-complete');
    if (value === undefined) throw new Errors.InvalidUploadRequest('an append needs Upload-Complete');
    complete = sfBoolean(value, 'Upload-Complete');
  }
  return { offset, complete, length, digest: checksumOf(protocol, headers) };
}

/** tus Upload-Checksum (sha256 only), or a Content-Digest with sha-256: the append's own bytes must match it. */
function checksumOf(protocol: Protocol, headers: Headers): BodyDigest | undefined {
  const checksum = protocol === 'tus' ? single(headers, 'upload-checksum') : undefined;
  if (checksum !== undefined) {
    const [algorithm, encoded, ...more] = checksum.trim().split(' ');
    if (algorithm !== 'sha256') throw new Errors.UnsupportedChecksumAlgorithm();
    const expected = Buffer.from(encoded ?? '', 'base64');
    if (more.length > 0 || expected.length !== 32 || expected.toString('base64') !== encoded) throw new Errors.InvalidUploadRequest('Upload-Checksum is "sha256 <base64 of 32 bytes>"');
    return { expectedSha256: expected, field: 'Upload-Checksum' };
  }
  const content = declaredDigests(headers, ['sha-256']).find((digest) => digest.field === 'Content-Digest');
  return content ? { expectedSha256: content.value, field: 'Content-Digest' } : undefined;
}

/** RFC 9110 HTTP-date. */
function httpDate(epochMs: number): string {
  return new Date(epochMs).toUTCString();
}

/** Upload-Limit (IETF): the largest upload, and how long this one lives (max-age; -05 named it expires). */
export function uploadLimit(maxBytes: number, upload?: Upload, now = Date.now()): string {
  const limits = [`max-size=${maxBytes}`];
  if (upload) {
    const seconds = Math.max(0, Math.floor((upload.expiresAt - now) / 1000));
    limits.push(`max-age=${seconds}`, `expires=${seconds}`);
  }
  return limits.join(', ');
}

/** The headers every answer about an upload carries, in its protocol: where it is, how far, until when. */
export function stateHeaders(protocol: Protocol, upload: Upload, maxBytes: number): Record<string, string> {
  const done = upload.state === 'COMPLETED';
  const headers: Record<string, string> = {
    'upload-offset': String(upload.offset),
    'content-location': `/documents/${upload.documentId}`,
    'cache-control': 'no-store',
  };
  if (upload.length !== undefined) headers['upload-length'] = String(upload.length);
  else if (done) headers['upload-length'] = String(upload.offset);
  if (protocol === 'tus') {
    if (upload.length === undefined && !done) headers['upload-defer-length'] = '1';
    if (upload.metadata !== undefined) headers['upload-metadata'] = upload.metadata;
    if (!done) headers['upload-expires'] = httpDate(upload.expiresAt);
  } else {
    headers['upload-complete'] = done ? '?1' : '?0';
    headers['upload-limit'] = uploadLimit(maxBytes, upload);
  }
  if (upload.result) headers.etag = `"${upload.result.metadata.checksum}"`;
  return headers;
}

/** OPTIONS: what the server supports, for tus discovery and the IETF draft alike. */
export function discoveryHeaders(maxBytes: number): Record<string, string> {
  return {
    'tus-resumable': TUS_VERSION,
    'tus-version': TUS_VERSION,
    'tus-extension': TUS_EXTENSIONS,
    'tus-max-size': String(maxBytes),
    'tus-checksum-algorithm': 'sha256',
    'accept-patch': `${TUS_CONTENT_TYPE}, ${IETF_CONTENT_TYPE}`,
    'upload-limit': uploadLimit(maxBytes),
  };
}
