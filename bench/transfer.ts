import { request } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout } from 'node:timers/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { completeUpload, uploadParts, type Part } from './sdk-multipart.ts';

// The large-transfer benchmark's mover, a process of its own (like the load
// generator): one JSON job on argv, one JSON answer on stdout.
//
// - ceiling-upload / ceiling-download: the same bytes to and from the same S3
//   emulator with the AWS SDK alone, in parts of the service's size with as
//   many in flight as the service sends: what the emulator takes at best.
// - upload / download: through the API, over HTTP, `concurrency` at once.
// - resumable: a tus upload through the API, created then appended in
//   `patchSize` pieces, one after the other on one keep-alive connection.
// - resumable-prepare / resumable-finish: a tus upload of `size` bytes all
//   but whose last `finalBytes` are appended (`pieces`, in order), then, in
//   another job, the one append that completes it: its cost alone.
// - ceiling-parts / ceiling-complete: ceiling-upload in two jobs, the parts
//   and then their completion alone, the emulator's work while an API that
//   completed the same upload would wait.
//
// Bytes are made on the fly from one reused block: the mover holds no
// document either.

type Job =
  | { kind: 'ceiling-upload' | 'ceiling-download'; endpoint: string; bucket: string; key: string; size: number; partSize: number; partsInFlight: number }
  | { kind: 'upload' | 'download'; origin: string; ids: string[]; size: number }
  | { kind: 'resumable'; origin: string; size: number; patchSize: number }
  | { kind: 'resumable-prepare'; origin: string; size: number; pieces: number[] }
  | { kind: 'resumable-finish'; origin: string; location: string; offset: number; size: number }
  | { kind: 'ceiling-parts'; endpoint: string; bucket: string; key: string; size: number; partSize: number; partsInFlight: number }
  | { kind: 'ceiling-complete'; endpoint: string; bucket: string; key: string; uploadId: string; parts: Part[] };

const job = JSON.parse(process.argv[2]!) as Job;
const BLOCK = Buffer.alloc(1024 * 1024, 0x5a);

function body(size: number): Readable {
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < size; sent += BLOCK.length) yield BLOCK.subarray(0, Math.min(BLOCK.length, size - sent));
    })(),
  );
}

type Answer = { status: number; bytes: number; headers: Record<string, string | string[] | undefined>; code?: string | undefined };

function http(method: string, url: string, payload?: Readable, size?: number, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sent = size === undefined ? headers : { 'content-length': String(size), 'content-type': 'application/octet-stream', ...headers };
    // Node's global agent keeps connections alive: the appends of an upload go one after the other on one.
    const req = request(url, { method, headers: sent });
    req.on('error', reject);
    req.on('response', (response) => {
      let bytes = 0;
      // A refusal is a small problem+json: its code says which.
      let refusal = '';
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if ((response.statusCode ?? 0) >= 400 && refusal.length < 1024) refusal += chunk.toString('utf8');
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, bytes, headers: response.headers, code: /"code":"([A-Z_]+)"/.exec(refusal)?.[1] }));
      response.on('error', reject);
    });
    if (payload) payload.pipe(req);
    else req.end();
  });
}

const TUS = { 'tus-resumable': '1.0.0' };

async function createUpload(origin: string, size: number): Promise<string> {
  const created = await http('POST', `${origin}/documents`, undefined, undefined, { ...TUS, 'upload-length': String(size) });
  if (created.status !== 201) throw new Error(`resumable creation: ${created.status}`);
  return String(created.headers.location);
}

async function append(origin: string, location: string, offset: number, length: number): Promise<Answer> {
  const answer = await http('PATCH', `${origin}${location}`, body(length), length, {
    ...TUS,
    'upload-offset': String(offset),
    'content-type': 'application/offset+octet-stream',
  });
  if (answer.status !== 204 || Number(answer.headers['upload-offset']) !== offset + length) throw new Error(`append at ${offset}: ${answer.status}`);
  return answer;
}

