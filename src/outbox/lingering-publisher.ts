import type { EventPublisher, Outgoing } from './outbox-relay.ts';

/** SNS PublishBatch takes ten. */
const BATCH = 10;

/** What became of one event handed to a LingeringPublisher. */
export type Publication = { published: boolean; error?: unknown };

export type LingeringPublisherOptions = {
  /** Deadline of each call to the publisher. */
  timeoutMs: number;
  /** How long an event waits for others to share its call (5 ms). */
  lingerMs?: number;
};

/**
 * One event at a time in, calls of up to ten out: events handed over within
 * `lingerMs` of each other share one publisher call, and each caller learns
 * what became of its own event. Under load a call carries up to ten, where a
 * call per event cost an order most of its CPU in the AWS SDK's SNS client
 * (bench/README.md, "CPU per order"). Never rejects, as the publisher.
 */
export class LingeringPublisher<E extends { id: string }> {
  private readonly publisher: EventPublisher<E>;
  private readonly options: LingeringPublisherOptions;
  private queued: { outgoing: Outgoing<E>; settle: (publication: Publication) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(publisher: EventPublisher<E>, options: LingeringPublisherOptions) {
    this.publisher = publisher;
    this.options = options;
  }

  publish(outgoing: Outgoing<E>): Promise<Publication> {
    return new Promise((settle) => {
      this.queued.push({ outgoing, settle });
      if (this.queued.length >= BATCH) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.lingerMs ?? 5).unref();
    });
  }

  /** Sends what waits now, without waiting out the linger (a drain). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queued;
    this.queued = [];
    if (batch.length === 0) return;
    this.publisher.publish(batch.map(({ outgoing }) => outgoing), this.options.timeoutMs).then(
      (result) => {
        const published = new Set(result.published);
        for (const { outgoing, settle } of batch) settle(published.has(outgoing.event.id) ? { published: true } : { published: false, error: result.error });
      },
      // A publisher that breaks its promise never to throw: the events stay pending all the same.
      (error: unknown) => {
        for (const { settle } of batch) settle({ published: false, error });
      },
    );
  }
}
