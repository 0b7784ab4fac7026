import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, S3Client, UploadPartCommand, type CompletedPart } from '@aws-sdk/client-s3';

// A multipart upload with the SDK alone, in two steps: the parts, then their
// completion. Shared by the mover (transfer.ts: the ceiling of transfers, the
// emulator's completion an API waits for) and bench/complete-list-cpu.ts.

export type Part = CompletedPart & { PartNumber: number };

/** Uploads `size` bytes in parts of `partSize`, `partsInFlight` at once; answers the upload and its parts, in order. */
export async function uploadParts(s3: S3Client, key: string, bucket: string, size: number, partSize: number, partsInFlight: number) {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'CRC32' }));
  const part = Buffer.alloc(partSize, 0x5a);
  const parts: Part[] = [];
  const count = Math.ceil(size / partSize);
  let next = 1;
  await Promise.all(
    Array.from({ length: partsInFlight }, async () => {
      while (next <= count) {
        const number = next++;
        const length = Math.min(partSize, size - (number - 1) * partSize);
        const answer = await s3.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: number, Body: part.subarray(0, length), ChecksumAlgorithm: 'CRC32' }),
        );
        parts.push({ PartNumber: number, ETag: answer.ETag, ChecksumCRC32: answer.ChecksumCRC32 });
      }
    }),
  );
  parts.sort((a, b) => a.PartNumber - b.PartNumber);
  return { uploadId: UploadId!, parts };
}

/** Completes the upload of these parts (the emulator concatenates them meanwhile). */
export async function completeUpload(s3: S3Client, key: string, bucket: string, uploadId: string, parts: Part[]) {
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
}
