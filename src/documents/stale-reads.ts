import type { Counter } from 'prom-client';

/** Reads remembered per instance: at 5,000 reads/s, the last 13 s. */
const CAPACITY = 1 << 16;

/**
 * Counts stale reads: reads this instance served of a document after it was
 * deleted in another region, which this region learns of only later (the
 * `document.deleted` event, ReplicationLatency). A read cannot know it is
 * stale when it is served, so the last CAPACITY reads are remembered (which
 * document, when), and a deletion learned with its `deletedAt` counts those
 * served after that moment, each once.
 *
 * Exact as long as the deletion arrives within CAPACITY reads of this
 * instance; later, a lower bound (`document_invalidation_lag_seconds` says
 * how late it came). Times are wall clocks of two regions: precise to their
 * skew (Amazon Time Sync keeps it well under a millisecond).
 */
export class StaleReads {
  private readonly tenants: (string | undefined)[] = new Array(CAPACITY);
  private readonly ids: (string | undefined)[] = new Array(CAPACITY);
  private readonly times = new Float64Array(CAPACITY);
  private next = 0;
  private readonly counter: Counter<'origin'>;
  private readonly now: () => number;

  constructor(counter: Counter<'origin'>, now: () => number = Date.now) {
    this.counter = counter;
    this.now = now;
  }

  /** A read answered with the document (200, 206, 304, HEAD, its metadata). */
  served(tenant: string, id: string): void {
    const slot = this.next;
    this.tenants[slot] = tenant;
    this.ids[slot] = id;
    this.times[slot] = this.now();
    this.next = (slot + 1) & (CAPACITY - 1);
  }

  /** A deletion made in `origin` at `deletedAtMs`, learned now; returns the reads it made stale. */
  deleted(tenant: string, id: string, deletedAtMs: number, origin: string): number {
    let stale = 0;
    // Newest first, back to the first read before the deletion: the cost is the window, not the capacity.
    for (let back = 1; back <= CAPACITY; back++) {
      const slot = (this.next - back) & (CAPACITY - 1);
      if (this.times[slot]! <= deletedAtMs) break;
      if (this.ids[slot] === id && this.tenants[slot] === tenant) {
        stale += 1;
        // Counted: a redelivered event must not count it again.
        this.ids[slot] = undefined;
      }
    }
    if (stale > 0) this.counter.inc({ origin }, stale);
    return stale;
  }
}
