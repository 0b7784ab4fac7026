import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AwsClients } from '../adapters/aws.ts';
import { Regions } from '../adapters/regions.ts';
import { BackgroundLoop, OnBackgroundLoop } from '../background-loop.ts';
import type { Config } from '../config.ts';
import { hasName } from '../errors.ts';
import { ContentStore, type StoredObject } from './content-store.ts';
import type { DocumentStore } from './document-store.ts';
import { documentStores } from './stores.ts';
import { sweepUploads, uploadHome, uploadObjectOf, type CleanedState, type UploadHome } from './uploads/upload-home.ts';
import { UploadRecords, uploadPk, type Upload } from './uploads/upload-records.ts';

function isAccessDenied(error: unknown): boolean {
  return hasName(error, 'AccessDenied');
}

/** deleted: content of a tombstone; unreferenced: past the grace period; upload: a tail of an upload that ended. */
export type OrphanKind = 'deleted' | 'unreferenced' | 'upload';

/** elsewhere: objects of documents homed in another region, left to that region's sweep. */
export type LifecycleSweep =
  | {
      checked: number;
      elsewhere: number;
      found: Record<OrphanKind, number>;
      removed: Record<OrphanKind, number>;
      retained: Record<OrphanKind, number>;
      uploadsEnded: number;
    }
  | 'not-leader';

/**
 * Of several regions (docs/design.md, "The content sweep of several
 * regions"): the home of each key (a document's `<tenant>#<id>`, whose
 * sweep alone judges its objects; an upload's, whose table holds its item),
 * and the upload items of another region.
 */
export type SweptRegions = {
  local: string;
  homeOf(key: string): string;
  uploadRecordsIn(region: string): UploadRecords;
};

export type ContentSweeperOptions = {
  store: DocumentStore;
  content: ContentStore;
  /** This region's resumable uploads: those past their expiry are ended, and their bytes removed. */
  uploads: UploadHome;
  /** Absent: one region, whose table names every object of its bucket. */
  regions?: SweptRegions;
  log: Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>;
  /** An object no committed document names is removed once older than this. */
  graceMs: number;
  /** How long one replica owns the sweep. */
  leaseMs: number;
  intervalMs: number;
  /** Objects checked against the table at once. */
  concurrency?: number;
  owner?: string;
  registry?: Registry;
  now?: () => number;
};

/**
 * What the content sweeper of the configured region reads: its table, bucket
 * and uploads, and of several regions their homes and the other regions'
 * upload items (clients `close` ends).
 */
export function sweptStores(
  config: Config,
  aws: AwsClients,
): Pick<ContentSweeperOptions, 'store' | 'content' | 'uploads' | 'regions'> & { close(): void } {
  const local = { ...documentStores(config, aws), uploads: uploadHome(config, aws) };
  const regions = new Regions(config);
  if (!regions.multi) return { ...local, close() {} };
  const clients = regions.connect(aws);
  // Only the other regions' upload records, read at their home: the sweep touches no other bucket or key.
  const records = new Map(
    regions.names.map((region) => [region, new UploadRecords({ dynamo: clients.of(region).dynamo, table: regions.configOf(region).DOCUMENTS_TABLE })]),
  );
  return {
    ...local,
    regions: {
      local: regions.local,
      homeOf: (key) => regions.homeOf(key),
      uploadRecordsIn: (region) => records.get(region) ?? local.uploads.records,
    },
    close: () => clients.destroy(),
  };
}

/**
 * What a crash or a failed cleanup leaves in S3, found and removed: objects
 * of deleted documents (the tombstone names them: removed at once) and
 * objects no committed document names (a create that died between its
 * upload and its commit, a loser whose own removal failed: removed after the
 * grace period, which exceeds the longest upload, so that a create still
 * committing is never robbed of its content). It also reports how late
 * DynamoDB TTL is with tombstones (the oldest one past its `deleteAt`).
 *
 * Any number of replicas may run: one lease in the table lets one sweep at
 * a time, so each orphan is removed (and counted) once.
 *
 * Of several regions, a region judges only the objects of documents homed
 * in it: its table is where every commit of those is written, so a
 * consistent read there is the truth, whatever replication has brought
 * elsewhere. Another region's replica may lack a commit for as long as a
 * partition lasts, longer than any grace period, and a removal there would
 * replicate (delete markers do) to every bucket. The home's removal
 * replicating is how the other buckets lose an orphan.
 */
