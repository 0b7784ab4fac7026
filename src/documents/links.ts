import { createPrivateKey, type KeyObject } from 'node:crypto';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl as cloudFrontSignedUrl } from '@aws-sdk/cloudfront-signer';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { create as contentDisposition } from 'content-disposition';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config.ts';
import { readSecretString } from '../adapters/secrets.ts';

/** What a link serves: one stored object, as these response headers. */
export type LinkTarget = {
  /** The object's key in the documents bucket. */
  s3Key: string;
  /** The document's stored Content-Type. */
  contentType: string;
  /** The name a download is saved under (the document id). */
  filename: string;
};

/**
 * Makes short-lived URLs that serve an object without the service: S3
 * presigned URLs, or CloudFront signed URLs when a distribution is
 * configured (documentLinkSigner).
 */
export interface LinkSigner {
  sign(target: LinkTarget, validity: Validity): Promise<string>;
}

/** A link is valid `seconds` from `from`. */
export type Validity = { from: Date; seconds: number };

/** The longest a link's expiry is rounded down: 60 s, or a fifth of a short TTL. */
export function expiryBucketMs(ttlSeconds: number): number {
  return Math.min(60_000, (ttlSeconds * 1000) / 5);
}

/**
 * The validity of a link asked at `now`: it expires at now + TTL rounded
 * down to a bucket (expiryBucketMs), and is signed as from TTL before that.
 * Every link of one object asked within one bucket is then the same URL
 * (MemoisedLinkSigner signs it once), and its lifetime from `now` stays
 * within (TTL − bucket, TTL]: never longer than DOCUMENT_LINK_TTL_SECONDS.
 */
export function linkValidity(now: Date, ttlSeconds: number): Validity & { expiresAt: Date } {
  const bucket = expiryBucketMs(ttlSeconds);
  const expiresAtMs = Math.floor((now.getTime() + ttlSeconds * 1000) / bucket) * bucket;
  return { from: new Date(expiresAtMs - ttlSeconds * 1000), seconds: ttlSeconds, expiresAt: new Date(expiresAtMs) };
}

/** Bounds of the memo of signed URLs: entries, and bytes (keys and URLs, as UTF-16, plus an overhead each). */
const MEMO_MAX_ENTRIES = 10_000;
const MEMO_MAX_BYTES = 16 * 1024 * 1024;
const MEMO_ENTRY_OVERHEAD_BYTES = 128;

/**
 * The URLs a signer made, by what they sign (object, headers, validity), in
 * a bounded LRU: a hot document's link is signed once per expiry bucket
 * instead of per request (an S3 presign costs about 0.4 ms of CPU, a
 * CloudFront RSA signature about 0.7 ms: `node bench/link-signing.ts`). A
 * URL is a pure function of those inputs, so a memoised one is exactly
 * what signing again would give; whether the document may still be linked
 * is decided by the lookup before, never here. The validity is in the
 * key, so an entry of a past bucket is never asked for again: it ages out
 * of the LRU, within the bounds.
 */
export class MemoisedLinkSigner implements LinkSigner {
  private readonly signer: LinkSigner;
  private readonly urls: LRUCache<string, string>;

  constructor(signer: LinkSigner, options: { maxEntries?: number; maxBytes?: number } = {}) {
    this.signer = signer;
    this.urls = new LRUCache<string, string>({
      max: options.maxEntries ?? MEMO_MAX_ENTRIES,
      maxSize: options.maxBytes ?? MEMO_MAX_BYTES,
      sizeCalculation: (url, key) => (url.length + key.length) * 2 + MEMO_ENTRY_OVERHEAD_BYTES,
    });
  }

  async sign(target: LinkTarget, validity: Validity): Promise<string> {
    const key = `${target.s3Key}\n${target.contentType}\n${target.filename}\n${validity.from.getTime()}\n${validity.seconds}`;
    const memoised = this.urls.get(key);
    if (memoised !== undefined) return memoised;
    const url = await this.signer.sign(target, validity);
    this.urls.set(key, url);
    return url;
  }

  /** What it holds (tests, and the bounds). */
  get size(): { entries: number; bytes: number } {
    return { entries: this.urls.size, bytes: this.urls.calculatedSize };
  }
}

/**
 * S3 presigned GETs, signed locally with the app's S3 client and credentials
 * (no call to S3). The response headers are part of the signature, so the
 * holder of a link cannot change them. SSE-KMS objects need nothing more: S3
 * decrypts on a GET with the signer's kms:Decrypt permission.
 */
