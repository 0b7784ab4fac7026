import { ParseError, parseDictionary } from 'structured-headers';
import { Errors } from '../errors.ts';

export type DigestAlgorithm = 'sha-256' | 'sha-512';

const BYTES: Record<DigestAlgorithm, number> = { 'sha-256': 32, 'sha-512': 64 };

/** A digest the client declared for the body it sends (RFC 9530); `value` is the raw hash. */
export type DeclaredDigest = { field: 'Content-Digest' | 'Repr-Digest'; algorithm: DigestAlgorithm; value: Buffer };

const FIELDS = [
  ['content-digest', 'Content-Digest'],
  ['repr-digest', 'Repr-Digest'],
] as const;

/** A one-request create checks both; resumable uploads keep a resumable sha-256 only. */
export const ALL_DIGESTS: readonly DigestAlgorithm[] = ['sha-256', 'sha-512'];

/**
 * The members of Content-Digest and Repr-Digest in `supported`. Both
 * describe the bytes as received here: the service stores bodies as sent, so
 * there is no content coding between the two. A field that does not parse,
 * a hash of the wrong length, or a field naming none of `supported` is a 400
 * rather than a digest silently unchecked; members of other algorithms next
 * to a supported one are ignored, as RFC 9530 allows.
 */
export function declaredDigests(
  headers: Record<string, string | string[] | undefined>,
  supported: readonly DigestAlgorithm[] = ALL_DIGESTS,
): DeclaredDigest[] {
  const wanted = supported.map((algorithm) => `${algorithm} (${BYTES[algorithm]} bytes)`).join(' or ');
  const declared: DeclaredDigest[] = [];
  for (const [name, field] of FIELDS) {
    const value = headers[name];
    if (value === undefined) continue;
    let dictionary;
    try {
      dictionary = parseDictionary(Array.isArray(value) ? value.join(', ') : value);
    } catch (error) {
      if (error instanceof ParseError) throw new Errors.InvalidDigest(wanted);
      throw error;
    }
    const before = declared.length;
    for (const algorithm of supported) {
      const member = dictionary.get(algorithm);
      if (member === undefined) continue;
      const [bytes] = member;
      if (!(bytes instanceof ArrayBuffer) || bytes.byteLength !== BYTES[algorithm]) throw new Errors.InvalidDigest(wanted);
      declared.push({ field, algorithm, value: Buffer.from(bytes) });
    }
    if (declared.length === before) throw new Errors.InvalidDigest(wanted);
  }
  return declared;
}

/** The Repr-Digest field of a stored document, from its hex SHA-256. */
export function reprDigestOf(checksumHex: string): string {
  return `sha-256=:${Buffer.from(checksumHex, 'hex').toString('base64')}:`;
}
