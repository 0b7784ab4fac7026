import { describe, expect, it } from 'vitest';
import { create as contentDisposition, parse } from 'content-disposition';
import { MemoisedLinkSigner, expiryBucketMs, linkValidity, type LinkSigner } from '../../src/documents/links.ts';

// The Content-Disposition a link makes S3 send (src/documents/links.ts, by the
// content-disposition package): whatever the name, one disposition and only
// the filename parameters (RFC 6266), and a parser reads back the name.

/** The parameters of a Content-Disposition, split where a parser would: at each ; outside a quoted string. */
function parameters(value: string): string[] {
  return value.match(/(?:[^;"]|"(?:[^"\\]|\\.)*")+/g)!.map((part) => part.trim());
}

describe('the Content-Disposition of a link', () => {
  it('names a document id as it is', () => {
    expect(contentDisposition('0199b3c1-report_1')).toBe('attachment; filename=0199b3c1-report_1');
  });

  it.each([
    'a"; filename="evil.html',
    "a'; filename*=UTF-8''evil.html",
    'a\r\nSet-Cookie: x=1',
    'a\\"; inline',
    'résumé 😀.pdf',
    ';;;',
    '',
  ])('keeps a crafted name inside its filename parameters: %j', (name) => {
    const value = contentDisposition(name);
    expect(value).toMatch(/^[\x21-\x7e ]+$/);
    const [disposition, ...rest] = parameters(value);
    expect(disposition).toBe('attachment');
    expect(rest.length).toBeGreaterThanOrEqual(1);
    expect(rest.length).toBeLessThanOrEqual(2);
    for (const parameter of rest) expect(parameter).toMatch(/^filename\*?=/);
    expect(parse(value)).toEqual({ type: 'attachment', parameters: { filename: name } });
  });
});

describe('linkValidity: the expiry bucket of a link', () => {
  it.each([1, 5, 60, 120, 300, 301, 3600])('keeps a lifetime within [TTL − bucket, TTL] and signs TTL from TTL before the expiry (TTL %i s)', (ttlSeconds) => {
    const bucket = expiryBucketMs(ttlSeconds);
    expect(bucket).toBe(Math.min(60_000, ttlSeconds * 200));
    for (let i = 0; i < 500; i++) {
      const now = new Date(1_796_000_000_000 + Math.floor(Math.random() * 10_000_000));
      const { from, seconds, expiresAt } = linkValidity(now, ttlSeconds);
      const lifetime = expiresAt.getTime() - now.getTime();
      expect(lifetime).toBeLessThanOrEqual(ttlSeconds * 1000);
      expect(lifetime).toBeGreaterThan(ttlSeconds * 1000 - bucket);
      expect(expiresAt.getTime() % bucket).toBe(0);
      expect(seconds).toBe(ttlSeconds);
      expect(from.getTime() + seconds * 1000).toBe(expiresAt.getTime());
      expect(from.getTime()).toBeLessThanOrEqual(now.getTime());
    }
  });

  it('is the same within a bucket and the next one after it', () => {
    const start = 1_796_000_040_000; // a multiple of 60 s: the start of a bucket (TTL 300 s)
    const first = linkValidity(new Date(start), 300);
    expect(linkValidity(new Date(start + 59_999), 300)).toEqual(first);
    const next = linkValidity(new Date(start + 60_000), 300);
    expect(next.expiresAt.getTime()).toBe(first.expiresAt.getTime() + 60_000);
  });
});

describe('MemoisedLinkSigner', () => {
  const target = { s3Key: 't/doc/upload', contentType: 'application/pdf', filename: 'doc' };

  function counting() {
    const signed: string[] = [];
    const signer: LinkSigner = {
      sign: async (what, { from, seconds }) => {
        const url = `https://example.test/${what.s3Key}?ct=${what.contentType}&fn=${what.filename}&from=${from.getTime()}&s=${seconds}&n=${signed.length}`;
        signed.push(url);
        return url;
      },
    };
    return { signer, signed };
  }

  it('signs an object once per validity, and again for another validity, object or header', async () => {
    const { signer, signed } = counting();
    const memo = new MemoisedLinkSigner(signer);
    const validity = linkValidity(new Date(1_796_000_040_000), 300);
    const first = await memo.sign(target, validity);
    expect(await memo.sign({ ...target }, { from: new Date(validity.from), seconds: validity.seconds })).toBe(first);
    expect(signed).toHaveLength(1);
    const later = linkValidity(new Date(1_796_000_100_000), 300);
    expect(await memo.sign(target, later)).not.toBe(first);
    expect(await memo.sign({ ...target, s3Key: 't/other/upload' }, validity)).not.toBe(first);
    expect(await memo.sign({ ...target, contentType: 'text/html' }, validity)).not.toBe(first);
    expect(await memo.sign({ ...target, filename: 'other' }, validity)).not.toBe(first);
    expect(signed).toHaveLength(5);
  });

  it('holds at most its bounds, in entries and in bytes', async () => {
    const { signer } = counting();
    const validity = linkValidity(new Date(1_796_000_040_000), 300);
    const byCount = new MemoisedLinkSigner(signer, { maxEntries: 10 });
    const byBytes = new MemoisedLinkSigner(signer, { maxBytes: 4096 });
    for (let i = 0; i < 100; i++) {
      await byCount.sign({ ...target, s3Key: `t/doc-${i}/upload` }, validity);
      await byBytes.sign({ ...target, s3Key: `t/doc-${i}/upload` }, validity);
    }
    expect(byCount.size.entries).toBe(10);
    expect(byBytes.size.bytes).toBeLessThanOrEqual(4096);
    expect(byBytes.size.entries).toBeGreaterThan(0);
  });
});
