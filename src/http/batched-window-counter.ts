import type { CountInWindow, WindowCount } from './window-counter.ts';

/** How long counts wait in an instance before they are sent together. */
export const FLUSH_MS = 100;

export type BatchedWindowCounterOptions = {
  count: CountInWindow;
  windowMs: number;
  /** The most a key may count in a window; near it every count goes to Redis before its answer. */
  limit: number;
};

/** What this instance knows of one key's window. */
type Tally = {
  /** The shared count at Redis's last answer. */
  known: number;
  /** Counted here since, not sent yet. */
  pending: number;
  endsAt: number;
  /** When Redis last answered with the shared count (`known` is that old at most). */
  heardAt: number;
  /** The shared count at the start of the pace's current sample, and when. */
  sampled: number;
  sampledAt: number;
  /** How fast the shared count grows (per ms); undefined until one sample is complete. */
  rate: number | undefined;
};

/**
 * A fixed-window count per key, shared by every instance through Redis,
 * that sends most counts in batches instead of one round trip per request.
 * Counted one by one, the busiest tenant's key takes every one of its
 * requests on one Redis shard, whose limit (about 500,000 operations a
 * second) it passes at the capacity target (docs/capacity.md).
 *
 * A count is answered here, and sent with the others of its key within
 * `FLUSH_MS`, when the instance heard the shared count from Redis within the
 * last two flush intervals, has counted less than one interval's worth of
 * the key's pace since, and the key is far from its limit: further than
 * what the shared count grows by, at its latest pace, in two intervals and
 * the time since Redis answered. Or when the key is past its limit (a
 * refusal: the count only grows until the window ends). Otherwise (the
 * counts of a window's first `FLUSH_MS` on this instance, which measure the
 * pace, the first after a lull, a burst, and every count near the limit) it
 * goes to Redis before its answer, and so the verdict near the limit is the
 * shared one. What other instances counted and had not sent yet is at most
 * an interval of the pace each, inside the margin: the limit can be passed
 * only by a key whose pace more than doubles within an interval just short
 * of it. Redis down, or an answer lost: that count is undefined (the caller
 * fails open), and the key starts again from Redis's answer.
 */
export class BatchedWindowCounter {
  private readonly tallies = new Map<string, Tally>();
  private readonly count: CountInWindow;
  private readonly windowMs: number;
  private readonly limit: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: BatchedWindowCounterOptions) {
    this.count = options.count;
    this.windowMs = options.windowMs;
    this.limit = options.limit;
  }

  /** Counts one for `key`: its count in the window so far, this one included, and the window's ms left. */
  add(key: string): WindowCount | Promise<WindowCount | undefined> {
    const now = Date.now();
    const tally = this.live(key, now);
    if (tally === undefined || !this.answeredHere(tally, now)) return this.send(key, 1);
    tally.pending += 1;
    this.schedule();
    return { current: tally.known + tally.pending, ttl: tally.endsAt - now };
  }

  /** Sends every key's pending counts now (the timer does it every `FLUSH_MS`; tests and close call it). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    const sent: Promise<unknown>[] = [];
    // Counts of an ended window stay out of the next one (sent now, they would start it).
    for (const key of this.tallies.keys()) if ((this.live(key, now)?.pending ?? 0) > 0) sent.push(this.send(key, 0));
    await Promise.all(sent);
  }

  /** The key's tally, unless its window has ended: counts not sent by then belonged to it, and the next window starts from nothing. */
  private live(key: string, now: number): Tally | undefined {
    const tally = this.tallies.get(key);
    if (tally === undefined || now < tally.endsAt) return tally;
    this.tallies.delete(key);
    return undefined;
  }

  /** Whether a count can be answered here: the window is spent (for good: counts only grow), or far from spent as of a recent answer. */
  private answeredHere(tally: Tally, now: number): boolean {
    if (tally.known >= this.limit) return true;
    const { rate } = tally;
    if (rate === undefined) return false;
    const age = now - tally.heardAt;
    if (age > 2 * FLUSH_MS || tally.pending >= Math.max(1, rate * FLUSH_MS)) return false;
    const margin = rate * (2 * FLUSH_MS + age);
    return tally.known + tally.pending + 1 + margin <= this.limit;
  }

  /** Sends `extra` and the key's pending counts in one call; learns the shared count from the answer. */
  private async send(key: string, extra: number): Promise<WindowCount | undefined> {
    const tally = this.tallies.get(key);
    const by = extra + (tally?.pending ?? 0);
    if (tally) tally.pending = 0;
    const counted = await this.count(key, this.windowMs, by);
    if (counted === undefined) {
      // Redis did not count, or its answer came too late: these counts are dropped, as fail-open drops
      // every count, and what this instance knew of the key goes too (no verdict from it while Redis is away).
      this.tallies.delete(key);
      return undefined;
    }
    this.learn(key, counted);
    return counted;
  }

  private learn(key: string, counted: WindowCount): void {
    const now = Date.now();
    // The script gives a key without expiry one, so the time left is never negative.
    const endsAt = now + counted.ttl;
    const tally = this.live(key, now);
    if (tally === undefined) {
      // The first answer of a window here (what was counted here in an ended one went with it).
      this.tallies.set(key, { known: counted.current, pending: 0, endsAt, heardAt: now, sampledAt: now, sampled: counted.current, rate: undefined });
      return;
    }
    // Answers of concurrent calls can come back in any order: the highest count is the latest. (One
    // from a window Redis started a moment before this instance expected is low too, and waits for it.)
    if (counted.current < tally.known) return;
    tally.heardAt = now;
    if (counted.current === tally.known) return;
    tally.known = counted.current;
    tally.endsAt = endsAt;
    // The pace over at least a flush interval, in which every other instance has sent what it counted:
    // over less, the shared count grows by what some instances sent and not by what they counted.
    const elapsed = now - tally.sampledAt;
    if (elapsed < FLUSH_MS) return;
    const pace = (tally.known - tally.sampled) / elapsed;
    // Quick to rise, slow to fall: a burst widens the margin at once, a lull narrows it over a few answers.
    tally.rate = tally.rate === undefined ? pace : Math.max(pace, tally.rate / 2);
    tally.sampledAt = now;
    tally.sampled = tally.known;
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }
}
