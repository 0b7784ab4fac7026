import type { CountInWindow } from './window-counter.ts';

const WINDOW_MS = 60_000;
/** Sources remembered as blocked at once; past this the oldest block is forgotten first (memory stays bounded under a spread-out attack). */
const MAX_BLOCKED = 10_000;

/**
 * A limit on failed authentications per client address, counted in Redis
 * across instances (a fixed one-minute window). A source past the limit is
 * refused for the rest of its window before its key is even looked at, so
 * that the limit bounds guessing, not only the log noise. The block is also
 * kept in this process, so that checking it costs a map lookup and no Redis
 * round trip: authenticated traffic pays nothing. Another instance learns of
 * the block at the first failure the source makes there.
 */
export class AuthFailureLimiter {
  private readonly blockedUntil = new Map<string, number>();
  private readonly limit: number;
  private readonly count: CountInWindow;

  constructor(options: { perMinute: number; count: CountInWindow }) {
    this.limit = options.perMinute;
    this.count = options.count;
  }

  /** Seconds until `source` may try again, or undefined when it is not blocked. */
  retryAfter(source: string, now = Date.now()): number | undefined {
    const until = this.blockedUntil.get(source);
    if (until === undefined) return undefined;
    if (until > now) return Math.max(1, Math.ceil((until - now) / 1000));
    this.blockedUntil.delete(source);
    return undefined;
  }

  /** Counts a failure; does not wait for Redis (while it is down, nothing is counted: fail open). */
  failed(source: string): void {
    void this.count(`authfail:${source}`, WINDOW_MS).then((counted) => {
      if (!counted || counted.current <= this.limit) return;
      if (this.blockedUntil.size >= MAX_BLOCKED) this.blockedUntil.delete(this.blockedUntil.keys().next().value!);
      this.blockedUntil.set(source, Date.now() + Math.max(counted.ttl, 0));
    });
  }
}
