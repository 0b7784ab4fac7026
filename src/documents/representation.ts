import { decideRange, type RangeDecision } from './byte-range.ts';
import { reprDigestOf } from './content-digest.ts';
import { evaluate, hasPreconditions, preconditionsOf, type Preconditions } from './preconditions.ts';
import type { DocumentMetadata } from './schemas.ts';

/**
 * A document's bytes never change, but they are one tenant's and a delete is
 * final: private (no shared cache), kept by the client, revalidated on each
 * use. A revalidation is a 304 without a body, since the ETag is the content's hash;
 * a max-age would let a client's cache serve a document its DELETE removed.
 */
export const DOCUMENT_CACHE_CONTROL = 'private, no-cache';

/** Cache-Status names this cache (RFC 9211). */
export const CACHE_NAME = 'docsvc';

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
      headers: { etag, 'accept-ranges': 'bytes', 'repr-digest': reprDigestOf(metadata.checksum), 'cache-control': DOCUMENT_CACHE_CONTROL },
    };
    computed.set(metadata, representation);
  }
  return representation;
}

/** What a GET or HEAD of a document answers, decided from its request headers alone. */
export type ReadPlan = { kind: 'not-modified' } | { kind: 'precondition-failed'; conditions: Preconditions } | RangeDecision;

/** Preconditions first (RFC 9110 §13.2.2), then Range, which applies to GET only (§14.2): a HEAD answers as the whole document's GET would. */
export function planRead(method: string, headers: Record<string, string | string[] | undefined>, metadata: DocumentMetadata): ReadPlan {
  const conditions = preconditionsOf(headers);
  // Most reads carry none: the hot path skips the evaluation (and its ETag string).
  if (hasPreconditions(conditions)) {
    const verdict = evaluate(conditions, metadata, true);
    if (verdict === 'failed') return { kind: 'precondition-failed', conditions };
    if (verdict === 'not-modified') return { kind: 'not-modified' };
  }
  if (method !== 'GET') return { kind: 'whole' };
  const { etag } = representationOf(metadata);
  return decideRange(single(headers.range), single(headers['if-range']), etag, metadata.size);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