export class ContentSweeper extends OnBackgroundLoop {
  private readonly options: ContentSweeperOptions;
  private readonly now: () => number;
  readonly owner: string;
  protected readonly loop: BackgroundLoop;
  private readonly found: Counter<'kind'> | undefined;
  private readonly removed: Counter<'kind'> | undefined;
  private readonly retained: Counter<'kind'> | undefined;
  private readonly uploadsCleaned: Counter<'state'> | undefined;

  constructor(options: ContentSweeperOptions) {
    super();
    this.options = options;
    this.now = options.now ?? Date.now;
    this.owner = options.owner ?? `sweeper-${randomUUID()}`;
    if (options.registry) {
      const registers = [options.registry];
      this.found = new Counter({
        name: 'orphans_found_total',
        help: 'S3 objects no committed document points to, by kind (deleted: content of a tombstone; unreferenced: past the grace period)',
        labelNames: ['kind'],
        registers,
      });
      this.removed = new Counter({ name: 'orphans_removed_total', help: 'Orphaned S3 objects removed, by kind', labelNames: ['kind'], registers });
      this.retained = new Counter({
        name: 'orphans_retained_total',
        help: 'Orphaned S3 objects S3 refused to remove (AccessDenied: locked by S3 Object Lock until their date), by kind; each sweep tries again',
        labelNames: ['kind'],
        registers,
      });
      this.uploadsCleaned = new Counter({
        name: 'resumable_uploads_cleaned_total',
        help: 'Resumable uploads whose multipart upload was aborted and tail removed by the sweep, by state (EXPIRED: past UPLOAD_EXPIRY_SECONDS; CANCELLED, FAILED: their own cleanup failed)',
        labelNames: ['state'],
        registers,
      });
      const store = options.store;
      const now = this.now;
      new Gauge({
        name: 'tombstone_oldest_overdue_seconds',
        help: 'How far past its deleteAt the oldest tombstone still in the table is (0 when none is overdue): DynamoDB TTL lag',
        registers,
        async collect() {
          const oldest = await store.oldestTombstoneDeleteAt(AbortSignal.timeout(2000)).catch(() => null);
          if (oldest !== null) this.set(oldest === undefined ? 0 : Math.max(0, now() / 1000 - oldest));
        },
      });
    }
    this.loop = new BackgroundLoop(
      async () => {
        await this.sweep();
        return options.intervalMs;
      },
      {
        backoffMs: (failures) => Math.min(options.intervalMs, 1000 * 2 ** failures),
        onError: (err) => options.log.error({ err }, 'content sweep failed'),
      },
    );
  }

  /**
   * One pass, if this replica holds (or takes) the lease: resumable uploads
   * past their expiry are ended and their bytes removed, then the bucket is
   * checked object by object.
   */
  async sweep(): Promise<LifecycleSweep> {
    const { store, leaseMs } = this.options;
    if (!(await store.claimSweep(this.owner, this.now(), leaseMs))) return 'not-leader';
    const none = { deleted: 0, unreferenced: 0, upload: 0 };
    const result = { checked: 0, elsewhere: 0, found: { ...none }, removed: { ...none }, retained: { ...none }, uploadsEnded: 0 };
    try {
      result.uploadsEnded = await sweepUploads(this.options.uploads, this.now(), (state: CleanedState) => this.uploadsCleaned?.inc({ state }));
      if (!(await store.claimSweep(this.owner, this.now(), leaseMs))) return result;
      for await (const page of this.options.content.list()) {
        await this.checkAll(page, result);
        // Renewed per page: a sweep of a large bucket outlives one lease.
        if (!(await store.claimSweep(this.owner, this.now(), leaseMs))) break;
      }
    } finally {
      await store.releaseSweep(this.owner).catch(() => {});
    }
    if (Object.values(result.found).some((count) => count > 0) || result.uploadsEnded > 0) this.options.log.info(result, 'content sweep removed orphans');
    return result;
  }

