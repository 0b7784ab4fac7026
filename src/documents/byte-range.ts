/** What a GET answers: the whole document, one slice of it (inclusive bounds), or 416. */
export type RangeDecision =
  | { kind: 'whole' }
  | { kind: 'slice'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const WHOLE: RangeDecision = { kind: 'whole' };
const SPEC = /^(\d*)-(\d*)$/;

/**
 * RFC 9110 §14 for one representation with a strong ETag. A Range that does
 * not parse, or names another unit, is ignored (the whole document), as the
 * RFC says. Several ranges are answered with the whole document rather than
 * multipart/byteranges: clients that ask for several get all of them in one
 * body. If-Range with any other validator than our ETag (another tag, a weak
 * one, or a date: documents send no Last-Modified) also gets the whole.
 */
export function decideRange(
  range: string | undefined,
  ifRange: string | undefined,
  etag: string,
  size: number,
): RangeDecision {
  if (range === undefined) return WHOLE;
  if (ifRange !== undefined && ifRange.trim() !== etag) return WHOLE;
  const equals = range.indexOf('=');
  if (equals < 0 || range.slice(0, equals).trim().toLowerCase() !== 'bytes') return WHOLE;
  const specs = range.slice(equals + 1).split(',').map((spec) => spec.trim());
  if (specs.length !== 1) return WHOLE;
  const match = SPEC.exec(specs[0]!);
  if (!match) return WHOLE;
  const first = match[1] ?? '';
  const last = match[2] ?? '';
  if (first === '') {
    // bytes=-n: the last n bytes; an n past 2^53 is more than any document has: all of it.
    if (last === '') return WHOLE;
    const length = Math.min(Number(last), Number.MAX_SAFE_INTEGER);
    if (length === 0) return { kind: 'unsatisfiable' };
    return { kind: 'slice', start: Math.max(0, size - length), end: size - 1 };
  }
  // A first byte past 2^53 is past the end of any document (416); a last one is cut to the end, as any past it is.
  const start = Number(first);
  if (!Number.isSafeInteger(start)) return { kind: 'unsatisfiable' };
  const end = last === '' ? Number.MAX_SAFE_INTEGER : Math.min(Number(last), Number.MAX_SAFE_INTEGER);
  if (end < start) return WHOLE;
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'slice', start, end: Math.min(end, size - 1) };
}
