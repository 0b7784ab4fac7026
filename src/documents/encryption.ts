import type { ObjectEncryption } from '../adapters/s3-multipart.ts';
import type { Config } from '../config.ts';

const NONE: ObjectEncryption = Object.freeze({});

function kms(keyId: string): ObjectEncryption {
  // A Bucket Key: S3 asks KMS for a bucket-level key now and then, not for a data key per object.
  return Object.freeze({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyId, BucketKeyEnabled: true });
}

/**
 * The KMS key each tenant's objects are written under (SSE-KMS): its own
 * (TENANT_KMS_KEYS, `tenant=key` pairs), else the service's
 * (DOCUMENTS_KMS_KEY_ID); with neither, no encryption header at all, and the
 * bucket's default encryption applies. A tenant with a key of its own can be
 * crypto-shredded by disabling that key (docs/encryption-and-retention.md).
 */
export class ContentKeys {
  private readonly tenants: ReadonlyMap<string, ObjectEncryption>;
  private readonly fallback: ObjectEncryption;

  constructor(tenantKeys: ReadonlyMap<string, string>, defaultKey: string | undefined) {
    this.tenants = new Map([...tenantKeys].map(([tenant, key]) => [tenant, kms(key)]));
    this.fallback = defaultKey === undefined ? NONE : kms(defaultKey);
  }

  /** `tenant=key` pairs, comma-separated, and the default key. */
  static parse(tenantKeys: string, defaultKey: string | undefined): ContentKeys {
    const pairs = new Map<string, string>();
    for (const pair of tenantKeys.split(',')) {
      const at = pair.indexOf('=');
      if (at > 0) pairs.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return new ContentKeys(pairs, defaultKey);
  }

  /** Whether the tenant's content is under a key of its own: then none of it may sit outside S3. */
  hasOwnKey(tenant: string): boolean {
    return this.tenants.has(tenant);
  }

  /** What a write of the tenant's content sends: SSE-KMS with its key, or nothing. */
  encryptionOf(tenant: string): ObjectEncryption {
    return this.tenants.get(tenant) ?? this.fallback;
  }

  /**
   * The same, from an object key: every key of the bucket begins with its
   * tenant (`<tenant>/<id>/...`, which the bucket's replication rules read
   * too), so no write path has to carry the tenant beside the key.
   */
  readonly forObject = (key: string): ObjectEncryption => this.encryptionOf(key.slice(0, Math.max(0, key.indexOf('/'))));
}

/** The keys as configured (TENANT_KMS_KEYS, DOCUMENTS_KMS_KEY_ID; config.ts checks their syntax). */
export function contentKeys(config: Pick<Config, 'TENANT_KMS_KEYS' | 'DOCUMENTS_KMS_KEY_ID'>): ContentKeys {
  return ContentKeys.parse(config.TENANT_KMS_KEYS, config.DOCUMENTS_KMS_KEY_ID);
}
