import { Errors } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { IdempotencyRecords } from './homed-idempotency-store.ts';

export type WorkAnswer<T> = { statusCode: number; body: T; replayed?: boolean };
export type IdempotentAnswer<T> = { statusCode: number; body: T; replayed: boolean };

export type IdempotentRequestsOptions = {
  store: IdempotencyRecords;
  metrics: Pick<Metrics, 'idempotentReplays'>;
  /** How long a request with a key in flight waits for the first one before answering 409. */
  inFlightWaitMs?: number;
};

/**
 * Runs a create at most once per Idempotency-Key: the same key and request
 * get the stored answer again, another request with the key gets 422, and a
 * request arriving while the first is in flight waits a little for it, then
 * gets 409. The work receives the resource id named in the record, so a
 * request that takes over a crashed one finishes the same resource.
 */
export class IdempotentRequests {
  private readonly options: IdempotentRequestsOptions;
  /** Concurrent requests with one key in this process wait for the first instead of polling the table. */
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(options: IdempotentRequestsOptions) {
    this.options = options;
  }

  /**
   * The resource id a live record of this key names, if any: work that must
   * be placed before it can claim the key (content staged in S3 under the
   * document's id) uses it, so that a takeover finishes with that content.
   */
  async resourceOf(route: string, scope: { tenant: string; key: string }): Promise<string | undefined> {
    return this.options.store.peek(this.pk(route, scope));
  }

  private pk(route: string, scope: { tenant: string; key: string }): string {
    return `${scope.tenant}#${route}#${scope.key}`;
  }

  async run<T>(
    route: string,
    scope: { tenant: string; key: string; fingerprint: string; resourceId: string },
    work: (resourceId: string) => Promise<WorkAnswer<T>>,
  ): Promise<IdempotentAnswer<T>> {
    const pk = this.pk(route, scope);
    const waitUntil = Date.now() + (this.options.inFlightWaitMs ?? 2000);
    for (let pause = 25; ; pause = Math.min(pause * 2, 250)) {
      const pending = this.pending.get(pk);
      if (pending) {
        await pending.catch(() => {});
        continue;
      }
      const attempt = this.attempt(route, pk, scope, work);
      this.pending.set(pk, attempt);
      try {
        const answer = await attempt;
        if (answer !== 'in-flight') return answer;
      } finally {
        if (this.pending.get(pk) === attempt) this.pending.delete(pk);
      }
      if (Date.now() + pause > waitUntil) throw new Errors.IdempotencyKeyInUse();
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  private async attempt<T>(
    route: string,
    pk: string,
    scope: { fingerprint: string; resourceId: string },
    work: (resourceId: string) => Promise<WorkAnswer<T>>,
  ): Promise<IdempotentAnswer<T> | 'in-flight'> {
    const claim = await this.options.store.claim(pk, scope.fingerprint, scope.resourceId);
    switch (claim.kind) {
      case 'mismatch':
        throw new Errors.IdempotencyKeyReused();
      case 'in-flight':
        return 'in-flight';
      case 'replay':
        this.options.metrics.idempotentReplays.inc({ route });
        return { statusCode: claim.response.statusCode, body: claim.response.body as T, replayed: true };
      case 'started':
        break;
    }
    try {
      const outcome = await work(claim.resourceId);
      await this.options.store.complete(pk, claim.token, { statusCode: outcome.statusCode, headers: {}, body: outcome.body });
      return { statusCode: outcome.statusCode, body: outcome.body, replayed: outcome.replayed ?? false };
    } catch (error) {
      await this.options.store.release(pk, claim.token).catch(() => {});
      throw error;
    }
  }
}
