import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The API's registry and the counters its domains increment. A module of its
 * own, so that domains depend on it rather than on the HTTP plumbing that
 * serves it (http/metrics.ts).
 */
export type Metrics = {
  registry: Registry;
  cacheLookups: Counter<'layer' | 'result'>;
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
  return {
    registry,
    cacheLookups: new Counter({
      name: 'document_cache_lookups_total',
      help: 'Document cache lookups by layer (memory, redis) and result (hit, miss, error)',
      labelNames: ['layer', 'result'],
      registers: [registry],
    }),
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
