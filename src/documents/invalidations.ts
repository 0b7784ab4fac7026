import { randomUUID } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import type { RedisCircuit } from '../adapters/redis.ts';

export const INVALIDATION_CHANNEL = 'documents:invalidated';

/** A delete committed in another region, relayed here (InvalidationConsumer): where, and when. */
export type RemoteDelete = { origin: string; deletedAtMs: number };

export type InvalidationBusOptions = {
  /** The connection that only subscribes. */
  subscriber: Redis;
  /** Commands (publishes), through the circuit. */
  circuit: RedisCircuit;
  /** How long a heartbeat heard back lets this instance serve from memory; also a delete's longest wait. */
  leaseMs: number;
  /** A key to drop from memory: a delete announced by any instance, this one included; `remote` for a delete made in another region. */
  onInvalidate(key: string, remote?: RemoteDelete): void;
  /** Everything in memory is suspect: the subscription dropped, so announcements may have been missed. */
  onReset(): void;
};

/**
 * Deletes announced to every instance's process memory, so that a DELETE
 * answered 204 is final on all of them (the contract), with a bound.
 *
 * The deleting instance writes the tombstone and PUBLISHes the key in one
 * MULTI; PUBLISH answers how many subscribers Redis handed the message to.
 * Each of them drops the key from memory, then acknowledges on the deleter's
 * own channel; the delete returns once all have. Redis having sent a message
 * is not a process having handled it: the acknowledgement is.
 *
 * An instance that does not acknowledge (its event loop stalled, its
 * connection hung) is covered by its lease: it serves from memory only until
 * `leaseMs` after the send time of the last heartbeat of its own that came
 * back through its subscription. Redis delivers a connection's messages in
 * the order it ran the PUBLISHes, so an instance that heard a heartbeat sent
 * after a delete has handled that delete first. A heartbeat sent before the
 * delete reached Redis gives a lease that ends before `leaseMs` after the
 * deleter got its PUBLISH answer, which is as long as the deleter waits for
 * missing acknowledgements: after that, no instance that missed the delete
 * can still serve from memory. Both sides measure on their own monotonic
 * clock, so clock skew between hosts plays no part.
 *
 * (Pub/sub must stay on one Redis primary for that ordering: classic
 * PUBLISH on a cluster fans out across nodes without a global order.)
 */
export class InvalidationBus {
  private readonly options: InvalidationBusOptions;
  readonly instance = randomUUID();
  private readonly acksChannel: string;
  private readonly beatChannel: string;
  private live = false;
  private leaseUntil = 0;
  private readonly waiting = new Map<string, () => void>();
  private readonly beat: NodeJS.Timeout;

  constructor(options: InvalidationBusOptions) {
    this.options = options;
    this.acksChannel = `documents:acks:${this.instance}`;
    this.beatChannel = `documents:beat:${this.instance}`;
    this.listen(options.subscriber);
    // Four heartbeats per lease: one lost, or a little late, costs no hits.
    this.beat = setInterval(() => this.sendBeat(), Math.max(10, Math.floor(options.leaseMs / 4)));
    this.beat.unref();
    options.subscriber.once('end', () => clearInterval(this.beat));
  }

  /** Whether process memory may answer reads: subscribed, and within the lease of a heartbeat heard back. */
  get serving(): boolean {
    return this.live && performance.now() < this.leaseUntil;
  }

  /** Subscribed at all: fills of memory are worth keeping (serving may come back with the next heartbeat). */
  get subscribed(): boolean {
    return this.live;
  }

  private listen(subscriber: Redis) {
    subscriber.on('ready', () => {
      subscriber.subscribe(INVALIDATION_CHANNEL, this.acksChannel, this.beatChannel).then(
        () => {
          this.options.onReset();
          this.live = true;
          this.sendBeat();
        },
        () => subscriber.disconnect(true),
      );
    });
    subscriber.on('close', () => {
      this.live = false;
      this.leaseUntil = 0;
      this.options.onReset();
    });
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === INVALIDATION_CHANNEL) return this.invalidated(message);
      if (channel === this.acksChannel) return this.waiting.get(message)?.();
      if (channel === this.beatChannel) {
        const sentAt = Number(message);
        if (Number.isFinite(sentAt)) this.leaseUntil = Math.max(this.leaseUntil, sentAt + this.options.leaseMs);
      }
    });
  }

  /** `<key> <acknowledgement channel> <nonce>[ <origin region> <deletedAt ms>]`; keys hold no spaces. */
  private invalidated(message: string) {
    const [key, replyTo, nonce, origin, deletedAt] = message.split(' ');
    if (!key) return;
    const deletedAtMs = Number(deletedAt);
    this.options.onInvalidate(key, origin && Number.isFinite(deletedAtMs) ? { origin, deletedAtMs } : undefined);
    if (replyTo && nonce) void this.options.circuit.call((redis) => redis.publish(replyTo, nonce), true);
  }

  private sendBeat() {
    if (!this.live) return;
    const sentAt = performance.now();
    void this.options.circuit.call((redis) => redis.publish(this.beatChannel, String(sentAt)));
  }

  /**
   * Runs `write` (the tombstone) and the announcement of `key` in one MULTI,
   * then waits until every subscriber acknowledged it, or until the lease
   * bound. False when Redis did not take the write (the caller answers 503).
   * Tried even with the circuit open: a lost tombstone matters more than a
   * slow delete.
   */
  async announce(key: string, write: (multi: ChainableCommander) => ChainableCommander, remote?: RemoteDelete): Promise<boolean> {
    const nonce = randomUUID();
    let acknowledged = 0;
    let expected = Number.POSITIVE_INFINITY;
    let finish: () => void = () => {};
    const all = new Promise<void>((resolve) => (finish = resolve));
    this.waiting.set(nonce, () => {
      acknowledged += 1;
      if (acknowledged >= expected) finish();
    });
    try {
      const outcome = await this.options.circuit.call(
        (redis) => write(redis.multi()).publish(INVALIDATION_CHANNEL, `${key} ${this.acksChannel} ${nonce}${remote ? ` ${remote.origin} ${remote.deletedAtMs}` : ''}`).exec(),
        true,
      );
      if (!outcome.ok || outcome.value === null || outcome.value.some(([error]) => error !== null)) return false;
      const receivers = outcome.value.at(-1)?.[1];
      expected = typeof receivers === 'number' ? receivers : 0;
      if (acknowledged >= expected) return true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.leaseMs)))]);
      clearTimeout(timer);
      return true;
    } finally {
      this.waiting.delete(nonce);
    }
  }
}
