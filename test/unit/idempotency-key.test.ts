import { describe, expect, it } from 'vitest';
import { fingerprint, parseIdempotencyKey } from '../../src/idempotency/idempotency-key.ts';

describe('Idempotency-Key parsing', () => {
  it('is absent when the header is absent', () => {
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
  });

  it('takes a bare key and an RFC 8941 string as the same key', () => {
    expect(parseIdempotencyKey('abc')).toBe('abc');
    expect(parseIdempotencyKey('"abc"')).toBe('abc');
    expect(parseIdempotencyKey('"a\\"b\\\\c"')).toBe('a"b\\c');
  });

  it('accepts 1 to 255 printable ASCII characters', () => {
    expect(parseIdempotencyKey('x'.repeat(255))).toHaveLength(255);
    expect(parseIdempotencyKey('order 42 / retry #1')).toBe('order 42 / retry #1');
  });

  it.each([
    ['empty', ''],
    ['too long', 'x'.repeat(256)],
    ['10k characters', 'k'.repeat(10_000)],
    ['non-ASCII', 'clé'],
    ['control character', 'a\tb'],
    ['empty string item', '""'],
    ['unterminated string', '"abc'],
    ['bad escape', '"a\\nb"'],
    ['quote inside', '"a"b"'],
  ])('refuses %s', (_name, value) => {
    expect(() => parseIdempotencyKey(value)).toThrow(expect.objectContaining({ code: 'INVALID_IDEMPOTENCY_KEY' }));
  });

  it('refuses the header sent twice', () => {
    expect(() => parseIdempotencyKey(['a', 'b'])).toThrow(expect.objectContaining({ code: 'INVALID_IDEMPOTENCY_KEY' }));
  });
});

describe('request fingerprint', () => {
  it('is stable for the same parts and differs when any part differs', () => {
    const base = fingerprint(['POST /documents', 'text/plain', 'abc']);
    expect(fingerprint(['POST /documents', 'text/plain', 'abc'])).toBe(base);
    expect(fingerprint(['POST /documents', 'text/html', 'abc'])).not.toBe(base);
    expect(fingerprint(['POST /documents', 'text/plain', 'abd'])).not.toBe(base);
  });

  it('cannot be fooled by moving characters between parts', () => {
    expect(fingerprint(['ab', 'c'])).not.toBe(fingerprint(['a', 'bc']));
  });
});
