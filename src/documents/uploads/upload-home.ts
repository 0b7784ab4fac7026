import type { AwsClients } from '../../adapters/aws.ts';
import { S3Parts } from '../../adapters/s3-parts.ts';
import type { Config } from '../../config.ts';
import { contentKeys } from '../encryption.ts';
import { UploadRecords, type Upload } from './upload-records.ts';

/** Where an upload lives: its region's item (in the documents table) and bucket. */
export type UploadHome = { region: string; records: UploadRecords; parts: S3Parts };

/** The uploads of one region, as the API and the content sweeper reach them. */
export function uploadHome(config: Config, aws: AwsClients): UploadHome {
  return {
    region: config.AWS_REGION,
    records: new UploadRecords({ dynamo: aws.dynamo, table: config.DOCUMENTS_TABLE }),
    parts: new S3Parts({
      client: aws.s3Transfer,
      bucket: config.DOCUMENTS_BUCKET,
      maxAttempts: config.AWS_MAX_ATTEMPTS,
      encryption: contentKeys(config).forObject,
    }),
  };
}

export type CleanedState = 'EXPIRED' | 'CANCELLED' | 'FAILED';

const UPLOAD_OBJECT = /^([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})(\.tail\.[0-9a-f-]{36})?$/;

/**
 * Which upload an object key of the bucket belongs to, if any: an upload's
 * object is `<tenant>/<document>/<upload id>` (what its multipart upload
 * completes into), its tails `<tenant>/<document>/<upload id>.tail.<uuid>`.
 * A one-request create's staged object is named by a UUIDv7, which this
 * does not match.
 */
export function uploadObjectOf(key: string): { uploadId: string; tail: boolean } | undefined {
  const match = UPLOAD_OBJECT.exec(key.split('/')[2] ?? '');
  return match ? { uploadId: match[1]!, tail: match[2] !== undefined } : undefined;
}

/**
 * Removes what an upload that will never commit left in S3: its multipart
 * upload (aborted, with every part) and its tail. Never the object a
 * completed multipart upload made: a document may name it (the content
 * sweeper's orphan sweep judges that one against the documents table).
 * Then the upload leaves the index the content sweeper reads.
 */
export async function discardUpload(home: UploadHome, upload: Upload): Promise<void> {
  await home.parts.abort(upload.s3Key, upload.s3UploadId);
  if (upload.tail) await home.parts.remove(upload.tail.key);
  await home.records.cleaned(upload.tenant, upload.uploadId);
}

/**
 * The content sweeper's part: every upload of this region the index lists
 * as past its expiry is ended (EXPIRED, unless it completed meanwhile) and
 * its bytes removed; cancelled and failed ones whose own cleanup failed are
 * listed too, and cleaned the same way.
 */
export async function sweepUploads(
  home: UploadHome,
  now: number,
  counted: (state: CleanedState) => void,
  abortSignal?: AbortSignal,
): Promise<number> {
  let cleaned = 0;
  for await (const { tenant, uploadId } of home.records.due(now, abortSignal)) {
    const upload = await home.records.get(tenant, uploadId);
    if (!upload || upload.region !== home.region || upload.state === 'COMPLETED') continue;
    let state = upload.state;
    if (state === 'OPEN' || state === 'COMPLETING') {
      if (!(await home.records.end(tenant, uploadId, 'EXPIRED'))) continue;
      state = 'EXPIRED';
    }
    await discardUpload(home, upload);
    counted(state as CleanedState);
    cleaned += 1;
  }
  return cleaned;
}
