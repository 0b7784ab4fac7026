import type { Regions } from '../adapters/regions.ts';
import type { IdempotencyStore } from './idempotency-store.ts';

/** What IdempotentRequests needs of the records. */
export type IdempotencyRecords = Pick<IdempotencyStore, 'claim' | 'complete' | 'release' | 'peek'>;

/**
 * Idempotency records of a multi-region deployment: every decision on a key
 * (claim, take-over, completion) is a conditional write on its home region's
 * replica (see Regions), so a retry that lands in another region after the
 * first one failed mid-request finds the record the first one made, at once,
 * not a replication later, and finishes that request's resource instead of
 * making a second one.
 */
export class HomedIdempotencyStore implements IdempotencyRecords {
  private readonly regions: Regions;
  private readonly stores: ReadonlyMap<string, IdempotencyStore>;

  constructor(regions: Regions, stores: ReadonlyMap<string, IdempotencyStore>) {
    if (!stores.has(regions.local)) throw new Error(`no idempotency store for the local region ${regions.local}`);
    this.regions = regions;
    this.stores = stores;
  }

  private home(pk: string): IdempotencyStore {
    return this.stores.get(this.regions.homeOf(pk)) ?? this.stores.get(this.regions.local)!;
  }

  claim(...args: Parameters<IdempotencyStore['claim']>): ReturnType<IdempotencyStore['claim']> {
    return this.home(args[0]).claim(...args);
  }

  complete(...args: Parameters<IdempotencyStore['complete']>): ReturnType<IdempotencyStore['complete']> {
    return this.home(args[0]).complete(...args);
  }

  release(...args: Parameters<IdempotencyStore['release']>): ReturnType<IdempotencyStore['release']> {
    return this.home(args[0]).release(...args);
  }

  peek(pk: string): Promise<string | undefined> {
    return this.home(pk).peek(pk);
  }
}
