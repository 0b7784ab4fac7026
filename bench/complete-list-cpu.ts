import { once } from 'node:events';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '../src/local/emulators.ts';
import { cleanup, startNode } from './processes.ts';
import { completeUpload, uploadParts } from './sdk-multipart.ts';

// `node bench/complete-list-cpu.ts`: the client CPU of one CompleteMultipartUpload
// with the part list of a 1 MiB upload (one part) and of a 1026 MiB one (206),
// the SDK against the local S3 emulator (its own process, so that its work is
// not counted). What part of a large completion's extra API CPU the part list
// itself costs (bench/README.md, "Results", the completion target). Four rounds.

const PARTS = [1, 206];
const ROUNDS = 4;
const PART_BYTES = 5 * 1024 * 1024;
const LAST_PART_BYTES = 1024 * 1024;

const [aws, dynamodb, redis] = await Promise.all([freePort(), freePort(), freePort()]);
const stack = startNode(['src/local/stack.ts'], { ...process.env, AWS_EMULATOR_PORT: String(aws), DYNAMODB_EMULATOR_PORT: String(dynamodb), REDIS_PORT: String(redis) }, 'pipe');
try {
  let said = '';
  for await (const chunk of stack.stdout!) if ((said += String(chunk)).includes('emulators ready')) break;
  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${aws}`,
    forcePathStyle: true,
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    requestHandler: { requestTimeout: 120_000 },
  });
  const Bucket = 'bench-complete-list';
  await s3.send(new CreateBucketCommand({ Bucket }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const count of PARTS) {
      // One key per size: each completion replaces the last object, so the emulator holds two at most.
      const Key = `parts-${count}`;
      const { uploadId, parts } = await uploadParts(s3, Key, Bucket, (count - 1) * PART_BYTES + LAST_PART_BYTES, PART_BYTES, 1);
      const before = process.cpuUsage();
      const at = performance.now();
      await completeUpload(s3, Key, Bucket, uploadId, parts);
      const cpu = process.cpuUsage(before);
      console.log(`round ${round + 1}, ${count} part(s): ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms of client CPU in ${Math.round(performance.now() - at)} ms`);
    }
  }
  s3.destroy();
} finally {
  await cleanup();
  if (stack.exitCode === null) await once(stack, 'exit');
}
