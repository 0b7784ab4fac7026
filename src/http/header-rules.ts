import { Errors } from '../errors.ts';

/**
 * The headers that name one thing (the target host, the caller, the request)
 * and that Node would merge or pick from silently: a second Host is dropped,
 * a second Authorization too, and two Idempotency-Key lines become the key
 * "a, b". Each is refused instead (RFC 9112 §3.2 for Host), as is an HTTP/1.1
 * request without Host (Node's own check is off so that this answer is a
 * problem too).
 */
export function headerError(rawHeaders: readonly string[], http11: boolean): Error | undefined {
  let host = 0;
  let authorization = 0;
  let idempotencyKey = 0;
  // rawHeaders is [name, value, name, value, ...] as sent. Lengths first, then a compare
  // that allocates nothing: this runs on every request.
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4) {
      if (isName(name, 'host')) host += 1;
    } else if (name.length === 13) {
      if (isName(name, 'authorization')) authorization += 1;
    } else if (name.length === 15) {
      if (isName(name, 'idempotency-key')) idempotencyKey += 1;
    }
  }
  if (host > 1) return new Errors.DuplicateHeader('Host');
  if (authorization > 1) return new Errors.DuplicateHeader('Authorization');
  if (idempotencyKey > 1) return new Errors.DuplicateHeader('Idempotency-Key');
  if (host === 0 && http11) return new Errors.BadRequest();
  return undefined;
}

/**
 * `name` equals `lower` (letters and '-') ignoring case. Setting bit 0x20
 * lowercases a letter; for the other characters Node's parser lets into a
 * header name (RFC 9110 tokens), it never turns one into a letter or '-'.
 */
function isName(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}
