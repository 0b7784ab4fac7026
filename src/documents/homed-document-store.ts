import type { Regions } from '../adapters/regions.ts';
import type { DocumentStore, Lookup } from './document-store.ts';

/** What the document service needs of the metadata table. */
export type DocumentRecords = Pick<DocumentStore, 'create' | 'lookup' | 'delete' | 'recordDeletion' | 'setLegalHold' | 'list' | 'eventPublished'>;

/**
 * The metadata table of a multi-region deployment: creates and deletes of an
 * id go to its home region's replica (see Regions), so that two regions can
 * never both create one id, and a delete always finds what its home created.
 * Reads stay on the local replica; only an id the local replica does not
 * know, and whose home is elsewhere, is looked up at its home too, so that a
 * document answered 201 is readable at once in every region, not only once
 * replication has brought it (a failure there is a 503: the home alone knows).
 */
export class HomedDocumentStore implements DocumentRecords {
  private readonly regions: Regions;
  private readonly stores: ReadonlyMap<string, DocumentStore>;
  private readonly local: DocumentStore;

  constructor(regions: Regions, stores: ReadonlyMap<string, DocumentStore>) {
    const local = stores.get(regions.local);
    if (!local) throw new Error(`no document store for the local region ${regions.local}`);
    this.regions = regions;
    this.stores = stores;
    this.local = local;
  }

  private home(tenant: string, id: string): DocumentStore {
    return this.stores.get(this.regions.homeOf(`${tenant}#${id}`)) ?? this.local;
  }

  create(...args: Parameters<DocumentStore['create']>): ReturnType<DocumentStore['create']> {
    return this.home(args[0], args[1].id).create(...args);
  }

  delete(...args: Parameters<DocumentStore['delete']>): ReturnType<DocumentStore['delete']> {
    return this.home(args[0], args[1]).delete(...args);
  }

  recordDeletion(...args: Parameters<DocumentStore['recordDeletion']>): ReturnType<DocumentStore['recordDeletion']> {
    return this.home(args[0], args[1]).recordDeletion(...args);
  }

  setLegalHold(...args: Parameters<DocumentStore['setLegalHold']>): ReturnType<DocumentStore['setLegalHold']> {
    return this.home(args[0], args[1]).setLegalHold(...args);
  }

  /** The local replica's listing: of another region's writes, what replication has brought. */
  list(...args: Parameters<DocumentStore['list']>): ReturnType<DocumentStore['list']> {
    return this.local.list(...args);
  }

  /** Marks an event published at the home of the item that holds it (the document's, by its key). */
  eventPublished(key: string, now: number): Promise<void> {
    const [tenant = '', id = ''] = key.split('#');
    return this.home(tenant, id).eventPublished(key, now);
  }

  async lookup(tenant: string, id: string): Promise<Lookup> {
    const found = await this.local.lookup(tenant, id);
    const home = this.home(tenant, id);
    return found.state === 'absent' && home !== this.local ? home.lookup(tenant, id) : found;
  }
}
