import { GetObjectLockConfigurationCommand, PutObjectLegalHoldCommand, PutObjectRetentionCommand, type S3Client } from '@aws-sdk/client-s3';
import { hasName } from '../errors.ts';

export type LockMode = 'GOVERNANCE' | 'COMPLIANCE';

/** A bucket an object of a document may be in: this region's, and with several regions the others'. */
export type LockedBucket = { s3: S3Client; bucket: string };

function isMissing(error: unknown): boolean {
  return hasName(error, 'NoSuchKey', 'NoSuchVersion');
}

/**
 * S3 Object Lock on the objects of documents (S3_OBJECT_LOCK_MODE), so that
 * a retention and a legal hold hold at the storage layer too, not only in
 * the metadata item (which stays the authority: DELETE is refused by its
 * condition either way). Each call goes to every bucket that has the object:
 * of several regions, a copy replicated before the call was made would
 * otherwise stay unlocked. A bucket without the object yet (not replicated,
 * or a resumable upload homed in another region) is skipped; the replica S3
 * makes later carries the lock of its source. No bucket with the object at
 * all is an error. Inline documents have no object, and nothing to lock.
 */
export class ObjectLocks {
  readonly mode: LockMode;
  private readonly buckets: readonly LockedBucket[];

  constructor(options: { mode: LockMode; buckets: readonly LockedBucket[] }) {
    this.mode = options.mode;
    this.buckets = options.buckets;
  }

  /**
   * Refuses to start on a bucket without Object Lock: every create would
   * then fail its retention call (a 503 each), and an S3 look-alike without
   * Object Lock (the local emulator) may even take the call for a write of
   * the object. Found at start, it is one clear line instead.
   */
  async check(): Promise<void> {
    for (const { s3, bucket } of this.buckets) {
      const enabled = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: bucket })).then(
        (answer) => answer.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled',
        () => false,
      );
      if (!enabled) throw new Error(`S3_OBJECT_LOCK_MODE=${this.mode} but bucket ${bucket} has no Object Lock (terraform: object_lock = true), or it cannot be read`);
    }
  }

  /** Retains the object until `until` (ISO 8601): it can be neither deleted nor overwritten before, in this mode. */
  async retain(key: string, until: string): Promise<void> {
    const Retention = { Mode: this.mode, RetainUntilDate: new Date(until) };
    await this.everywhere(key, ({ s3, bucket }) => s3.send(new PutObjectRetentionCommand({ Bucket: bucket, Key: key, Retention })));
  }

  /** Places or lifts the object's legal hold. */
  async hold(key: string, on: boolean): Promise<void> {
    const LegalHold = { Status: on ? ('ON' as const) : ('OFF' as const) };
    await this.everywhere(key, ({ s3, bucket }) => s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: key, LegalHold })));
  }

  private async everywhere(key: string, send: (bucket: LockedBucket) => Promise<unknown>): Promise<void> {
    const results = await Promise.allSettled(this.buckets.map(send));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected' && !isMissing(result.reason));
    if (failed) throw failed.reason;
    if (results.every((result) => result.status === 'rejected')) throw new Error(`object ${key} is in no bucket of the documents`);
  }
}
