import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { declaredDigests, reprDigestOf } from '../../src/documents/content-digest.ts';
import { describeBytes } from '../../src/documents/incoming-body.ts';

const sha = createHash('sha256').update('hello').digest();
const field = `sha-256=:${sha.toString('base64')}:`;

describe('RFC 9530 digests', () => {
  it('reads sha-256 and sha-512 from Content-Digest and Repr-Digest, ignoring other algorithms next to them', () => {
    const sha512 = createHash('sha512').update('hello').digest();
    expect(declaredDigests({ 'content-digest': field })).toEqual([{ field: 'Content-Digest', algorithm: 'sha-256', value: sha }]);
    expect(declaredDigests({ 'repr-digest': `sha-512=:${sha512.toString('base64')}:, ${field}, md5=:AAAA:` })).toEqual([
      { field: 'Repr-Digest', algorithm: 'sha-256', value: sha },
      { field: 'Repr-Digest', algorithm: 'sha-512', value: sha512 },
    ]);
    expect(declaredDigests({ 'content-digest': `sha-512=:${sha512.toString('base64')}:` })).toEqual([
      { field: 'Content-Digest', algorithm: 'sha-512', value: sha512 },
    ]);
    expect(declaredDigests({})).toEqual([]);
  });

  it('refuses a field naming no supported algorithm with 400 INVALID_DIGEST, naming the ones that are', () => {
    const only512 = { 'content-digest': `sha-512=:${Buffer.alloc(64).toString('base64')}:` };
    expect(() => declaredDigests({ 'content-digest': 'md5=:AAAA:' })).toThrow(expect.objectContaining({ code: 'INVALID_DIGEST', message: expect.stringContaining('sha-512 (64 bytes)') }));
    // A resumable upload checks sha-256 only: a sha-512 alone would go unchecked.
    expect(() => declaredDigests(only512, ['sha-256'])).toThrow(expect.objectContaining({ code: 'INVALID_DIGEST', message: expect.not.stringContaining('sha-512') }));
  });

  it.each([
    ['not a dictionary', 'sha-256'],
    ['not a byte sequence', 'sha-256="abc"'],
    ['16 bytes, not 32', `sha-256=:${Buffer.alloc(16).toString('base64')}:`],
    ['a sha-512 of 32 bytes, not 64', `sha-512=:${Buffer.alloc(32).toString('base64')}:`],
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
