import { ContentStore, type ContentStoreOptions, type ObjectStream } from './content-store.ts';

/**
 * The content bucket of one region of several. Each region's bucket
 * replicates to the others (S3 Replication), behind the metadata, which
 * replicates on its own: a region can hold the item of a document whose
 * object has not arrived yet. Its bytes are then in the bucket of the region
 * that took the upload, so a read that finds no object here asks the other
 * buckets before concluding that the document was deleted meanwhile. Writes
 * and removals stay local: replication carries them.
 */
export class ReplicatedContentStore extends ContentStore {
  private readonly others: readonly ContentStore[];
  private readonly onRemoteRead: () => void;

  constructor(options: ContentStoreOptions, others: readonly ContentStore[], onRemoteRead: () => void) {
    super(options);
    this.others = others;
    this.onRemoteRead = onRemoteRead;
  }

  override async readWhole(key: string): Promise<Buffer | undefined> {
    const here = await super.readWhole(key);
    if (here || this.others.length === 0) return here;
    const found = (await Promise.all(this.others.map((other) => other.readWhole(key)))).find((content) => content !== undefined);
    if (found) this.onRemoteRead();
    return found;
  }

  override async open(key: string, range?: { start: number; end: number }): Promise<ObjectStream | undefined> {
    const here = await super.open(key, range);
    if (here) return here;
    // One at a time: a stream opened is a response body in flight.
    for (const other of this.others) {
      const there = await other.open(key, range);
      if (there) {
        this.onRemoteRead();
        return there;
      }
    }
    return undefined;
  }
}
