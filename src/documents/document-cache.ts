import type { Redis } from 'ioredis';
import type { RedisCircuit } from '../adapters/redis.ts';
import type { DocumentMetadata } from './schemas.ts';
import type { StoredDocument } from './document-store.ts';

export type CacheLookup =
  | { result: 'hit'; document: StoredDocument }
  | { result: 'tombstone' }
  | { result: 'miss' }
  | { result: 'unavailable' };

const ACTIVE = 0x41; // 'A': [A][u32 metadata length][metadata JSON][content]
const TOMBSTONE = Buffer.from('D');

export function encodeDocument(document: StoredDocument): Buffer {
  const metadata = Buffer.from(JSON.stringify(document.metadata));
  const header = Buffer.allocUnsafe(5);
  header[0] = ACTIVE;
  header.writeUInt32BE(metadata.length, 1);
  return Buffer.concat([header, metadata, document.content]);
}

export function decodeDocument(value: Buffer): StoredDocument | 'tombstone' | undefined {
  if (value.equals(TOMBSTONE)) return 'tombstone';
  if (value.length < 5 || value[0] !== ACTIVE) return undefined;
  const length = value.readUInt32BE(1);
  const metadata = JSON.parse(value.subarray(5, 5 + length).toString()) as DocumentMetadata;
  return { metadata, content: value.subarray(5 + length) };
}

/**
 * Redis cache-aside for documents. A delete writes a tombstone that
 * overwrites anything; fills only ever use SET NX, so a reader that was slow
 * between its store read and its fill can never put a deleted document back.
 * Every call goes through the circuit: a sick Redis is skipped, not waited on.
 */
export class DocumentCache {
  private readonly circuit: RedisCircuit;
  private readonly ttlSeconds: number;

  constructor(circuit: RedisCircuit, ttlSeconds: number) {
    this.circuit = circuit;
    this.ttlSeconds = ttlSeconds;
  }

  key(tenant: string, id: string): string {
    return `doc:${tenant}:${id}`;
  }

  async lookup(tenant: string, id: string): Promise<CacheLookup> {
    const outcome = await this.circuit.call((redis: Redis) => redis.getBuffer(this.key(tenant, id)));
    if (!outcome.ok) return { result: 'unavailable' };
    if (outcome.value === null) return { result: 'miss' };
    const decoded = decodeDocument(outcome.value);
    if (decoded === 'tombstone') return { result: 'tombstone' };
    return decoded ? { result: 'hit', document: decoded } : { result: 'miss' };
  }

  /** Fills after a miss; loses to anything already there, a tombstone above all. */
  async fill(tenant: string, id: string, document: StoredDocument): Promise<void> {
    await this.circuit.call((redis: Redis) =>
      redis.set(this.key(tenant, id), encodeDocument(document), 'EX', this.ttlSeconds, 'NX'),
    );
  }

  /** Records a deletion the store already confirmed; false if Redis could not take it. */
  async tombstone(tenant: string, id: string): Promise<boolean> {
    const outcome = await this.circuit.call((redis: Redis) =>
      redis.set(this.key(tenant, id), TOMBSTONE, 'EX', this.ttlSeconds),
      true,
    );
    return outcome.ok;
  }

  /** Remembers a deletion found in the store, unless something newer is there. */
  async fillTombstone(tenant: string, id: string): Promise<void> {
    await this.circuit.call((redis: Redis) => redis.set(this.key(tenant, id), TOMBSTONE, 'EX', this.ttlSeconds, 'NX'));
  }
}
