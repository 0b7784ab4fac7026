import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { createAwsClients } from '../../src/adapters/aws.ts';
import { PartBuffers, uploadStream } from '../../src/adapters/s3-multipart.ts';
import { testConfig, uniqueId } from '../support/app.ts';
import { generatedBody } from '../support/large-body.ts';

// The part buffers of uploads: one of its own per upload, and a few spares
// the process's uploads share to send a part while the next one fills.
// Against the real S3 emulator, with the service's 5 MiB parts.

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const config = testConfig();
const aws = createAwsClients(config);
afterAll(() => aws.destroy());

/** PartBuffers that also count what it hands out: buffers and spares out now and at most at once, and how many it ever made. */
class CountedPartBuffers extends PartBuffers {
  out = 0;
  mostOut = 0;
  sparesOut = 0;
  mostSparesOut = 0;
  readonly seen = new Set<Buffer>();

  private lend(buffer: Buffer) {
    this.seen.add(buffer);
    this.mostOut = Math.max(this.mostOut, ++this.out);
    this.mostSparesOut = Math.max(this.mostSparesOut, this.sparesOut);
    return buffer;
  }
  override own() {
    return this.lend(super.own());
  }
  override spare() {
    const spare = super.spare();
    if (spare) this.sparesOut++;
    return spare && this.lend(spare);
  }
  override giveOwn(buffer: Buffer) {
    this.out--;
    super.giveOwn(buffer);
  }
  override giveSpare(buffer: Buffer) {
    // Only a spare that was lent ever comes back as one.
    expect(this.sparesOut).toBeGreaterThan(0);
    this.sparesOut--;
    this.out--;
    super.giveSpare(buffer);
  }
}

async function stored(key: string) {
  const { Body } = await aws.s3.send(new GetObjectCommand({ Bucket: config.DOCUMENTS_BUCKET, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const upload = (buffers: PartBuffers, key: string, body: AsyncIterable<Buffer>) =>
  uploadStream(body, { client: aws.s3Transfer, bucket: config.DOCUMENTS_BUCKET, key, buffers, partsInFlight: 1 });

describe('PartBuffers', () => {
  it('lends at most its spares, and hands back the buffers it was given', () => {
    const buffers = new PartBuffers(1024, { spares: 2, maxUploads: 1 });
    const own = buffers.own();
    const spares = [buffers.spare(), buffers.spare()];
    expect(spares.every((spare) => spare?.length === 1024)).toBe(true);
    expect(buffers.spare()).toBeUndefined();
    // One back: one more to lend, that one, and then none again.
    buffers.giveSpare(spares[0]!);
    expect(buffers.spare()).toBe(spares[0]);
    expect(buffers.spare()).toBeUndefined();
    buffers.giveOwn(own);
    expect(buffers.own()).toBe(own);
  });

  it('keeps no more idle than its uploads and spares can hold at once', () => {
    const buffers = new PartBuffers(1024, { spares: 1, maxUploads: 1 });
    const given = [buffers.own(), buffers.own(), buffers.own()];
    for (const buffer of given) buffers.giveOwn(buffer);
    const taken = [buffers.own(), buffers.own(), buffers.own()];
    expect(taken.filter((buffer) => given.includes(buffer))).toHaveLength(2);
  });
});

describe('uploads and their part buffers', () => {
  it('one upload alone sends a part while it fills the next, in a spare', async () => {
    const buffers = new CountedPartBuffers(PART, { spares: 4, maxUploads: 4 });
    const body = generatedBody(4 * PART + 123);
    const key = `part-buffers/${uniqueId('alone')}`;
    await upload(buffers, key, body.stream());
    expect(await stored(key)).toBe(body.sha256);
    expect(buffers.mostSparesOut).toBe(1);
    expect(buffers.mostOut).toBe(2);
    expect(buffers.sparesOut).toBe(0);
  });

  it('six uploads at once with two spares hold at most eight buffers, and store every byte', async () => {
    const buffers = new CountedPartBuffers(PART, { spares: 2, maxUploads: 6 });
    const bodies = Array.from({ length: 6 }, () => generatedBody(4 * PART + 7));
    const keys = bodies.map(() => `part-buffers/${uniqueId('shared')}`);
    await Promise.all(bodies.map((body, i) => upload(buffers, keys[i]!, body.stream())));
    expect(await Promise.all(keys.map(stored))).toEqual(bodies.map((body) => body.sha256));
    expect(buffers.mostSparesOut).toBe(2);
    expect(buffers.mostOut).toBeLessThanOrEqual(8);
    expect(buffers.seen.size).toBeLessThanOrEqual(8);
    expect(buffers.out).toBe(0);
  });

  it('with no spare to be had, an upload waits for its part in flight and still stores every byte', async () => {
    const buffers = new CountedPartBuffers(PART, { spares: 0, maxUploads: 2 });
    const bodies = [generatedBody(3 * PART + 1000), generatedBody(3 * PART + 2000)];
    const keys = bodies.map(() => `part-buffers/${uniqueId('no-spare')}`);
    await Promise.all(bodies.map((body, i) => upload(buffers, keys[i]!, body.stream())));
    expect(await Promise.all(keys.map(stored))).toEqual(bodies.map((body) => body.sha256));
    expect(buffers.mostOut).toBe(2);
    expect(buffers.seen.size).toBe(2);
  });

  it('an upload whose body fails gives its spares back and leaves no multipart upload', async () => {
    const buffers = new CountedPartBuffers(PART, { spares: 1, maxUploads: 1 });
    const key = `part-buffers/${uniqueId('failed')}`;
    const seed = generatedBody(3 * PART).stream();
    const failing = (async function* () {
      let sent = 0;
      for await (const chunk of seed) {
        yield chunk as Buffer;
        sent += (chunk as Buffer).length;
        if (sent > 2 * PART) throw new Error('client gone');
      }
    })();
    await expect(upload(buffers, key, failing)).rejects.toThrow('client gone');
    expect(buffers.mostSparesOut).toBe(1);
    expect(buffers.sparesOut).toBe(0);
    expect(buffers.out).toBe(0);
    const { Uploads } = await aws.s3.send(new ListMultipartUploadsCommand({ Bucket: config.DOCUMENTS_BUCKET, Prefix: key }));
    expect(Uploads ?? []).toEqual([]);
  });
});
