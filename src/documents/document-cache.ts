import type { ChainableCommander, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { RedisCircuit } from '../adapters/redis.ts';
import type { DocumentMetadata, WholeDocument } from './schemas.ts';
import { InvalidationBus, type RemoteDelete } from './invalidations.ts';
import type { MemoryCache } from './memory-cache.ts';

export type CacheLookup =
  | { result: 'hit'; layer: 'memory' | 'redis'; document: WholeDocument }
  | { result: 'tombstone' }
  | { result: 'miss' }
  | { result: 'unavailable' };

/** Where an active document's content is, for its links: its metadata, and its S3 key (none: stored inline). */
export type ContentLocation = { metadata: DocumentMetadata; s3Key: string | undefined };

/** Bounds of the locations kept in memory: a few MiB at most, whatever MEMORY_CACHE_MAX_BYTES says. */
const LOCATIONS_MAX_ENTRIES = 10_000;
const LOCATIONS_MAX_BYTES = 4 * 1024 * 1024;
const LOCATION_OVERHEAD_BYTES = 512;
const locationSize = ({ metadata, s3Key }: ContentLocation) =>
  LOCATION_OVERHEAD_BYTES + 2 * ((s3Key?.length ?? 0) + metadata.id.length + metadata.contentType.length);

const ACTIVE = 0x41; // 'A': [A][u32 metadata length][metadata JSON][content]
const TOMBSTONE = Buffer.from('D');

export function encodeDocument(document: WholeDocument): Buffer {
  const metadata = Buffer.from(JSON.stringify(document.metadata));
  const header = Buffer.allocUnsafe(5);
  header[0] = ACTIVE;
  header.writeUInt32BE(metadata.length, 1);
  return Buffer.concat([header, metadata, document.content]);
}

export function decodeDocument(value: Buffer): WholeDocument | 'tombstone' | undefined {
  if (value.equals(TOMBSTONE)) return 'tombstone';
  if (value.length < 5 || value[0] !== ACTIVE) return undefined;
  const length = value.readUInt32BE(1);
  const metadata = JSON.parse(value.subarray(5, 5 + length).toString()) as DocumentMetadata;
  return { metadata, content: value.subarray(5 + length) };
}

export type DocumentCacheOptions = {
  circuit: RedisCircuit;
  ttlSeconds: number;
  /** The in-process layer, the connection that hears about deletes on other instances, and its lease. */
  memory?: { cache: MemoryCache; subscriber: Redis; leaseMs: number };
  /** Told of every delete made in another region as this instance drops it (stale-read counting). */
  onRemoteDelete?: (tenant: string, id: string, remote: RemoteDelete) => void;
};

/**
 * Two cache layers for documents: process memory, then Redis (cache-aside).
 *
 * Redis: a delete writes a tombstone that overwrites anything; fills only use
 * SET NX, so a reader that was slow between its store read and its fill can
 * never put a deleted document back. Every call goes through the circuit: a
 * sick Redis is skipped, not waited on.
 *
 * Memory: answers only while the invalidation bus says so (subscribed, and
 * within its lease), and is emptied whenever the subscription drops, since
 * deletes announced meanwhile would be missed. A fill is dropped if any
 * invalidation arrived while it was in flight (the epoch moved), so a fill
 * can never resurrect what a delete just removed. A delete returns once every
 * instance dropped the document, or its lease ran out (InvalidationBus).
 */
export class DocumentCache {
  private readonly circuit: RedisCircuit;
  private readonly ttlSeconds: number;
  private readonly memory: MemoryCache | undefined;
  /** With the memory layer: the content locations of documents linked (location()), under the same invalidation. */
  private readonly locations: LRUCache<string, ContentLocation> | undefined;
  private readonly bus: InvalidationBus | undefined;
  private epoch = 0;

  constructor(options: DocumentCacheOptions) {
    this.circuit = options.circuit;
    this.ttlSeconds = options.ttlSeconds;
    this.memory = options.memory?.cache;
    this.locations = options.memory
      ? new LRUCache({ max: LOCATIONS_MAX_ENTRIES, maxSize: LOCATIONS_MAX_BYTES, sizeCalculation: locationSize, ttl: options.ttlSeconds * 1000 })
      : undefined;
    this.bus = options.memory
      ? new InvalidationBus({
          subscriber: options.memory.subscriber,
          circuit: options.circuit,
          leaseMs: options.memory.leaseMs,
          onInvalidate: (key, remote) => {
            this.epoch++;
            this.drop(key);
            const [, tenant, id] = key.split(':');
            if (remote && tenant && id) options.onRemoteDelete?.(tenant, id, remote);
          },
          onReset: () => this.forget(),
        })
      : undefined;
  }

  private forget() {
    this.epoch++;
    this.memory?.clear();
    this.locations?.clear();
  }

  private drop(key: string) {
    this.memory?.delete(key);
    this.locations?.delete(key);
  }

  private remember(key: string, document: WholeDocument, epoch: number) {
    if (this.bus?.subscribed && epoch === this.epoch) this.memory?.set(key, document);
  }

  key(tenant: string, id: string): string {
    return `doc:${tenant}:${id}`;
  }

  /** The in-process layer alone, without a promise: the hot path of a hot document. */
  fromMemory(tenant: string, id: string): WholeDocument | undefined {
    return this.bus?.serving ? this.memory?.get(this.key(tenant, id)) : undefined;
  }

  async lookup(tenant: string, id: string): Promise<CacheLookup> {
    const key = this.key(tenant, id);
    const inMemory = this.fromMemory(tenant, id);
    if (inMemory) return { result: 'hit', layer: 'memory', document: inMemory };
    const epoch = this.epoch;
    const outcome = await this.circuit.call((redis: Redis) => redis.getBuffer(key));
    if (!outcome.ok) return { result: 'unavailable' };
    if (outcome.value === null) return { result: 'miss' };
    const decoded = decodeDocument(outcome.value);
    if (decoded === 'tombstone') return { result: 'tombstone' };
    if (!decoded) return { result: 'miss' };
    this.remember(key, decoded, epoch);
    return { result: 'hit', layer: 'redis', document: decoded };
  }

  /**
   * Where a document's content is, for a link: from process memory while
   * the invalidation bus says so (as fromMemory: a delete on any instance
   * drops it everywhere before the delete returns), else `read` (the
   * table), kept unless an invalidation arrived meanwhile. Undefined: not
   * active. Not in Redis: a link of a document not linked here yet costs
   * the one table read it always did.
   */
  async location(tenant: string, id: string, read: () => Promise<ContentLocation | undefined>): Promise<ContentLocation | undefined> {
    const key = this.key(tenant, id);
    const known = this.bus?.serving ? this.locations?.get(key) : undefined;
    if (known) return known;
    const epoch = this.epoch;
    const found = await read();
    if (found && this.bus?.subscribed && epoch === this.epoch) this.locations?.set(key, found);
    return found;
  }

  /** Fills after a miss; loses to anything already there, a tombstone above all. */
  async fill(tenant: string, id: string, document: WholeDocument): Promise<void> {
    const key = this.key(tenant, id);
    const epoch = this.epoch;
    const outcome = await this.circuit.call((redis: Redis) =>
      redis.set(key, encodeDocument(document), 'EX', this.ttlSeconds, 'NX'),
    );
    if (outcome.ok && outcome.value === 'OK') this.remember(key, document, epoch);
  }

  /**
   * Records a deletion the store already confirmed, and tells every instance
   * to drop its copy; false if Redis could not take it. Returns once the
   * deletion is final on every instance (see InvalidationBus). `remote`: a
   * delete made in another region, relayed here.
   */
  async tombstone(tenant: string, id: string, remote?: RemoteDelete): Promise<boolean> {
    const key = this.key(tenant, id);
    this.epoch++;
    this.drop(key);
    const write = (multi: ChainableCommander) => multi.set(key, TOMBSTONE, 'EX', this.ttlSeconds);
    if (this.bus) return this.bus.announce(key, write, remote);
    const outcome = await this.circuit.call((redis: Redis) => write(redis.multi()).exec(), true);
    return outcome.ok && outcome.value !== null && outcome.value.every(([error]) => error === null);
  }

  /** Remembers a deletion found in the store, unless something newer is there. */
  async fillTombstone(tenant: string, id: string): Promise<void> {
    await this.circuit.call((redis: Redis) => redis.set(this.key(tenant, id), TOMBSTONE, 'EX', this.ttlSeconds, 'NX'));
  }
}
