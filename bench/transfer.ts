import { request } from 'node:http';
import { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';

// The large-transfer benchmark's mover, a process of its own (like the load
// generator): one JSON job on argv, one JSON answer on stdout.
//
// - ceiling-upload / ceiling-download: the same bytes to and from the same S3
//   emulator with the AWS SDK alone, in parts of the service's size with as
//   many in flight as the service sends: what the emulator takes at best.
// - upload / download: through the API, over HTTP, `concurrency` at once.
//
// Bytes are made on the fly from one reused block: the mover holds no
// document either.

type Job =
  | { kind: 'ceiling-upload' | 'ceiling-download'; endpoint: string; bucket: string; key: string; size: number; partSize: number; partsInFlight: number }
  | { kind: 'upload' | 'download'; origin: string; ids: string[]; size: number };

const job = JSON.parse(process.argv[2]!) as Job;
const BLOCK = Buffer.alloc(1024 * 1024, 0x5a);

function body(size: number): Readable {
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < size; sent += BLOCK.length) yield BLOCK.subarray(0, Math.min(BLOCK.length, size - sent));
    })(),
  );
}

function http(method: string, url: string, payload?: Readable, size?: number): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: size === undefined ? {} : { 'content-length': size, 'content-type': 'application/octet-stream' } });
    req.on('error', reject);
    req.on('response', (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => (bytes += chunk.length));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, bytes }));
      response.on('error', reject);
    });
    if (payload) payload.pipe(req);
    else req.end();
  });
}

async function ceilingUpload(s3: S3Client, key: string, bucket: string, size: number, partSize: number, partsInFlight: number) {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'CRC32' }));
  const part = Buffer.alloc(partSize, 0x5a);
  const parts: (CompletedPart & { PartNumber: number })[] = [];
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
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
}

async function ceilingDownload(s3: S3Client, key: string, bucket: string): Promise<number> {
  const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  let bytes = 0;
  for await (const chunk of Body as Readable) bytes += (chunk as Buffer).length;
  return bytes;
}

type Moved = { ms: number; ok: number };

async function ceiling(job: Extract<Job, { endpoint: string }>): Promise<number> {
  const s3 = new S3Client({ region: 'us-east-1', endpoint: job.endpoint, forcePathStyle: true });
  try {
    if (job.kind === 'ceiling-upload') await ceilingUpload(s3, job.key, job.bucket, job.size, job.partSize, job.partsInFlight);
    else if ((await ceilingDownload(s3, job.key, job.bucket)) !== job.size) throw new Error('ceiling download: short read');
    return 1;
  } finally {
    s3.destroy();
  }
}

async function throughApi(job: Extract<Job, { origin: string }>): Promise<number> {
  const answers = await Promise.all(
    job.ids.map((id) =>
      job.kind === 'upload' ? http('PUT', `${job.origin}/documents/${id}`, body(job.size), job.size) : http('GET', `${job.origin}/documents/${id}`),
    ),
  );
  const ok = answers.filter((answer) => answer.status < 300 && (job.kind === 'upload' || answer.bytes === job.size)).length;
  if (ok < answers.length) console.error(`[bench] transfer: ${job.kind} statuses ${answers.map((answer) => answer.status).join(',')}`);
  return ok;
}

const started = performance.now();
const ok = 'endpoint' in job ? await ceiling(job) : await throughApi(job);
const moved: Moved = { ms: performance.now() - started, ok };
process.stdout.write(JSON.stringify(moved));
