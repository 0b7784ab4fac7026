import { describe, expect, it } from 'vitest';
import { ContentKeys } from '../../src/documents/encryption.ts';

const kms = (key: string) => ({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: key, BucketKeyEnabled: true });

describe('the KMS key of a tenant\'s content', () => {
  const keys = ContentKeys.parse('acme=alias/docsvc-tenant-acme,globex=arn:aws:kms:eu-west-1:123456789012:key/0f0e', 'alias/docsvc-data');

  it('is its own key, else the default, always with an S3 Bucket Key', () => {
    expect(keys.encryptionOf('acme')).toEqual(kms('alias/docsvc-tenant-acme'));
    expect(keys.encryptionOf('globex')).toEqual(kms('arn:aws:kms:eu-west-1:123456789012:key/0f0e'));
    expect(keys.encryptionOf('public')).toEqual(kms('alias/docsvc-data'));
    expect([keys.hasOwnKey('acme'), keys.hasOwnKey('public')]).toEqual([true, false]);
  });

  it('follows from an object key: its tenant is its first segment', () => {
    expect(keys.forObject('acme/contract-7/0190c0de-0000-7000-8000-000000000000')).toEqual(kms('alias/docsvc-tenant-acme'));
    expect(keys.forObject('acme/doc/0f0e1d2c-0000-4000-8000-000000000000.tail.0f0e1d2c-0000-4000-8000-000000000001')).toEqual(kms('alias/docsvc-tenant-acme'));
    // Not a tenant's prefix: a tenant named like the start of another's gets nothing of it.
    expect(keys.forObject('acmeco/doc/x')).toEqual(kms('alias/docsvc-data'));
    expect(keys.forObject('no-slash')).toEqual(kms('alias/docsvc-data'));
  });

  it('is nothing when no key is configured: the bucket default applies', () => {
    const none = ContentKeys.parse('', undefined);
    expect(none.forObject('acme/doc/x')).toEqual({});
    expect(none.hasOwnKey('acme')).toBe(false);
    // A tenant key alone: the others send nothing.
    const one = ContentKeys.parse('acme=alias/k', undefined);
    expect(one.forObject('acme/doc/x')).toEqual(kms('alias/k'));
    expect(one.forObject('public/doc/x')).toEqual({});
  });
});
