import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { Compile } from 'typebox/compile';
import { SqsQueue } from '../adapters/sqs-queue.ts';
import { BackgroundLoop, OnBackgroundLoop } from '../background-loop.ts';
import { canonicalHash } from '../orders/canonical.ts';
import { orderAcceptedEvent } from '../orders/order-events.ts';
import type { OrderStore } from '../orders/order-store.ts';
import { OrderAcceptedEvent } from '../orders/schemas.ts';
import { SpanKind, carrierOf, inSpan, linksTo, type TraceCarrier } from '../telemetry/message-spans.ts';
import type { AppliedOrderStore } from './applied-orders.ts';

export type HandlingOutcome = 'applied' | 'duplicate' | 'invalid' | 'refused' | 'busy' | 'failed';
export type PollResult = Record<HandlingOutcome, number>;

const noOutcomes = (): PollResult => ({ applied: 0, duplicate: 0, invalid: 0, refused: 0, busy: 0, failed: 0 });

/**
 * What the consumer makes of a message before it touches its table: an
 * event, or a message for the dead-letter queue, either malformed
 * ('invalid') or well-formed but not to be trusted ('refused').
 */
export type ParsedMessage =
  | { ok: true; event: OrderAcceptedEvent; traceContext?: TraceCarrier }
  | { ok: false; outcome: 'invalid' | 'refused'; reason: string };

/** The parts of an SQS message the consumer reads. */
export type QueueMessage = Pick<Message, 'Body' | 'MessageAttributes'>;

const validator = Compile(OrderAcceptedEvent);
const ATTRIBUTES = ['tenant', 'type'] as const;

type Envelope = { Type?: unknown; TopicArn?: unknown; Message?: unknown; MessageAttributes?: unknown };

const invalid = (reason: string): ParsedMessage => ({ ok: false, outcome: 'invalid', reason });
const refused = (reason: string): ParsedMessage => ({ ok: false, outcome: 'refused', reason });

/** The string attributes of an SNS envelope (`{ tenant: { Type, Value } }`). */
function envelopeAttributes(envelope: Envelope): Record<string, { Value: string }> {
  const found: Record<string, { Value: string }> = {};
  const attributes = envelope.MessageAttributes;
  if (typeof attributes !== 'object' || attributes === null) return found;
  for (const [name, attribute] of Object.entries(attributes)) {
    const value: unknown = typeof attribute === 'object' && attribute !== null ? Reflect.get(attribute, 'Value') : undefined;
    if (typeof value === 'string') found[name] = { Value: value };
  }
  return found;
}

/**
 * The event of a message, checked as far as the message alone allows. The
 * body is the raw CloudEvent (the subscription uses raw message delivery),
 * or the same inside an SNS notification envelope, which must name the
 * configured topic. The event id must be its order's id, and the message
 * attributes (SQS's, or the envelope's) must say the tenant and type the
 * body says: the publisher always sets both. An envelope's trace context
 * comes with the event it wraps.
 */
export function parseMessage(message: QueueMessage, topicArn: string): ParsedMessage {
  let value: unknown;
  let traceContext: TraceCarrier | undefined;
  const sources: Record<string, unknown>[] = [];
  if (message.MessageAttributes) {
    sources.push(Object.fromEntries(ATTRIBUTES.map((name) => [name, message.MessageAttributes?.[name]?.StringValue])));
  }
  try {
    value = JSON.parse(message.Body ?? '');
    const envelope: Envelope | null = typeof value === 'object' ? value : null;
    if (envelope?.Type === 'Notification' && typeof envelope.Message === 'string') {
      if (envelope.TopicArn !== topicArn) return refused(`the SNS envelope names the topic ${String(envelope.TopicArn).slice(0, 256)}`);
      const attributes = envelopeAttributes(envelope);
      sources.push(Object.fromEntries(ATTRIBUTES.map((name) => [name, attributes[name]?.Value])));
      traceContext = carrierOf(attributes);
      value = JSON.parse(envelope.Message);
    }
  } catch {
    return invalid('the body is not JSON');
  }
  if (!validator.Check(value)) {
    const reasons = validator.Errors(value).slice(0, 3).map((error) => `${error.instancePath || '/'} ${error.message}`);
    return invalid(`not an ${OrderAcceptedEvent.properties.type.const} event: ${reasons.join('; ')}`);
  }
  const event = value;
  if (event.id !== event.data.orderId) return refused('the event id is not its order id');
  const named = sources.filter((attributes) => ATTRIBUTES.some((name) => attributes[name] !== undefined));
  if (named.length === 0) return refused('the message has no tenant and type attributes');
  for (const attributes of named) {
    for (const name of ATTRIBUTES) {
      if (attributes[name] !== event[name]) return refused(`the ${name} attribute disagrees with the body`);
    }
  }
  return { ok: true, event, ...(traceContext ? { traceContext } : {}) };
}