async function resumable(job: Extract<Job, { kind: 'resumable' | 'resumable-prepare' | 'resumable-finish' }>): Promise<{ ok: number; location?: string; offset?: number }> {
  if (job.kind === 'resumable-finish') {
    await append(job.origin, job.location, job.offset, job.size - job.offset);
    return { ok: 1 };
  }
  const location = await createUpload(job.origin, job.size);
  const pieces = job.kind === 'resumable' ? Array.from({ length: Math.ceil(job.size / job.patchSize) }, (_, i) => Math.min(job.patchSize, job.size - i * job.patchSize)) : job.pieces;
  let offset = 0;
  for (const piece of pieces) {
    await append(job.origin, location, offset, piece);
    offset += piece;
  }
  return { ok: 1, location, offset };
}

async function ceilingDownload(s3: S3Client, key: string, bucket: string): Promise<number> {
  const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  let bytes = 0;
  for await (const chunk of Body as Readable) bytes += (chunk as Buffer).length;
  return bytes;
}

type Moved = { ms: number; ok: number };

async function ceiling(job: Extract<Job, { endpoint: string }>): Promise<{ ok: number; uploadId?: string; parts?: Part[] }> {
  const s3 = new S3Client({ region: 'us-east-1', endpoint: job.endpoint, forcePathStyle: true });
  try {
    switch (job.kind) {
      case 'ceiling-upload': {
        const { uploadId, parts } = await uploadParts(s3, job.key, job.bucket, job.size, job.partSize, job.partsInFlight);
        await completeUpload(s3, job.key, job.bucket, uploadId, parts);
        return { ok: 1 };
      }
      case 'ceiling-parts':
        return { ok: 1, ...(await uploadParts(s3, job.key, job.bucket, job.size, job.partSize, job.partsInFlight)) };
      case 'ceiling-complete':
        await completeUpload(s3, job.key, job.bucket, job.uploadId, job.parts);
        return { ok: 1 };
      case 'ceiling-download':
        if ((await ceilingDownload(s3, job.key, job.bucket)) !== job.size) throw new Error('ceiling download: short read');
        return { ok: 1 };
    }
  } finally {
    s3.destroy();
  }
}

const RETRIES = 5;

/**
 * A transfer through the API, as a client that honours 503 + Retry-After
 * would make it: on a starved machine the API refuses some (a store call
 * past its deadline, a lagging event loop), by design, and a refused upload
 * is not a lost one. Each retry is logged, with the problem's code.
 */
async function transfer(job: Extract<Job, { kind: 'upload' | 'download' }>, id: string): Promise<Answer> {
  for (let attempt = 0; ; attempt++) {
    const answer =
      job.kind === 'upload' ? await http('PUT', `${job.origin}/documents/${id}`, body(job.size), job.size) : await http('GET', `${job.origin}/documents/${id}`);
    const retryAfter = Number(answer.headers['retry-after']);
    if (answer.status !== 503 || attempt === RETRIES || !(retryAfter >= 0)) return answer;
    console.error(`[bench] transfer: ${job.kind} of ${id} answered 503 ${answer.code ?? ''}, retried after ${retryAfter} s`);
    await setTimeout(Math.min(retryAfter, 5) * 1000);
  }
}

async function throughApi(job: Extract<Job, { kind: 'upload' | 'download' }>): Promise<number> {
  const answers = await Promise.all(job.ids.map((id) => transfer(job, id)));
  const ok = answers.filter((answer) => answer.status < 300 && (job.kind === 'upload' || answer.bytes === job.size)).length;
  if (ok < answers.length) console.error(`[bench] transfer: ${job.kind} statuses ${answers.map((answer) => answer.status).join(',')}`);
  return ok;
}

const started = performance.now();
async function run(job: Job): Promise<{ ok: number }> {
  switch (job.kind) {
    case 'ceiling-upload':
    case 'ceiling-download':
    case 'ceiling-parts':
    case 'ceiling-complete':
      return ceiling(job);
    case 'upload':
    case 'download':
      return { ok: await throughApi(job) };
    default:
      return resumable(job);
  }
}

const done = await run(job);
const moved: Moved & Record<string, unknown> = { ...done, ms: performance.now() - started };
process.stdout.write(JSON.stringify(moved));
