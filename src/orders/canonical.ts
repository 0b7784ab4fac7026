import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * SHA-256 of the RFC 8785 canonical JSON of a parsed payload: key order,
 * whitespace and escapes of the original text do not change it.
 */
export function canonicalHash(value: unknown): string {
  const canonical = canonicalize(value);
  if (canonical === undefined) throw new TypeError('the value has no JSON form');
  return createHash('sha256').update(canonical).digest('hex');
}
