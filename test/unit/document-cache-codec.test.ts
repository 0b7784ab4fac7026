import { describe, expect, it } from 'vitest';
import { decodeDocument, encodeDocument } from '../../src/documents/document-cache.ts';
import { DOCUMENT_ID_PATTERN } from '../../src/documents/schemas.ts';

describe('cached document encoding', () => {
  it('round-trips metadata and exact bytes', () => {
    const content = Buffer.from([0, 1, 2, 255, 0x44]);
    const metadata = {
      id: 'doc-1',
      status: 'ACTIVE' as const,
      contentType: 'application/octet-stream',
      size: 5,
      checksum: 'f'.repeat(64),
      createdAt: '2026-01-01T00:00:00.000Z',
    };
    const decoded = decodeDocument(encodeDocument({ metadata, content }));
    expect(decoded).not.toBe('tombstone');
    expect(decoded).toEqual({ metadata, content });
  });

  it('tells a tombstone from a document whose content is "D"', () => {
    expect(decodeDocument(Buffer.from('D'))).toBe('tombstone');
    const metadata = { id: 'd', status: 'ACTIVE' as const, contentType: 'text/plain', size: 1, checksum: 'a'.repeat(64), createdAt: 'x' };
    const encoded = encodeDocument({ metadata, content: Buffer.from('D') });
    expect(decodeDocument(encoded)).toEqual({ metadata, content: Buffer.from('D') });
  });

  it('treats an unknown value as a miss', () => {
    expect(decodeDocument(Buffer.from('garbage'))).toBeUndefined();
  });
});

describe('document id rule', () => {
  const pattern = new RegExp(DOCUMENT_ID_PATTERN);
  it.each(['a', 'A-z_09', 'x'.repeat(128), '01a209e6-291e-7038-9727-c5942caf178d'])('accepts %s', (id) => {
    expect(pattern.test(id)).toBe(true);
  });
  it.each(['', 'x'.repeat(129), 'a b', 'a/b', '../etc', 'a.b', 'é', 'a%2F'])('refuses %j', (id) => {
    expect(pattern.test(id)).toBe(false);
  });
});
