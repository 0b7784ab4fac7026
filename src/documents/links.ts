import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

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
 * Makes short-lived URLs that serve an object without the service. The S3
 * presigner is the one there is; CloudFront signed URLs (issue 21) are
 * another implementation of the same interface.
 */
export interface LinkSigner {
  sign(target: LinkTarget, validity: Validity): Promise<string>;
}

/** A link is valid `seconds` from `from`. */
export type Validity = { from: Date; seconds: number };

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
      ResponseContentDisposition: attachment(target.filename),
    });
    return getSignedUrl(this.s3, command, { signingDate: from, expiresIn: seconds });
  }
}

// RFC 8187 attr-char: kept as it is in filename*; every other byte is percent-encoded.
const ATTR_CHAR = /^[A-Za-z0-9!#$&+.^_`|~-]$/;
// The plain filename keeps only what needs no quoting rule at all.
const NOT_PLAIN = /[^A-Za-z0-9._-]/g;

/**
 * `attachment` with the name twice (RFC 6266): a plain ASCII `filename` of
 * safe characters only, and `filename*` with the name percent-encoded, so
 * that no quote, semicolon or control character of a name can end the
 * parameter and add another.
 */
export function attachment(filename: string): string {
  const plain = filename.replace(NOT_PLAIN, '_') || 'document';
  const encoded = Array.from(new TextEncoder().encode(filename), (byte) => {
    const char = String.fromCharCode(byte);
    return ATTR_CHAR.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
  return `attachment; filename="${plain}"; filename*=UTF-8''${encoded}`;
}
