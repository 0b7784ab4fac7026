import { v7 as uuidv7 } from 'uuid';
import type { FastifyBaseLogger } from 'fastify';
import { Errors } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { canonicalHash } from './canonical.ts';
import { orderAcceptedEvent, type OrderEventPublisher } from './order-events.ts';
import { LingeringPublisher } from '../outbox/lingering-publisher.ts';
import type { Acceptance, OrderStore } from './order-store.ts';
import type { IdempotentRequests } from '../idempotency/idempotent-requests.ts';
import { currentTraceContext, type TraceCarrier } from '../telemetry/message-spans.ts';
import { ORDER_ID_PATTERN, type NewOrder, type Order, type OrderAcceptedEvent, type OrderView } from './schemas.ts';

export type AcceptAnswer = { order: Order; replayed: boolean };

export type OrderIntakeOptions = {
  store: OrderStore;
  /** Idempotency-Key handling, shared with documents; without it a key is only validated. */
  requests?: IdempotentRequests;
  publisher: OrderEventPublisher;
  log: Pick<FastifyBaseLogger, 'warn'>;
  metrics?: Pick<Metrics, 'idempotentReplays'>;
  dedupWindowSeconds: number;
  /** Deadline of the publish attempt made before answering. */
  publishTimeoutMs: number;
  /** After a failed attempt, leave publishing to the relay for this long instead of making every request wait. */
  publishPauseMs?: number;
  /** How long an order's event waits for those of concurrent orders, to share one PublishBatch (5 ms). */
  publishLingerMs?: number;
  now?: () => number;
  /**
   * Runs once the order is durably written, before the publish attempt. For
   * tests: throwing here is a process dying between the write and the publish.
   */
  afterWrite?: (order: Order) => Promise<void> | void;
};

const ORDER_ID = new RegExp(ORDER_ID_PATTERN);
const ROUTE = 'POST /orders';

function orderFrom(acceptance: Acceptance, input: NewOrder): Order {
  return {
    orderId: acceptance.orderId,
    status: 'ACCEPTED',
    acceptedAt: acceptance.acceptedAt,
    customerId: input.customerId,
    items: input.items.map((line) => ({ sku: line.sku, quantity: line.quantity })),
  };
}

/**
 * Order acceptance: deduplication by payload, a durable order with its event
 * pending, and one publication attempt that can fail without failing the
 * order (the relay publishes whatever stays pending).
 */
export class OrderIntake {
  private readonly options: OrderIntakeOptions;
  private readonly now: () => number;
  private readonly publisher: LingeringPublisher<OrderAcceptedEvent>;
  private publishPausedUntil = 0;

  constructor(options: OrderIntakeOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.publisher = new LingeringPublisher(options.publisher, { timeoutMs: options.publishTimeoutMs, lingerMs: options.publishLingerMs });
  }

  /**
   * With an Idempotency-Key, the key is the identity of the request on top of
   * the payload dedup: the same key and payload answer the same order even
   * after the dedup window, and the key with another payload is a 422.
   */
  async acceptOnce(tenant: string, input: NewOrder, idempotencyKey: string | undefined): Promise<AcceptAnswer> {
    const hash = canonicalHash(input);
    const requests = this.options.requests;
    if (idempotencyKey === undefined || !requests) return this.accept(tenant, input, hash);
    const answer = await requests.run(
      ROUTE,
      { tenant, key: idempotencyKey, fingerprint: hash, resourceId: uuidv7({ msecs: this.now() }) },
      async (orderId) => {
        const accepted = await this.accept(tenant, input, hash, orderId);
        return { statusCode: 201, body: accepted.order, replayed: accepted.replayed };
      },
    );
    return { order: answer.body, replayed: answer.replayed };
  }

  /**
   * 1. claim the payload's dedup record, naming a fresh order id;
   * 2. write the order (event PENDING);
   * 3. try to publish, and mark PUBLISHED if that worked.
   * A duplicate finds the record and answers its order, writing it first if
   * the request that claimed the record died before step 2: every step can be
   * redone by the next identical request, with the same id and the same body.
   * `hash` is the payload's canonical hash (RFC 8785), computed once per request.
   */
  private async accept(tenant: string, input: NewOrder, hash: string, preferredOrderId?: string): Promise<AcceptAnswer> {
    const windowMs = this.options.dedupWindowSeconds * 1000;
    // More than one round only when a record expires between our write and our read.
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = this.now();
      // An idempotency record names the order id first, so a takeover finishes that order.
      const orderId = attempt === 0 && preferredOrderId ? preferredOrderId : uuidv7({ msecs: now });
      const mine: Acceptance = { orderId, acceptedAt: new Date(now).toISOString() };
      if (await this.options.store.claimDedup(tenant, hash, mine, now, windowMs)) {
        return { order: await this.complete(tenant, orderFrom(mine, input)), replayed: false };
      }
      const existing = await this.options.store.readDedup(tenant, hash);
      if (!existing || existing.windowEndsAt < this.now()) continue;
      // Our own claim, committed by an attempt whose answer was lost and retried: not a duplicate.
      if (existing.orderId === mine.orderId) return { order: await this.complete(tenant, orderFrom(mine, input)), replayed: false };
      this.options.metrics?.idempotentReplays.inc({ route: ROUTE });
      const stored = await this.options.store.get(tenant, existing.orderId);
      if (stored) return { order: stored.order, replayed: true };
      // The first request died between its claim and its write: finish its order.
      return { order: await this.complete(tenant, orderFrom(existing, input)), replayed: true };
    }
    throw new Errors.ServiceUnavailable();
  }

  private async complete(tenant: string, order: Order): Promise<Order> {
    const origin = currentTraceContext();
    const written = await this.options.store.insert(tenant, order, this.now(), origin);
    // Already there: written by the request this one finishes; its stored form is the answer.
    if (written === 'exists') return (await this.options.store.get(tenant, order.orderId))?.order ?? order;
    // Whoever wrote the order makes the first attempt; a concurrent duplicate that lost the write does not.
    await this.options.afterWrite?.(order);
    await this.publish(tenant, order, origin);
    return order;
  }

  /** Best effort by design: any failure leaves the event pending, and the order stands. */
  private async publish(tenant: string, order: Order, origin: TraceCarrier): Promise<void> {
    if (this.now() < this.publishPausedUntil) return;
    // Shared with the events of concurrent orders: one SNS call for up to ten orders.
    const result = await this.publisher.publish({ event: orderAcceptedEvent(tenant, order), origin });
    if (!result.published) {
      this.publishPausedUntil = this.now() + (this.options.publishPauseMs ?? 5000);
      this.options.log.warn({ err: result.error, orderId: order.orderId }, 'order event not published: left to the relay');
      return;
    }
    try {
      await this.options.store.markPublished(tenant, order.orderId, this.now());
    } catch (err) {
      // Still PENDING: the relay will publish it again, and consumers deduplicate by event id.
      this.options.log.warn({ err, orderId: order.orderId }, 'order event published but not marked');
    }
  }

  async read(tenant: string, orderId: string): Promise<OrderView> {
    // Ids are ours: anything not shaped like one cannot exist, and costs no read.
    const stored = ORDER_ID.test(orderId) ? await this.options.store.get(tenant, orderId) : undefined;
    if (!stored) throw new Errors.OrderNotFound(orderId);
    return { ...stored.order, event: { status: stored.eventStatus } };
  }
}
