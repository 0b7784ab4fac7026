import { decideRange, type RangeDecision } from './byte-range.ts';
import { reprDigestOf } from './content-digest.ts';
import type { DocumentMetadata } from './schemas.ts';

/** The validators and descriptions a document's answers carry, the same on 200, 206, 304 and HEAD. */
export type Representation = {
  etag: string;
  /** ETag, Accept-Ranges and Repr-Digest: headers of every answer about the representation. */
  headers: Readonly<Record<string, string>>;
};

// Hot documents are answered many times from one metadata object: compute their headers once.
const computed = new WeakMap<DocumentMetadata, Representation>();

export function representationOf(metadata: DocumentMetadata): Representation {
  let representation = computed.get(metadata);
  if (!representation) {
    const etag = `"${metadata.checksum}"`;
    representation = {
      etag,
      headers: { etag, 'accept-ranges': 'bytes', 'repr-digest': reprDigestOf(metadata.checksum) },
    };
    computed.set(metadata, representation);
  }
  return representation;
}

/** RFC 9110 If-None-Match: `*`, or a list of (weak or strong) tags, compared weakly. */
export function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/** What a GET or HEAD of a document answers, decided from its request headers alone. */
export type ReadPlan = { kind: 'not-modified' } | RangeDecision;

/** Range applies to GET only (RFC 9110 §14.2): a HEAD answers as the whole document's GET would. */
export function planRead(
  method: string,
  headers: { 'if-none-match'?: string; range?: string; 'if-range'?: string },
  metadata: DocumentMetadata,
): ReadPlan {
  const { etag } = representationOf(metadata);
  if (notModified(headers['if-none-match'], etag)) return { kind: 'not-modified' };
  if (method !== 'GET') return { kind: 'whole' };
  return decideRange(headers.range, headers['if-range'], etag, metadata.size);
}
