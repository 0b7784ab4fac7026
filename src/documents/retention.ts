import { Errors } from '../errors.ts';

// RFC 3339 date-time (section 5.6): a full date, a time, an offset.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
/** Beyond this, a Retain-Until is a typo (a year 20260), not a policy. */
const MAX_YEARS = 100;

/**
 * A Retain-Until as sent, as the ISO-8601 instant it names (milliseconds,
 * UTC); 400 for one that is malformed, not in the future, or more than a
 * hundred years ahead.
 */
export function parseRetainUntil(sent: string, now: Date): string {
  const latest = new Date(now.getTime());
  latest.setUTCFullYear(latest.getUTCFullYear() + MAX_YEARS);
  const fields = RFC3339.exec(sent.trim());
  const at = fields ? new Date(sent.trim().replace(' ', 'T')) : undefined;
  // Date.parse rolls 2026-02-31 over into March: the fields must survive the round trip.
  const exact = at !== undefined && fields !== null && !Number.isNaN(at.getTime()) && Number(fields[2]) >= 1 && Number(fields[2]) <= 12 && Number(fields[3]) <= daysIn(Number(fields[1]), Number(fields[2]));
  if (!exact || at.getTime() <= now.getTime() || at.getTime() > latest.getTime()) throw new Errors.InvalidRetainUntil(latest.toISOString());
  return at.toISOString();
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** RETENTION_DEFAULTS (`tenant=days` pairs, `*` for every other tenant) as a lookup. */
export function retentionDefaults(value: string): (tenant: string) => number | undefined {
  const days = new Map(value === '' ? [] : value.split(',').map((pair) => {
    const [tenant, count] = pair.split('=') as [string, string];
    return [tenant, Number(count)] as const;
  }));
  const fallback = days.get('*');
  return (tenant) => days.get(tenant) ?? fallback;
}
