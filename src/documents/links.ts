import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { create as contentDisposition } from 'content-disposition';

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
      // attachment, with the name quoted and escaped (RFC 6266; filename* for what is not ASCII): no name adds a parameter.
      ResponseContentDisposition: contentDisposition(target.filename),
    });
    return getSignedUrl(this.s3, command, { signingDate: from, expiresIn: seconds });
  }
}
