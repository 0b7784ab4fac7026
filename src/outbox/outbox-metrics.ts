import { Gauge, type Registry } from 'prom-client';
import type { Backlog, OrderStore } from '../orders/order-store.ts';

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
  store: OrderStore,
  options: { cacheMs?: number; timeoutMs?: number; now?: () => number } = {},
): void {
  if (registry.getSingleMetric(PENDING_GAUGE)) return;
  const cacheMs = options.cacheMs ?? 5000;
  const now = options.now ?? Date.now;
  let last: { at: number; backlog: Promise<Backlog | undefined> } | undefined;

  const read = (): Promise<Backlog | undefined> => {
    if (last && now() - last.at < cacheMs) return last.backlog;
    // An unreadable index keeps the last values rather than failing the scrape or faking a zero.
    const backlog = store
      .backlog({ abortSignal: AbortSignal.timeout(options.timeoutMs ?? 2000) })
      .catch(() => undefined);
    last = { at: now(), backlog };
    return backlog;
  };

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
