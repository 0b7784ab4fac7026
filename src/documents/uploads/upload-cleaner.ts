import type { S3Parts } from '../../adapters/s3-parts.ts';
import type { Upload, UploadRecords } from './upload-records.ts';

/** Where an upload lives: its region's item and bucket. */
export type UploadHome = { region: string; records: UploadRecords; parts: S3Parts };

export type CleanedState = 'EXPIRED' | 'CANCELLED' | 'FAILED';

/**
 * Removes what an upload that will never commit left in S3: its multipart
 * upload (aborted, with every part) and its tail. Never the object a
 * completed multipart upload made: a document may name it (the lifecycle
 * worker's orphan sweep judges that one against the documents table).
 * Then the upload leaves the index the lifecycle worker reads.
 */
export async function discardUpload(home: UploadHome, upload: Upload): Promise<void> {
  await home.parts.abort(upload.s3Key, upload.s3UploadId);
  if (upload.tail) await home.parts.remove(upload.tail.key);
  await home.records.cleaned(upload.tenant, upload.uploadId);
}

/**
 * The lifecycle worker's part: every upload of this region the index lists
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
