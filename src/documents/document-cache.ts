import type { Redis } from 'ioredis';
import type { RedisCircuit } from '../adapters/redis.ts';
import type { DocumentMetadata, WholeDocument } from './schemas.ts';
import type { MemoryCache } from './memory-cache.ts';

export type CacheLookup =
  | { result: 'hit'; layer: 'memory' | 'redis'; document: WholeDocument }
  | { result: 'tombstone' }
  | { result: 'miss' }
  | { result: 'unavailable' };

const ACTIVE = 0x41; // 'A': [A][u32 metadata length][metadata JSON][content]
const TOMBSTONE = Buffer.from('D');
export const INVALIDATION_CHANNEL = 'documents:invalidated';

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
  /** The in-process layer and the connection that hears about deletes on other instances. */
  memory?: { cache: MemoryCache; subscriber: Redis };
};

/**
 * Two cache layers for documents: process memory, then Redis (cache-aside).
 *
 * Redis: a delete writes a tombstone that overwrites anything; fills only use
 * SET NX, so a reader that was slow between its store read and its fill can
 * never put a deleted document back. Every call goes through the circuit: a
 * sick Redis is skipped, not waited on.
 *
 * Memory: used only while the invalidation subscription is live, and emptied
 * whenever it drops, since deletes announced meanwhile would be missed. A
 * fill is dropped if any invalidation arrived while it was in flight (the
 * epoch moved), so a fill can never resurrect what a delete just removed.
 */
export class DocumentCache {
  private readonly circuit: RedisCircuit;
  private readonly ttlSeconds: number;
  private readonly memory: MemoryCache | undefined;
  private memoryLive = false;
  private epoch = 0;
  /** Deletes of this instance waiting to hear their own announcement. */
  private readonly echoes = new Map<string, () => void>();

  constructor(options: DocumentCacheOptions) {
    this.circuit = options.circuit;
    this.ttlSeconds = options.ttlSeconds;
    this.memory = options.memory?.cache;
    if (options.memory) this.listen(options.memory.subscriber);
  }

  private listen(subscriber: Redis) {
    subscriber.on('ready', () => {
      subscriber.subscribe(INVALIDATION_CHANNEL).then(
        () => {
          this.forget();
          this.memoryLive = true;
        },
        () => subscriber.disconnect(true),
      );
    });
    subscriber.on('close', () => {
      this.memoryLive = false;
      this.forget();
    });
    subscriber.on('message', (_channel: string, key: string) => {
      this.epoch++;
      this.memory?.delete(key);
      this.echoes.get(key)?.();
    });
  }

  private forget() {
    this.epoch++;
    this.memory?.clear();
  }

  private remember(key: string, document: WholeDocument, epoch: number) {
    if (this.memoryLive && epoch === this.epoch) this.memory?.set(key, document);
  }

  key(tenant: string, id: string): string {
    return `doc:${tenant}:${id}`;
  }

  /** The in-process layer alone, without a promise: the hot path of a hot document. */
  fromMemory(tenant: string, id: string): WholeDocument | undefined {
    return this.memoryLive ? this.memory?.get(this.key(tenant, id)) : undefined;
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
   * to drop its copy; false if Redis could not take it. Tried even with the
   * circuit open: a lost tombstone matters more than a slow delete.
   */
  async tombstone(tenant: string, id: string): Promise<boolean> {
    const key = this.key(tenant, id);
    this.epoch++;
    this.memory?.delete(key);
    // Hearing our own announcement means Redis has sent it to every live
    // subscriber: the 204 then follows the other instances' invalidation.
    const echo = this.memoryLive ? this.awaitEcho(key) : undefined;
    const outcome = await this.circuit.call(
      (redis: Redis) => redis.multi().set(key, TOMBSTONE, 'EX', this.ttlSeconds).publish(INVALIDATION_CHANNEL, key).exec(),
      true,
    );
    const written = outcome.ok && outcome.value !== null && outcome.value.every(([error]) => error === null);
    if (written) await echo;
    else this.echoes.delete(key);
    return written;
  }

  private awaitEcho(key: string): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, 250);
      const echoes = this.echoes;
      function done() {
        clearTimeout(timer);
        echoes.delete(key);
        resolve();
      }
      echoes.set(key, done);
    });
  }

  /** Remembers a deletion found in the store, unless something newer is there. */
  async fillTombstone(tenant: string, id: string): Promise<void> {
    await this.circuit.call((redis: Redis) => redis.set(this.key(tenant, id), TOMBSTONE, 'EX', this.ttlSeconds, 'NX'));
  }
}
