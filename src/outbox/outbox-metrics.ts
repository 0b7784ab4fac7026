import { Gauge, type Registry } from 'prom-client';
import { cachedFor } from '../cached.ts';
import type { Backlog, OutboxStore } from './outbox-store.ts';

export const PENDING_GAUGE = 'outbox_pending_events';
export const OLDEST_AGE_GAUGE = 'outbox_oldest_pending_age_seconds';

/** Which outbox: the orders table's, or the documents table's (document events). */
export type OutboxName = 'orders' | 'documents';

type Read = () => Promise<Backlog | undefined>;
const sourcesOf = new WeakMap<Registry, Map<OutboxName, Read>>();

/**
 * The outbox backlog as two gauges labelled by outbox, read from the sparse
 * index when scraped. Every process that serves /metrics can expose it (the
 * API and the relay); one read serves both gauges and is reused for
 * `cacheMs`, so scrapes from several Prometheus replicas cost the table
 * almost nothing.
 */
export function registerOutboxGauges(
  registry: Registry,
  outbox: OutboxName,
  store: Pick<OutboxStore<unknown>, 'backlog'>,
  options: { cacheMs?: number; timeoutMs?: number; now?: () => number } = {},
): void {
  const now = options.now ?? Date.now;
  // An unreadable index keeps the last values rather than failing the scrape or faking a zero.
  const read = cachedFor(
    options.cacheMs ?? 5000,
    (): Promise<Backlog | undefined> =>
      store.backlog({ abortSignal: AbortSignal.timeout(options.timeoutMs ?? 2000) }).catch(() => undefined),
    now,
  );
  let sources = sourcesOf.get(registry);
  if (sources) {
    sources.set(outbox, read);
    return;
  }
  sources = new Map([[outbox, read]]);
  sourcesOf.set(registry, sources);
  const each = async (set: (outbox: OutboxName, backlog: Backlog) => void) => {
    await Promise.all(
      [...sources.entries()].map(async ([name, readBacklog]) => {
        const backlog = await readBacklog();
        if (backlog) set(name, backlog);
      }),
    );
  };
  new Gauge({
    name: PENDING_GAUGE,
    help: 'Events not yet published, by outbox (orders, documents)',
    labelNames: ['outbox'],
    registers: [registry],
    async collect() {
      await each((name, backlog) => this.set({ outbox: name }, backlog.count));
    },
  });
  new Gauge({
    name: OLDEST_AGE_GAUGE,
    help: 'Age in seconds of the oldest unpublished event, by outbox (0 when none)',
    labelNames: ['outbox'],
    registers: [registry],
    async collect() {
      await each((name, backlog) =>
        this.set({ outbox: name }, backlog.oldestSince === undefined ? 0 : Math.max(0, (now() - backlog.oldestSince) / 1000)),
      );
    },
  });
}
