import { describe, expect, it } from 'vitest';
import { create as contentDisposition, parse } from 'content-disposition';

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
