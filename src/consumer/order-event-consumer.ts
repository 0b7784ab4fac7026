import { BackgroundLoop } from '../background-loop.ts';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { Compile } from 'typebox/compile';
import { OrderAcceptedEvent } from '../orders/schemas.ts';
import { SpanKind, carrierOf, inSpan, linksTo, type TraceCarrier } from '../telemetry/message-spans.ts';
import type { AppliedOrderStore } from './applied-orders.ts';

export type Outcome = 'applied' | 'duplicate' | 'invalid' | 'busy' | 'failed';
export type PollResult = Record<Outcome, number>;

/** An SNS envelope's own message attributes (trace context) come with the event it wraps. */
export type ParsedEvent = { ok: true; event: OrderAcceptedEvent; traceContext?: TraceCarrier } | { ok: false; reason: string };

const validator = Compile(OrderAcceptedEvent);

/**
 * The event from a message body: the raw CloudEvent (the subscription uses
 * raw message delivery), or the same inside an SNS notification envelope,
 * in case a subscription is ever made without it.
 */
export function parseEvent(body: string | undefined): ParsedEvent {
  let value: unknown;
  let traceContext: TraceCarrier | undefined;
  try {
    value = JSON.parse(body ?? '');
    const envelope = value as { Type?: unknown; Message?: unknown; MessageAttributes?: Record<string, { Value?: string }> } | null;
    if (envelope?.Type === 'Notification' && typeof envelope.Message === 'string') {
      value = JSON.parse(envelope.Message);
      traceContext = carrierOf(envelope.MessageAttributes);
    }
  } catch {
    return { ok: false, reason: 'the body is not JSON' };
  }
  if (validator.Check(value)) return { ok: true, event: value, ...(traceContext ? { traceContext } : {}) };
  const reasons = validator.Errors(value).slice(0, 3).map((error) => `${error.instancePath || '/'} ${error.message}`);
  return { ok: false, reason: `not an ${OrderAcceptedEvent.properties.type.const} event: ${reasons.join('; ')}` };
}

const messagingAttributes = (queue: string) => ({ 'messaging.system': 'aws_sqs', 'messaging.destination.name': queue });

/** The trace context a message carries: SQS attributes (raw delivery), or its SNS envelope's. */
function traceContextOf(message: Message, parsed: ParsedEvent): TraceCarrier | undefined {
  return carrierOf(message.MessageAttributes) ?? (parsed.ok ? parsed.traceContext : undefined);
}

