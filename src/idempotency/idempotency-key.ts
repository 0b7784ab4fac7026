import { createHash } from 'node:crypto';
import { Type } from 'typebox';
import { Errors } from '../errors.ts';

/**
 * The header as the routes declare it: only a string, so that a malformed
 * key is this module's 400 INVALID_IDEMPOTENCY_KEY, not a schema failure.
 */
export const IdempotencyKeyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ description: '1-255 printable ASCII, bare or as an RFC 8941 string; identifies the request for 24 h' }),
  ),
});

/**
 * Reads an Idempotency-Key sent bare (`abc`) or as an RFC 8941 string
 * (`"abc"`, with `\"` and `\\` escapes). Undefined when absent.
 */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) throw new Errors.InvalidIdempotencyKey();
  const key = header.startsWith('"') ? unquote(header) : header;
  if (key === undefined || !/^[\x20-\x7e]{1,255}$/.test(key)) throw new Errors.InvalidIdempotencyKey();
  return key;
}

function unquote(value: string): string | undefined {
  if (value.length < 2 || !value.endsWith('"')) return undefined;
  let out = '';
  for (let i = 1; i < value.length - 1; i++) {
    const char = value[i]!;
    if (char === '"') return undefined;
    if (char === '\\') {
      const next = value[++i];
      if (next !== '"' && next !== '\\') return undefined;
      out += next;
    } else {
      out += char;
    }
  }
  return out;
}

/** What makes two requests "the same" for one key: route and exact content. */
export function fingerprint(parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${part.length}:${part}`);
  return hash.digest('hex');
}
