import { Counter, Gauge, Registry, collectDefaultMetrics, type CounterConfiguration, type LabelValues } from 'prom-client';

/**
 * The API's registry and the counters its domains increment. A module of its
 * own, so that domains depend on it rather than on the HTTP plumbing that
 * serves it (http/metrics.ts).
 */
export type Metrics = {
  registry: Registry;
  cacheLookups: Counter<'layer' | 'result'>;
  /** A cache-lookup series to count on a hot path (countedAtScrape). */
  cacheLookup(labels: { layer: string; result: string }): CountedAtScrape;
  idempotentReplays: Counter<'route'>;
  integrityFailures: Counter;
  uploadsInFlight: Gauge;
  legalHoldChanges: Counter<'status'>;
  objectLockFailures: Counter<'call'>;
};

/** A registry per app (tests build many apps in one process), never the global one. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const lookups = countedAtScrape<'layer' | 'result'>({
    name: 'document_cache_lookups_total',
    help: 'Document cache lookups by layer (memory, redis) and result (hit, miss, error)',
    labelNames: ['layer', 'result'],
    registers: [registry],
  });
  return {
    registry,
    cacheLookups: lookups.counter,
    cacheLookup: lookups.series,
    idempotentReplays: new Counter({
      name: 'idempotent_replays_total',
      help: 'Responses replayed for a repeated Idempotency-Key or a duplicate order',
      labelNames: ['route'],
      registers: [registry],
    }),
    integrityFailures: new Counter({
      name: 'document_integrity_failures_total',
      help: 'Reads that found stored content not matching its size and SHA-256 (never delivered as complete)',
      registers: [registry],
    }),
    uploadsInFlight: new Gauge({
      name: 'document_uploads_in_flight',
      help: 'Document uploads above the inline size in progress (bounded by MAX_CONCURRENT_UPLOADS)',
      registers: [registry],
    }),
    legalHoldChanges: new Counter({
      name: 'document_legal_hold_changes_total',
      help: 'Legal holds placed (status ON) or lifted (OFF); each is logged with the key that asked',
      labelNames: ['status'],
      registers: [registry],
    }),
    objectLockFailures: new Counter({
      name: 'document_object_lock_failures_total',
      help: 'S3 Object Lock calls that failed, by call (retention: before a commit, which then did not happen; legal-hold: after the item changed, answered 503)',
      labelNames: ['call'],
      registers: [registry],
    }),
  };
}

/** A counter's series whose inc() only adds to a number. */
export type CountedAtScrape = { inc(): void };

/**
 * A Counter whose series for a hot path count in a plain number, added to
 * the counter whenever it is collected (each scrape, and get()), so that
 * what it exposes is the same. prom-client's own child (`labels(...)`)
 * checks and hashes its labels into a string on every inc().
 */
function countedAtScrape<T extends string>(config: CounterConfiguration<T>) {
  const pending: { labels: LabelValues<T>; count: number }[] = [];
  const counter = new Counter<T>({
    ...config,
    collect() {
      for (const series of pending) {
        if (series.count === 0) continue;
        this.inc(series.labels, series.count);
        series.count = 0;
      }
    },
  });
  return {
    counter,
    series(labels: LabelValues<T>): CountedAtScrape {
      const series = { labels, count: 0 };
      // Exposed from its first count on, as prom-client's child is.
      pending.push(series);
      return {
        inc() {
          series.count += 1;
        },
      };
    },
  };
}