const messagingAttributes = (queue: string) => ({ 'messaging.system': 'aws_sqs', 'messaging.destination.name': queue });

/** The trace context a message carries: SQS attributes (raw delivery), or its SNS envelope's. */
function traceContextOf(message: Message, parsed: ParsedMessage): TraceCarrier | undefined {
  return carrierOf(message.MessageAttributes) ?? (parsed.ok ? parsed.traceContext : undefined);
}

/** The CloudEvents attributes and data of the event, without extensions (which may differ, e.g. a trace context). */
function coreOf(event: OrderAcceptedEvent) {
  const { specversion, id, type, source, time, datacontenttype, tenant, data } = event;
  return { specversion, id, type, source, time, datacontenttype, tenant, data };
}

export type OrderEventConsumerOptions = {
  sqs: SQSClient;
  store: AppliedOrderStore;
  /** The orders, read (one consistent GetItem per event) to check that an event is the event of a real order. */
  orders: Pick<OrderStore, 'get'>;
  /** The only topic whose SNS envelopes are accepted. */
  topicArn: string;
  log: Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>;
  /** The queue by URL, or by name (resolved once with GetQueueUrl). */
  queue: { url: string } | { name: string };
  /** Long-poll wait, 0-20 s. */
  waitTimeSeconds: number;
  /** Also the lease on an event being applied: a redelivery comes no sooner. */
  visibilityTimeoutSeconds: number;
  registry?: Registry;
  now?: () => number;
  /** Called once per event whose side effect this consumer performed. */
  onApplied?: (event: OrderAcceptedEvent) => void;
};

/**
 * Applies order.accepted events at most once per event id, and every event
 * at least once: a message is deleted only after its event is applied (or
 * found applied before); a failure leaves it to come back after the
 * visibility timeout, and the queue's redrive policy moves a message that
 * keeps failing to the dead-letter queue.
 */
export class OrderEventConsumer extends OnBackgroundLoop {
  private readonly options: OrderEventConsumerOptions;
  private readonly now: () => number;
  private readonly outcomes: Counter<'result'> | undefined;
  private readonly queue: SqsQueue;
  protected readonly loop: BackgroundLoop;

  constructor(options: OrderEventConsumerOptions) {
    super();
    this.options = options;
    this.now = options.now ?? Date.now;
    this.queue = new SqsQueue(options.sqs, options.queue);
    this.outcomes = options.registry
      ? new Counter({
          name: 'order_events_consumed_total',
          help: 'Order events received by the consumer, by result (applied, duplicate, invalid, refused, busy, failed)',
          labelNames: ['result'],
          registers: [options.registry],
        })
      : undefined;
    this.loop = BackgroundLoop.ofLongPolls(() => this.pollOnce(), {
      abort: () => this.queue.abort(),
      onError: (err) => options.log.error({ err }, 'receiving order events failed'),
    });
  }

  /** One message: parse, check, apply once. Never throws. */
  async handle(message: QueueMessage): Promise<{ outcome: HandlingOutcome; reason?: string }> {
    const parsed = parseMessage(message, this.options.topicArn);
    if (!parsed.ok) return { outcome: parsed.outcome, reason: parsed.reason };
    return this.apply(parsed.event);
  }

  /**
   * The last check: the event must be, attribute for attribute, the event of
   * the order stored under its tenant. The order is written before its event
   * exists and the read is consistent, so a genuine event always passes; a
   * tenant that does not exist has no orders, so its events never do.
   */
  private async refusal(event: OrderAcceptedEvent): Promise<string | undefined> {
    const stored = await this.options.orders.get(event.tenant, event.data.orderId);
    if (!stored) return 'no such order for this tenant';
    if (canonicalHash(coreOf(event)) !== canonicalHash(orderAcceptedEvent(event.tenant, stored.order))) {
      return 'the event is not the stored order';
    }
    return undefined;
  }