export type OrderEventConsumerOptions = {
  sqs: SQSClient;
  store: AppliedOrderStore;
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
export class OrderEventConsumer {
  private readonly options: OrderEventConsumerOptions;
  private readonly now: () => number;
  private readonly outcomes: Counter<'result'> | undefined;
  private queueUrl: string | undefined;
  private readonly loop: BackgroundLoop;
  private receiving: AbortController | undefined;

  constructor(options: OrderEventConsumerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    if ('url' in options.queue) this.queueUrl = options.queue.url;
    this.outcomes = options.registry
      ? new Counter({
          name: 'order_events_consumed_total',
          help: 'Order events received by the consumer, by result (applied, duplicate, invalid, busy, failed)',
          labelNames: ['result'],
          registers: [options.registry],
        })
      : undefined;
    this.loop = new BackgroundLoop(
      async () => {
        await this.pollOnce();
        return 0; // the long poll is the pause
      },
      {
        backoffMs: (failures) => Math.min(250 * 2 ** failures, 10_000),
        onError: (err) => options.log.error({ err }, 'receiving order events failed'),
        onStop: () => this.receiving?.abort(),
      },
    );
  }

  /** One message body: parse, check, apply once. Never throws. */
  async handle(body: string | undefined): Promise<{ outcome: Outcome; reason?: string }> {
    const parsed = parseEvent(body);
    if (!parsed.ok) return { outcome: 'invalid', reason: parsed.reason };
    return this.apply(parsed.event);
  }

  private async apply(event: OrderAcceptedEvent): Promise<{ outcome: Outcome }> {
    const { store } = this.options;
    try {
      const now = this.now();
      const claim = await store.claim(event.id, now, this.options.visibilityTimeoutSeconds * 1000);
      if (claim === 'applied') return { outcome: 'duplicate' };
      if (claim === 'busy') return { outcome: 'busy' };
      const created = await store.record(event, now);
      await store.complete(event.id, this.now());
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
    const queueUrl = await this.resolveQueueUrl();
    const receivedAt = Date.now();
    const messages = await this.receive(queueUrl);
    if (messages.length === 0) return { applied: 0, duplicate: 0, invalid: 0, busy: 0, failed: 0 };
    // Traced only once something arrived (an idle long poll is not worth a trace): a receive
    // span linked to each message's creation, and per message a process span that continues
    // the message's own trace, from the request that accepted the order.
    const queue = queueUrl.split('/').at(-1) ?? queueUrl;
    const parsed = messages.map((message) => ({ message, parsed: parseEvent(message.Body) }));
    const contexts = parsed.map(({ message, parsed }) => traceContextOf(message, parsed));
    return inSpan(
      `receive ${queue}`,
      {
        kind: SpanKind.CLIENT,
        startTime: receivedAt,
        links: linksTo(contexts),
        attributes: { ...messagingAttributes(queue), 'messaging.operation.type': 'receive', 'messaging.batch.message_count': messages.length },
      },
      () => this.handleAll(queueUrl, queue, parsed, contexts),
    );
  }

  private async handleOne(message: Message, parsed: ParsedEvent, byEvent: Map<string, Promise<unknown>>) {
    if (!parsed.ok) return { message, outcome: 'invalid' as const, reason: parsed.reason };
    const previous = byEvent.get(parsed.event.id);
    const applying = (previous ?? Promise.resolve()).then(() => this.apply(parsed.event));
    byEvent.set(parsed.event.id, applying);
    return { message, reason: undefined, ...(await applying) };
  }

  private async handleAll(
    queueUrl: string,
    queue: string,
    received: { message: Message; parsed: ParsedEvent }[],
    contexts: (TraceCarrier | undefined)[],
  ): Promise<PollResult> {
    const result: PollResult = { applied: 0, duplicate: 0, invalid: 0, busy: 0, failed: 0 };
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
      if (outcome === 'invalid') {
        poison.push(message);
        this.options.log.warn(
          { messageId: message.MessageId, receiveCount: message.Attributes?.ApproximateReceiveCount, reason },
          'invalid message: left for the dead-letter queue',
        );
      }
    }
    const entries = (list: Message[]) => list.map((message, index) => ({ Id: `m${index}`, ReceiptHandle: message.ReceiptHandle! }));
    const calls: Promise<unknown>[] = [];
    if (done.length > 0) {
      calls.push(this.options.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries(done) })));
    }
    if (poison.length > 0) {
      // Retrying cannot fix it: make it visible again at once, so that the
      // redrive policy moves it to the dead-letter queue after the configured
      // receives, without waiting a visibility timeout for each.
      calls.push(
        this.options.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: entries(poison).map((entry) => ({ ...entry, VisibilityTimeout: 0 })),
          }),
        ),
      );
    }
    // A lost delete only means a redelivery, which the dedup marker absorbs.
    const settled = await Promise.allSettled(calls);
    for (const outcome of settled) {
      const failed = outcome.status === 'fulfilled' ? (outcome.value as { Failed?: unknown[] }).Failed : undefined;
      if (outcome.status === 'rejected' || failed?.length) {
        this.options.log.warn({ err: outcome.status === 'rejected' ? outcome.reason : undefined, failed }, 'acknowledging messages failed');
      }
    }
    return result;
  }

  /** Polls until stop(), backing off while SQS or the table fails. */
  start(): void {
    this.loop.start();
  }

  /** Ends the long poll at once, lets the messages in hand finish, then returns. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  get healthy(): boolean {
    return this.loop.healthy;
  }

  private async resolveQueueUrl(): Promise<string> {
    if (this.queueUrl) return this.queueUrl;
    const name = (this.options.queue as { name: string }).name;
    const { QueueUrl } = await this.options.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (!QueueUrl) throw new Error(`queue ${name} has no URL`);
    this.queueUrl = QueueUrl;
    return QueueUrl;
  }

  private async receive(queueUrl: string): Promise<Message[]> {
    if (this.loop.stopped) return [];
    const controller = new AbortController();
    this.receiving = controller;
    try {
      const { waitTimeSeconds, visibilityTimeoutSeconds } = this.options;
      const { Messages } = await this.options.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: waitTimeSeconds,
          VisibilityTimeout: visibilityTimeoutSeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          // The W3C trace context the publisher put on the message (raw delivery keeps SNS attributes).
          MessageAttributeNames: ['traceparent', 'tracestate'],
        }),
        // A long poll outlasts the clients' usual request timeout on purpose.
        { abortSignal: controller.signal, requestTimeout: (waitTimeSeconds + 5) * 1000 },
      );
      return Messages ?? [];
    } finally {
      this.receiving = undefined;
    }
  }
}