  private async checkAll(page: StoredObject[], result: Exclude<LifecycleSweep, 'not-leader'>) {
    const concurrency = this.options.concurrency ?? 16;
    for (let i = 0; i < page.length; i += concurrency) {
      await Promise.all(page.slice(i, i + concurrency).map((object) => this.check(object, result)));
    }
  }

  private async check(object: StoredObject, result: Exclude<LifecycleSweep, 'not-leader'>) {
    const parts = ContentStore.partsOf(object.key);
    // Not a key this service writes: not ours to judge.
    if (!parts) return;
    const regions = this.options.regions;
    if (regions && regions.homeOf(`${parts.tenant}#${parts.id}`) !== regions.local) {
      result.elsewhere += 1;
      return;
    }
    result.checked += 1;
    const kind = await this.orphanKind(object, parts.tenant, parts.id);
    if (!kind) return;
    result.found[kind] += 1;
    this.found?.inc({ kind });
    try {
      await this.options.content.remove(object.key);
      result.removed[kind] += 1;
      this.removed?.inc({ kind });
    } catch (err) {
      // Not a fault to retry at once: S3 keeps a locked object until its date, whatever is asked.
      if (isAccessDenied(err)) {
        result.retained[kind] += 1;
        this.retained?.inc({ kind });
        this.options.log.info({ s3Key: object.key, kind }, 'orphan refused by S3 (Object Lock?): kept until its date');
        return;
      }
      this.options.log.warn({ err, s3Key: object.key }, 'orphan not removed; the next sweep tries again');
    }
  }

  private async orphanKind(object: StoredObject, tenant: string, id: string): Promise<OrphanKind | undefined> {
    const found = await this.options.store.lookup(tenant, id);
    if (found.state === 'active' && found.record.s3Key === object.key) return undefined;
    if (found.state === 'deleted' && found.s3Key === object.key) return 'deleted';
    const old = this.now() - object.lastModified.getTime() > this.options.graceMs;
    const upload = uploadObjectOf(object.key);
    if (!upload) return old ? 'unreferenced' : undefined;
    // An object of a resumable upload: the upload's item says whether it is still of use.
    const item = await this.uploadItem(tenant, upload.uploadId, object.key);
    if (item === 'unknown') return undefined;
    const live = item !== undefined && (item.state === 'OPEN' || item.state === 'COMPLETING') && item.expiresAt > this.now();
    if (upload.tail) {
      // A tail not recorded yet is being written: it is another's only past the grace period.
      if (live) return item.tail?.key === object.key || !old ? undefined : 'unreferenced';
      return 'upload';
    }
    return live || !old ? undefined : 'unreferenced';
  }

  /**
   * The upload's item, read at the upload's home (its item is written there
   * only); 'unknown' when that region cannot be reached: the object is kept,
   * and judged again next sweep.
   */
  private async uploadItem(tenant: string, uploadId: string, key: string): Promise<Upload | undefined | 'unknown'> {
    const regions = this.options.regions;
    if (!regions) return this.options.uploads.records.get(tenant, uploadId);
    const home = regions.homeOf(uploadPk(tenant, uploadId));
    if (home === regions.local) return this.options.uploads.records.get(tenant, uploadId);
    try {
      return await regions.uploadRecordsIn(home).get(tenant, uploadId);
    } catch (err) {
      this.options.log.warn({ err, s3Key: key, uploadId }, "upload's home unreachable: its object is kept until a sweep can ask");
      return 'unknown';
    }
  }
}
