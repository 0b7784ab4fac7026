/**
 * What the form of an HMAC key costs on this Node, and what it costs the
 * lean DynamoDB client's signature. Outside `make bench`:
 *
 *   node bench/hmac-keys.ts [iterations]
 *
 * Node 24's `createHmac` checks whether an object key is a KeyObject, then
 * a CryptoKey, by reading a private slot in a try/catch: a Buffer key
 * throws and catches twice, and each exception takes a stack trace, so the
 * cost grows with the depth of the stack. A request's signature is made
 * deep in one (the route, the domain, the store, the client's retries), so
 * each figure is measured at the top of the stack and 60 calls down.
 *
 * Prints µs of CPU (process.cpuUsage, user + system) per HMAC or per
 * signature, in alternating rounds (a shared machine weighs on all alike),
 * the median round of each: `createHmac` with a Buffer key and with the same
 * key as a KeyObject; `aws4.sign` (its key cached as a Buffer) and
 * `signRequest` (src/adapters/sigv4.ts: the key as a KeyObject) of a
 * DynamoDB PutItem as the client signs it; and an S3 presigned GET by the
 * AWS SDK with its own `Sha256` and with sigv4.ts's (a link, as
 * src/documents/links.ts signs one).
 */
import { createHmac, createSecretKey } from 'node:crypto';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import aws4 from 'aws4';
import { Sha256, SigningKeys, signRequest } from '../src/adapters/sigv4.ts';

const iterations = Number(process.argv[2] ?? 20_000);
const rounds = 5;
const DEPTH = 60;

const keyBytes = createHmac('sha256', 'secret').update('key').digest();
const keyObject = createSecretKey(keyBytes);
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const keys = new SigningKeys();
const body = JSON.stringify({ TableName: 'orders', Item: { pk: { S: 'public#order#0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' }, status: { S: 'ACCEPTED' } } });
const putItem = (): aws4.Request => ({
  host: 'dynamodb.eu-west-1.amazonaws.com',
  path: '/',
  method: 'POST',
  service: 'dynamodb',
  region: 'eu-west-1',
  headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem', 'X-Amz-Date': '20261208T021500Z' },
  body,
});

const cases: Record<string, () => unknown> = {
  'createHmac, Buffer key': () => createHmac('sha256', keyBytes).update(body).digest('hex'),
  'createHmac, KeyObject': () => createHmac('sha256', keyObject).update(body).digest('hex'),
  'aws4.sign': () => aws4.sign(putItem(), credentials),
  signRequest: () => signRequest(putItem(), credentials, keys),
};

/** µs of this process's CPU since `start`, per call of `n`. */
function cpuSince(start: NodeJS.CpuUsage, n: number): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

function cpuPerCall(run: () => unknown, n: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) run();
  return cpuSince(start, n);
}

/** `cpuPerCall`, `depth` frames down. */
function deep(depth: number, run: () => unknown, n: number): number {
  return depth === 0 ? cpuPerCall(run, n) : deep(depth - 1, run, n);
}

const s3Config = { region: 'eu-west-1', endpoint: 'http://127.0.0.1:4566', forcePathStyle: true, credentials };
const link = new GetObjectCommand({ Bucket: 'documents', Key: 'public/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', ResponseContentDisposition: 'attachment' });
const presigners: Record<string, S3Client> = {
  "S3 presign, the SDK's Sha256": new S3Client(s3Config),
  'S3 presign, sigv4.ts Sha256': new S3Client({ ...s3Config, sha256: Sha256 }),
};
async function presignCpu(s3: S3Client, n: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) await getSignedUrl(s3, link, { expiresIn: 300 });
  return cpuSince(start, n);
}
const presignCalls = Math.max(1, Math.floor(iterations / 10));

// Warm-ups, then the rounds: every row once a round.
for (const run of Object.values(cases)) deep(DEPTH, run, Math.min(iterations, 2000));
for (const s3 of Object.values(presigners)) await presignCpu(s3, Math.min(presignCalls, 500));
const results = new Map<string, number[]>();
const record = (row: string, perCall: number) => results.set(row, [...(results.get(row) ?? []), perCall]);
for (let r = 0; r < rounds; r++) {
  for (const depth of [0, DEPTH]) {
    for (const [name, run] of Object.entries(cases)) record(`${name}, ${depth} frames down`, deep(depth, run, iterations));
  }
  for (const [name, s3] of Object.entries(presigners)) record(name, await presignCpu(s3, presignCalls));
}
for (const [row, perCall] of results) {
  const sorted = [...perCall].sort((a, b) => a - b);
  console.log(`${row.padEnd(36)} ${sorted[Math.floor(rounds / 2)]!.toFixed(2)} µs CPU per call (rounds: ${perCall.map((us) => us.toFixed(1)).join(', ')})`);
}