export class S3LinkSigner implements LinkSigner {
  private readonly s3: S3Client;
  private readonly bucket: string;

  constructor(s3: S3Client, bucket: string) {
    this.s3 = s3;
    this.bucket = bucket;
  }

  sign(target: LinkTarget, { from, seconds }: Validity): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: target.s3Key,
      ResponseContentType: target.contentType,
      // attachment, with the name quoted and escaped (RFC 6266; filename* for what is not ASCII): no name adds a parameter.
      ResponseContentDisposition: contentDisposition(target.filename),
    });
    return getSignedUrl(this.s3, command, { signingDate: from, expiresIn: seconds });
  }
}

/** The private key in DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID is not one CloudFront can verify: the start stops. */
export class CdnPrivateKeyError extends Error {
  readonly code = 'CDN_PRIVATE_KEY_INVALID';

  constructor(secretId: string, reason: string) {
    super(`DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID (${secretId}): ${reason}`);
    this.name = 'CdnPrivateKeyError';
  }
}

/**
 * The PEM of a secret as a private key CloudFront accepts in a key group (RSA
 * 2048), checked now rather than at the first link: a wrong secret fails the
 * start, not every link request.
 */
export function cdnPrivateKey(pem: string, secretId: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new CdnPrivateKeyError(secretId, 'not a PEM private key (make cdn-key puts one there)');
  }
  if (key.asymmetricKeyType !== 'rsa' || key.asymmetricKeyDetails?.modulusLength !== 2048) {
    throw new CdnPrivateKeyError(secretId, `an RSA 2048 key is what a CloudFront key group takes, not ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.modulusLength ?? ''}`.trim());
  }
  return key;
}

/**
 * CloudFront signed URLs (canned policy: this URL until then), signed locally
 * with the key group's private key. The distribution reaches the bucket with
 * origin access control (terraform/modules/region/cdn.tf), whose SigV4
 * signature lets S3 apply the response-content-* parameters; the
 * distribution forwards exactly those two and keys its cache on them. They
 * are in the signed URL, so the holder of a link cannot change them, as with
 * S3's own presigned URLs. SHA-256, which CloudFront verifies when the URL
 * says Hash-Algorithm=SHA256.
 */
export class CloudFrontLinkSigner implements LinkSigner {
  private readonly domain: string;
  private readonly keyPairId: string;
  private readonly privateKey: string;

  constructor(options: { domain: string; keyPairId: string; privateKey: KeyObject }) {
    this.domain = options.domain;
    this.keyPairId = options.keyPairId;
    this.privateKey = options.privateKey.export({ format: 'pem', type: 'pkcs1' }).toString();
  }

  sign(target: LinkTarget, { from, seconds }: Validity): Promise<string> {
    // Keys are tenant/id/upload: each segment encoded, the slashes kept (the S3 key is the path).
    const path = target.s3Key.split('/').map(encodeURIComponent).join('/');
    const query = [
      ['response-content-type', target.contentType],
      ['response-content-disposition', contentDisposition(target.filename)],
    ]
      .map(([name, value]) => `${name}=${encodeURIComponent(value!)}`)
      .join('&');
    return Promise.resolve(
      cloudFrontSignedUrl({
        url: `https://${this.domain}/${path}?${query}`,
        keyPairId: this.keyPairId,
        privateKey: this.privateKey,
        dateLessThan: new Date(from.getTime() + seconds * 1000),
        algorithm: 'SHA256',
      }),
    );
  }
}

/**
 * The signer of this configuration: CloudFront's when DOCUMENT_CDN_* name a
 * distribution (its private key read now, once, with the process's own role,
 * as the Redis token is), else S3's.
 */
export async function documentLinkSigner(
  config: Config,
  s3: S3Client,
  readSecret: (config: Config, secretId: string) => Promise<string> = readSecretString,
): Promise<LinkSigner> {
  const domain = config.DOCUMENT_CDN_DOMAIN;
  const keyPairId = config.DOCUMENT_CDN_KEY_PAIR_ID;
  const secretId = config.DOCUMENT_CDN_PRIVATE_KEY_SECRET_ID;
  if (domain === undefined || keyPairId === undefined || secretId === undefined) return new S3LinkSigner(s3, config.DOCUMENTS_BUCKET);
  const privateKey = cdnPrivateKey(await readSecret(config, secretId), secretId);
  return new CloudFrontLinkSigner({ domain, keyPairId, privateKey });
}