  private async apply(event: OrderAcceptedEvent): Promise<{ outcome: HandlingOutcome; reason?: string }> {
    const { store } = this.options;
    try {
      const reason = await this.refusal(event);
      if (reason) return { outcome: 'refused', reason };
      const now = this.now();
      const claim = await store.claim(event, now, this.options.visibilityTimeoutSeconds * 1000);
      if (claim === 'applied') return { outcome: 'duplicate' };
      if (claim === 'busy') return { outcome: 'busy' };
      const created = await store.record(event, now);
      await store.complete(event, this.now());
      if (!created) return { outcome: 'duplicate' };
      this.options.log.info({ eventId: event.id, orderId: event.data.orderId, tenant: event.tenant }, 'order applied');
      this.options.onApplied?.(event);
      return { outcome: 'applied' };
    } catch (err) {
      this.options.log.warn({ err, eventId: event.id }, 'order event not applied: will be redelivered');
      return { outcome: 'failed' };
    }
  }

  /** One receive (long poll) and its messages handled; resolves with what happened to them. */
  async pollOnce(): Promise<PollResult> {
    const queueUrl = await this.queue.resolveUrl();
    const receivedAt = Date.now();
    // The tenant and type the body must agree with, and the W3C trace context the publisher
    // put on the message (raw delivery keeps SNS attributes).
    const messages = this.loop.stopped
      ? []
      : await this.queue.receive(this.options.waitTimeSeconds, this.options.visibilityTimeoutSeconds, [...ATTRIBUTES, 'traceparent', 'tracestate']);
    if (messages.length === 0) return noOutcomes();
    // Traced only once something arrived (an idle long poll is not worth a trace): a receive
    // span linked to each message's creation, and per message a process span that continues
    // the message's own trace, from the request that accepted the order.
    const queue = queueUrl.split('/').at(-1) ?? queueUrl;
    const parsed = messages.map((message) => ({ message, parsed: parseMessage(message, this.options.topicArn) }));
    const contexts = parsed.map(({ message, parsed }) => traceContextOf(message, parsed));
    return inSpan(
      `receive ${queue}`,
      {
        kind: SpanKind.CLIENT,
        startTime: receivedAt,
        links: linksTo(contexts),
        attributes: { ...messagingAttributes(queue), 'messaging.operation.type': 'receive', 'messaging.batch.message_count': messages.length },
      },
      () => this.handleAll(queue, parsed, contexts),
    );
  }

  private async handleOne(message: Message, parsed: ParsedMessage, byEvent: Map<string, Promise<unknown>>) {
    if (!parsed.ok) return { message, outcome: parsed.outcome, reason: parsed.reason };
    const key = `${parsed.event.tenant}#${parsed.event.id}`;
    const applying = (byEvent.get(key) ?? Promise.resolve()).then(() => this.apply(parsed.event));
    byEvent.set(key, applying);
    return { message, ...(await applying) };
  }

  private async handleAll(
    queue: string,
    received: { message: Message; parsed: ParsedMessage }[],
    contexts: (TraceCarrier | undefined)[],
  ): Promise<PollResult> {
    const result = noOutcomes();
    // Distinct events are applied concurrently; copies of one event in the
    // same batch wait for the first, so they are acknowledged as duplicates
    // now instead of coming back as "busy" after a visibility timeout.
    const byEvent = new Map<string, Promise<unknown>>();
    const handled = await Promise.all(
      received.map(({ message, parsed }, index) =>
        inSpan(
          `process ${queue}`,
          {
            kind: SpanKind.CONSUMER,
            ...(contexts[index] ? { parent: contexts[index] } : {}),
            attributes: { ...messagingAttributes(queue), 'messaging.operation.type': 'process', 'messaging.message.id': message.MessageId ?? '' },
          },
          async (span) => {
            const handledOne = await this.handleOne(message, parsed, byEvent);
            span?.setAttribute('order_events.outcome', handledOne.outcome);
            return handledOne;
          },
        ),
      ),
    );
    const done: Message[] = [];
    const poison: Message[] = [];
    for (const { message, outcome, reason } of handled) {
      result[outcome] += 1;
      this.outcomes?.inc({ result: outcome });
      if (outcome === 'applied' || outcome === 'duplicate') done.push(message);
      if (outcome === 'invalid' || outcome === 'refused') {
        poison.push(message);
        this.options.log.warn(
          { messageId: message.MessageId, receiveCount: message.Attributes?.ApproximateReceiveCount, outcome, reason },
          `${outcome} message: left for the dead-letter queue`,
        );
      }
    }
    // A lost delete only means a redelivery, which the dedup marker absorbs.
    const unsettled = await this.queue.settle(done, poison);
    if (unsettled.length > 0) this.options.log.warn({ unsettled }, 'acknowledging messages failed');
    return result;
  }

}
