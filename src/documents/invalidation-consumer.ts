import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';
import { SqsQueue } from '../adapters/sqs-queue.ts';
import { BackgroundLoop, OnBackgroundLoop } from '../background-loop.ts';
import { parseDeletedEvent } from './deletion-events.ts';

export type InvalidationOutcome = 'applied' | 'own' | 'invalid' | 'failed';

export type InvalidationConsumerOptions = {
  sqs: SQSClient;
  /** DocumentCache.tombstone: Redis, and every instance of this region through its InvalidationBus. */
  tombstone(tenant: string, id: string, remote: { origin: string; deletedAtMs: number }): Promise<boolean>;
  /** This region: its own deletes are final here already. */
  region: string;
  queueName: string;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  log: Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>;
  registry?: Registry;
  now?: () => number;
};

/**
 * Makes the deletes of the other regions final in this one. Each region
 * publishes its deletes (`document.deleted`, with the tombstone's
 * `deletedAt`) on its document-events topic; this region's queue is
 * subscribed to all of them. For each event this writes the tombstone into
 * this region's Redis, which blocks every refill, and announces it to every
 * API instance of the region, which drop their copy in memory (and count
 * the reads they served since `deletedAt`: document_stale_reads_total).
 * A message is deleted only once that is done; a failure leaves it for
 * redelivery after the visibility timeout, and one that cannot be read goes
 * to the dead-letter queue after the queue's receive limit.
 */
export class InvalidationConsumer extends OnBackgroundLoop {
  private readonly options: InvalidationConsumerOptions;
  private readonly now: () => number;
  private readonly outcomes: Counter<'result'> | undefined;
  private readonly lag: Histogram | undefined;
  /** A loop of long polls: stop() ends the poll at once, and the messages in hand finish. */
  protected readonly loop: BackgroundLoop;
  private readonly queue: SqsQueue;

  constructor(options: InvalidationConsumerOptions) {
    super();
    this.options = options;
    this.now = options.now ?? Date.now;
    this.queue = new SqsQueue(options.sqs, { name: options.queueName });
    const registers = options.registry ? [options.registry] : undefined;
    if (registers) {
      this.outcomes = new Counter({
        name: 'document_invalidations_total',
        help: 'Deletes of other regions received, by result (applied, own, invalid, failed)',
        labelNames: ['result'],
        registers,
      });
      this.lag = new Histogram({
        name: 'document_invalidation_lag_seconds',
        help: 'From a delete committed in another region to its tombstone written and announced here: the stale-read window',
        buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
        registers,
      });
    }
    this.loop = BackgroundLoop.ofLongPolls(() => this.pollOnce(), {
      abort: () => this.queue.abort(),
      onError: (err) => options.log.error({ err }, 'receiving document invalidations failed'),
    });
  }

  private async handle(message: Message): Promise<InvalidationOutcome> {
    const event = parseDeletedEvent(message.Body);
    if (!event) return 'invalid';
    if (event.region === this.options.region) return 'own';
    const deletedAtMs = Date.parse(event.time);
    const done = await this.options.tombstone(event.tenant, event.data.id, { origin: event.region, deletedAtMs }).catch(() => false);
    if (!done) return 'failed';
    this.lag?.observe(Math.max(0, this.now() - deletedAtMs) / 1000);
    return 'applied';
  }

  /** One receive (long poll) and its messages handled. */
  async pollOnce(): Promise<Record<InvalidationOutcome, number>> {
    const result = { applied: 0, own: 0, invalid: 0, failed: 0 };
    if (this.loop.stopped) return result;
    const messages = await this.queue.receive(this.options.waitTimeSeconds, this.options.visibilityTimeoutSeconds);
    const handled = await Promise.all(messages.map(async (message) => ({ message, outcome: await this.handle(message) })));
    const done: Message[] = [];
    const poison: Message[] = [];
    for (const { message, outcome } of handled) {
      result[outcome] += 1;
      this.outcomes?.inc({ result: outcome });
      if (outcome === 'applied' || outcome === 'own') done.push(message);
      if (outcome === 'invalid') {
        poison.push(message);
        this.options.log.warn({ messageId: message.MessageId }, 'not a document.deleted event: left for the dead-letter queue');
      }
    }
    // A lost acknowledgement is a redelivery, and a tombstone written twice is one tombstone.
    const unsettled = await this.queue.settle(done, poison);
    if (unsettled.length > 0) this.options.log.warn({ unsettled }, 'acknowledging invalidations failed: they come back');
    return result;
  }
}
