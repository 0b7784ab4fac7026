import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { BackgroundLoop, OnBackgroundLoop } from '../background-loop.ts';
import { inSpan, type TraceCarrier } from '../telemetry/message-spans.ts';
import type { OutboxName } from './outbox-metrics.ts';
import type { OutboxEntry, OutboxStore } from './outbox-store.ts';

const RELAY_COUNTER = 'outbox_relay_events_total';

export type RelaySweep = { claimed: number; published: number; failed: number };

/** Event ids by outcome, and the first error behind a failure (for the caller's log). */
export type PublishResult = { published: string[]; failed: string[]; error?: unknown };

/**
 * An event to publish, with the trace context of the request that made it
 * (empty when that request was not traced): each message's creation span is
 * that request's child, whoever publishes it and when.
 */
export type Outgoing<E> = { event: E; origin?: TraceCarrier };

/** Sends events to the bus; never throws: whatever failed stays pending. */
export type EventPublisher<E> = { publish(events: readonly Outgoing<E>[], timeoutMs: number): Promise<PublishResult> };

export type OutboxRelayOptions<E extends { id: string }> = {
  /** Which outbox, in metrics and logs. */
  name: OutboxName;
  store: OutboxStore<E>;
  publisher: EventPublisher<E>;
  log: Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>;
  /** Events one sweep claims at most. */
  batchSize: number;
  /** Events younger than this are left to the API's own attempt. */
  graceMs: number;
  /** How long a claim keeps other replicas off an event. */
  leaseMs: number;
  /** Pause between sweeps that found less than a full batch. */
  intervalMs: number;
  publishTimeoutMs?: number;
  /** Names this replica in its leases; unique by default. */
  owner?: string;
  registry?: Registry;
  now?: () => number;
};

/**
 * Publishes the events the API could not: reads the pending ones from the
 * sparse index, leases each with a conditional write (so replicas rarely
 * publish the same event twice), publishes them in batches and marks them
 * published. A replica that dies holding leases only delays those events
 * until the leases run out. Delivery is at least once: consumers deduplicate
 * on the event id.
 */
export class OutboxRelay<E extends { id: string }> extends OnBackgroundLoop {
  private readonly options: OutboxRelayOptions<E>;
  private readonly now: () => number;
  readonly owner: string;
  private readonly outcomes: Counter<'outbox' | 'result'> | undefined;
  protected readonly loop: BackgroundLoop;

  constructor(options: OutboxRelayOptions<E>) {
    super();
    this.options = options;
    this.now = options.now ?? Date.now;
    this.owner = options.owner ?? `relay-${randomUUID()}`;
    // One counter for the relays of a process, told apart by their outbox.
    this.outcomes = options.registry
      ? ((options.registry.getSingleMetric(RELAY_COUNTER) as Counter<'outbox' | 'result'> | undefined) ??
        new Counter({
          name: RELAY_COUNTER,
          help: 'Events handled by the relay, by outbox (orders, documents) and result (published, failed)',
          labelNames: ['outbox', 'result'],
          registers: [options.registry],
        }))
      : undefined;
    this.loop = new BackgroundLoop(
      async () => {
        const result = await this.sweep();
        // A full batch means more is waiting: sweep again at once.
        return result.claimed >= options.batchSize && result.failed === 0 ? 0 : options.intervalMs;
      },
      {
        backoffMs: (failures) => options.intervalMs * Math.min(2 ** failures, 30),
        onError: (err) => options.log.error({ err }, 'relay sweep failed'),
      },
    );
  }

  /** One pass: claim up to a batch of the oldest pending events, publish, mark. */
  async sweep(): Promise<RelaySweep> {
    const { store, batchSize, graceMs } = this.options;
    const startedAt = Date.now();
    const now = this.now();
    const candidates = await store.pending(now - graceMs, now, batchSize);
    if (candidates.length === 0) return { claimed: 0, published: 0, failed: 0 };
    // A sweep that found work is a trace of its own (empty ones, every second, are not);
    // each event's creation span still belongs to the trace of the request that made it.
    return inSpan('outbox relay', { startTime: startedAt, attributes: { 'outbox.candidates': candidates.length } }, async (span) => {
      const result = await this.publishCandidates(candidates, now);
      span?.setAttributes({ 'outbox.claimed': result.claimed, 'outbox.published': result.published, 'outbox.failed': result.failed });
      return result;
    });
  }

  private async publishCandidates(candidates: OutboxEntry<E>[], now: number): Promise<RelaySweep> {
    const { store, leaseMs } = this.options;
    const claims = await Promise.all(
      candidates.map(async (candidate) => ((await store.claim(candidate.key, this.owner, now, now + leaseMs)) ? candidate : undefined)),
    );
    const claimed = claims.filter((candidate): candidate is OutboxEntry<E> => candidate !== undefined);
    if (claimed.length === 0) return { claimed: 0, published: 0, failed: 0 };

    const byId = new Map(claimed.map((candidate) => [candidate.event.id, candidate]));
    const result = await this.options.publisher.publish(
      claimed.map(({ event, origin }) => ({ event, ...(origin ? { origin } : {}) })),
      this.options.publishTimeoutMs ?? 5000,
    );
    await Promise.all([
      ...result.published.map((id) => store.markPublished(byId.get(id)!.key, this.now())),
      ...result.failed.map((id) => store.release(byId.get(id)!.key, this.owner)),
    ]);
    if (result.failed.length > 0) {
      this.options.log.warn({ err: result.error, outbox: this.options.name, failed: result.failed.length }, 'events not published: will retry');
    }
    this.outcomes?.inc({ outbox: this.options.name, result: 'published' }, result.published.length);
    this.outcomes?.inc({ outbox: this.options.name, result: 'failed' }, result.failed.length);
    return { claimed: claimed.length, published: result.published.length, failed: result.failed.length };
  }

}
