import { Errors } from '../errors.ts';
import type { DocumentMetadata } from './schemas.ts';

/** The conditional headers of a request on a document, as sent. */
export type Preconditions = {
  ifMatch?: string | undefined;
  ifNoneMatch?: string | undefined;
  ifUnmodifiedSince?: string | undefined;
};

/** What the conditions say of a request on a document that exists: go on, 304 (a read), or 412. */
export type Verdict = 'proceed' | 'not-modified' | 'failed';

type Headers = Record<string, string | string[] | undefined>;

const single = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(', ') : value);

export function preconditionsOf(headers: Headers): Preconditions {
  return {
    ifMatch: single(headers['if-match']),
    ifNoneMatch: single(headers['if-none-match']),
    ifUnmodifiedSince: single(headers['if-unmodified-since']),
  };
}

export function hasPreconditions(conditions: Preconditions): boolean {
  return conditions.ifMatch !== undefined || conditions.ifNoneMatch !== undefined || conditions.ifUnmodifiedSince !== undefined;
}

/** `*`, or whether one of the listed tags equals `etag`: strongly (a weak tag never does) or weakly. */
function matches(field: string, etag: string, strong: boolean): boolean {
  if (field.trim() === '*') return true;
  return field.split(',').some((tag) => {
    const trimmed = tag.trim();
    if (trimmed.startsWith('W/')) return !strong && trimmed.slice(2) === etag;
    return trimmed === etag;
  });
}

// RFC 9110 §5.6.7 IMF-fixdate, the one form senders must generate; anything else is ignored, as for an invalid date.
const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** Whether the document was created after an If-Unmodified-Since date, to the second; false for a date that does not parse. */
function modifiedSince(field: string, createdAt: string): boolean {
  const trimmed = field.trim();
  if (!IMF_FIXDATE.test(trimmed)) return false;
  const since = Date.parse(trimmed);
  if (Number.isNaN(since)) return false;
  return Math.floor(Date.parse(createdAt) / 1000) * 1000 > since;
}

/**
 * RFC 9110 §13.2.2 for a document that exists (its "selected
 * representation"; a document that does not is answered as without
 * conditions, §13.2.1): If-Match (strong comparison, `*` any document), else
 * If-Unmodified-Since against the creation time (documents never change
 * after it); then If-None-Match (weak comparison), 304 for a read and 412
 * for anything else. If-Modified-Since is not evaluated: documents send no
 * Last-Modified.
 */
export function evaluate(conditions: Preconditions, document: Pick<DocumentMetadata, 'checksum' | 'createdAt'>, read: boolean): Verdict {
  const etag = `"${document.checksum}"`;
  if (conditions.ifMatch !== undefined) {
    if (!matches(conditions.ifMatch, etag, true)) return 'failed';
  } else if (conditions.ifUnmodifiedSince !== undefined && modifiedSince(conditions.ifUnmodifiedSince, document.createdAt)) {
    return 'failed';
  }
  if (conditions.ifNoneMatch !== undefined && matches(conditions.ifNoneMatch, etag, false)) return read ? 'not-modified' : 'failed';
  return 'proceed';
}

/** The 412 of a condition that does not hold, naming the conditions sent. */
export function preconditionFailed(conditions: Preconditions, id: string): Error {
  const sent = [
    conditions.ifMatch !== undefined ? 'If-Match' : undefined,
    conditions.ifUnmodifiedSince !== undefined ? 'If-Unmodified-Since' : undefined,
    conditions.ifNoneMatch !== undefined ? 'If-None-Match' : undefined,
  ].filter((name) => name !== undefined);
  return new Errors.PreconditionFailed(sent.join(', '), id);
}

/** A write with conditions on a document that does not exist: If-Match (even `*`) cannot hold (§13.1.1). */
export function failsWithoutDocument(conditions: Preconditions): boolean {
  return conditions.ifMatch !== undefined;
}

/** If-None-Match: * on a write: create only, 412 when the id holds a document (§13.1.2). */
export function createOnly(conditions: Preconditions): boolean {
  return conditions.ifNoneMatch?.trim() === '*';
}
