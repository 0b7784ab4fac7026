import { describe, expect, it } from 'vitest';
import { attachment } from '../../src/documents/links.ts';

// The Content-Disposition a link makes S3 send: whatever the name, one
// disposition and exactly the two filename parameters (RFC 6266).

/** The parameters of a Content-Disposition, split where a parser would: at each ; outside a quoted string. */
function parameters(value: string): string[] {
  return value.match(/(?:[^;"]|"(?:[^"\\]|\\.)*")+/g)!.map((part) => part.trim());
}

describe('attachment()', () => {
  it('names a document id as it is', () => {
    expect(attachment('0199b3c1-report_1')).toBe(`attachment; filename="0199b3c1-report_1"; filename*=UTF-8''0199b3c1-report_1`);
  });

  it.each([
    'a"; filename="evil.html',
    "a'; filename*=UTF-8''evil.html",
    'a\r\nSet-Cookie: x=1',
    'a\\"; inline',
    'résumé 😀.pdf',
    ';;;',
  ])('keeps a crafted name inside its two parameters: %j', (name) => {
    const value = attachment(name);
    expect(value).toMatch(/^[\x21-\x7e ]+$/);
    const [disposition, plain, encoded, ...more] = parameters(value);
    expect(disposition).toBe('attachment');
    expect(plain).toMatch(/^filename="[A-Za-z0-9._-]+"$/);
    expect(encoded).toMatch(/^filename\*=UTF-8''[A-Za-z0-9!#$&+.^_`|~%-]+$/);
    expect(more).toEqual([]);
    expect(decodeURIComponent(encoded!.slice("filename*=UTF-8''".length))).toBe(name);
  });

  it('gives an empty name a plain one', () => {
    expect(attachment('')).toBe(`attachment; filename="document"; filename*=UTF-8''`);
  });
});
