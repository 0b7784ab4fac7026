import { describe, expect, it } from 'vitest';
import { decideRange } from '../../src/documents/byte-range.ts';

// RFC 9110 §14 for a 1000-byte document whose ETag is "e".

const ETAG = '"e"';
const decide = (range: string | undefined, ifRange?: string) => decideRange(range, ifRange, ETAG, 1000);

describe('decideRange', () => {
  it.each([
    ['bytes=0-99', { kind: 'slice', start: 0, end: 99 }],
    ['bytes=500-599', { kind: 'slice', start: 500, end: 599 }],
    ['bytes=990-', { kind: 'slice', start: 990, end: 999 }],
    ['bytes=-10', { kind: 'slice', start: 990, end: 999 }],
    ['bytes=-5000', { kind: 'slice', start: 0, end: 999 }],
    ['bytes=900-5000', { kind: 'slice', start: 900, end: 999 }],
    ['bytes=999-999', { kind: 'slice', start: 999, end: 999 }],
    ['BYTES = 0-0', { kind: 'slice', start: 0, end: 0 }],
    ['bytes=10-99999999999999999999', { kind: 'slice', start: 10, end: 999 }],
    ['bytes=-99999999999999999999', { kind: 'slice', start: 0, end: 999 }],
  ])('%s is one slice', (range, expected) => {
    expect(decide(range)).toEqual(expected);
  });

  it.each(['bytes=1000-', 'bytes=1000-1200', 'bytes=-0', 'bytes=99999999999999999999-', 'bytes=9007199254740993-9007199254740999'])('%s is unsatisfiable (416)', (range) => {
    expect(decide(range)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each([
    ['no Range', undefined],
    ['several ranges', 'bytes=0-1,5-6'],
    ['another unit', 'items=0-1'],
    ['no unit', '0-99'],
    ['last before first', 'bytes=9-5'],
    ['not a number', 'bytes=a-b'],
    ['a bare dash', 'bytes=-'],
  ])('%s: the whole document', (_name, range) => {
    expect(decide(range)).toEqual({ kind: 'whole' });
  });

  it('applies If-Range only when it is the ETag', () => {
    expect(decide('bytes=0-9', ETAG)).toEqual({ kind: 'slice', start: 0, end: 9 });
    expect(decide('bytes=0-9', '"other"')).toEqual({ kind: 'whole' });
    expect(decide('bytes=0-9', `W/${ETAG}`)).toEqual({ kind: 'whole' });
    expect(decide('bytes=0-9', 'Tue, 01 Dec 2026 08:00:00 GMT')).toEqual({ kind: 'whole' });
  });
});
