import { ParseError, parseDictionary } from 'structured-headers';
import { Errors } from '../errors.ts';

/** A sha-256 the client declared for the body it sends (RFC 9530). */
export type DeclaredDigest = { field: 'Content-Digest' | 'Repr-Digest'; sha256: Buffer };

const FIELDS = [
  ['content-digest', 'Content-Digest'],
  ['repr-digest', 'Repr-Digest'],
] as const;

/**
 * The sha-256 members of Content-Digest and Repr-Digest. Both describe the
 * bytes as received here: the service stores bodies as sent, so there is no
 * content coding between the two. Other algorithms are ignored, as RFC 9530
 * allows; a sha-256 that is not 32 bytes, or a field that does not parse, is
 * a 400 rather than a digest silently unchecked.
 */
export function declaredDigests(headers: Record<string, string | string[] | undefined>): DeclaredDigest[] {
  const declared: DeclaredDigest[] = [];
  for (const [name, field] of FIELDS) {
    const value = headers[name];
    if (value === undefined) continue;
    let member;
    try {
      member = parseDictionary(Array.isArray(value) ? value.join(', ') : value).get('sha-256');
    } catch (error) {
      if (error instanceof ParseError) throw new Errors.InvalidDigest();
      throw error;
    }
    if (member === undefined) continue;
    const [bytes] = member;
    if (!(bytes instanceof ArrayBuffer) || bytes.byteLength !== 32) throw new Errors.InvalidDigest();
    declared.push({ field, sha256: Buffer.from(bytes) });
  }
  return declared;
}

/** The Repr-Digest field of a stored document, from its hex SHA-256. */
export function reprDigestOf(checksumHex: string): string {
  return `sha-256=:${Buffer.from(checksumHex, 'hex').toString('base64')}:`;
}
