import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { declaredDigests, reprDigestOf } from '../../src/documents/content-digest.ts';
import { describeBytes } from '../../src/documents/incoming-body.ts';

const sha = createHash('sha256').update('hello').digest();
const field = `sha-256=:${sha.toString('base64')}:`;

describe('RFC 9530 digests', () => {
  it('reads sha-256 from Content-Digest and Repr-Digest, ignoring other algorithms', () => {
    expect(declaredDigests({ 'content-digest': field })).toEqual([{ field: 'Content-Digest', sha256: sha }]);
    expect(declaredDigests({ 'repr-digest': `sha-512=:${Buffer.alloc(64).toString('base64')}:, ${field}` })).toEqual([
      { field: 'Repr-Digest', sha256: sha },
    ]);
    expect(declaredDigests({ 'content-digest': `sha-512=:${Buffer.alloc(64).toString('base64')}:` })).toEqual([]);
    expect(declaredDigests({})).toEqual([]);
  });

  it.each([
    ['not a dictionary', 'sha-256'],
    ['not a byte sequence', 'sha-256="abc"'],
    ['16 bytes, not 32', `sha-256=:${Buffer.alloc(16).toString('base64')}:`],
    ['broken base64 framing', 'sha-256=:abc'],
  ])('refuses %s with 400 INVALID_DIGEST', (_name, value) => {
    expect(() => declaredDigests({ 'content-digest': value })).toThrow(expect.objectContaining({ code: 'INVALID_DIGEST', statusCode: 400 }));
  });

  it('writes Repr-Digest from the hex checksum', () => {
    expect(reprDigestOf(sha.toString('hex'))).toBe(field);
  });

  it('names limits in bytes and in the largest whole binary unit', () => {
    expect(describeBytes(5 * 1024 ** 3)).toBe('5368709120 bytes (5 GiB)');
    expect(describeBytes(1024)).toBe('1024 bytes (1 KiB)');
    expect(describeBytes(1536)).toBe('1536 bytes');
    expect(describeBytes(1000)).toBe('1000 bytes');
  });
});
