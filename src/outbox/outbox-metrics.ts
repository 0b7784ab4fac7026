import { Gauge, type Registry } from 'prom-client';
import { cachedFor } from '../cached.ts';
import type { Backlog, OutboxStore } from './outbox-store.ts';

export const PENDING_GAUGE = 'outbox_pending_events';
export const OLDEST_AGE_GAUGE = 'outbox_oldest_pending_age_seconds';

/**
 * The outbox backlog as two gauges, read from the sparse index when scraped.
 * Every process that serves /metrics can expose it (the API and the relay);
 * one read serves both gauges and is reused for `cacheMs`, so scrapes from
 * several Prometheus replicas cost the table almost nothing.
 */
export function registerOutboxGauges(
  registry: Registry,
  store: Pick<OutboxStore<unknown>, 'backlog'>,
  options: { cacheMs?: number; timeoutMs?: number; now?: () => number } = {},
): void {
  if (registry.getSingleMetric(PENDING_GAUGE)) return;
  const now = options.now ?? Date.now;
  // An unreadable index keeps the last values rather than failing the scrape or faking a zero.
  const read = cachedFor(
    options.cacheMs ?? 5000,
    (): Promise<Backlog | undefined> =>
      store.backlog({ abortSignal: AbortSignal.timeout(options.timeoutMs ?? 2000) }).catch(() => undefined),
    now,
  );

  new Gauge({
    name: PENDING_GAUGE,
    help: 'Order events not yet published (the transactional outbox)',
    registers: [registry],
    async collect() {
      const backlog = await read();
      if (backlog) this.set(backlog.count);
    },
  });
  new Gauge({
    name: OLDEST_AGE_GAUGE,
    help: 'Age in seconds of the oldest unpublished order event (0 when none)',
    registers: [registry],
    async collect() {
      const backlog = await read();
      if (backlog) this.set(backlog.oldestSince === undefined ? 0 : Math.max(0, (now() - backlog.oldestSince) / 1000));
    },
  });
}
