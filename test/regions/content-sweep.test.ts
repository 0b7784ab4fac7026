import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { FastifyInstance } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { Regions } from '../../src/adapters/regions.ts';
import { buildApp } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { ContentSweeper, sweptStores, type LifecycleSweep } from '../../src/documents/content-sweeper.ts';
import { uploadHome } from '../../src/documents/uploads/upload-home.ts';
import { testClock } from '../support/clock.ts';
import { bucketContents, patchUpload, uploadWithPartAndTail } from '../documents/support.ts';
import { PRIMARY, SECONDARY, startTwoStacks, type TwoStacks } from './support.ts';

// The content sweep of two regions (docs/design.md, "The content sweep of
// several regions"), on two local stacks joined by the replication double
// (delete markers replicate, as terraform sets it). Table items are held
// back (a partition) while the sweepers' clock is moved past the grace
// period: each region then has objects whose commit its replica lacks.

const GRACE_MS = 60_000;
const silent = { info() {}, warn() {}, error() {} };

let stacks: TwoStacks;
let app: FastifyInstance;
const region: Record<string, { config: Config; aws: AwsClients }> = {};

beforeAll(async () => {
  stacks = await startTwoStacks({ items: 50, objects: 50, events: 50 });
  for (const name of [PRIMARY, SECONDARY]) {
    const config = loadConfig({ ...stacks.envOf(name), LOG_LEVEL: 'silent' });
    region[name] = { config, aws: createAwsClients(config) };
  }
  // The API of the first region, which takes every write of this file.
  app = await buildApp({ config: region[PRIMARY]!.config });
  await app.ready();
}, 90_000);

afterAll(async () => {
  await app?.close();
  for (const { aws } of Object.values(region)) aws.destroy();
  await stacks?.stop();
});

const regions = () => new Regions(region[PRIMARY]!.config);
/** A new document id homed in `home`. */
function idHomedIn(home: string): string {
  for (;;) {
    const id = `sweep-${randomUUID()}`;
    if (regions().homeOf(`public#${id}`) === home) return id;
  }
}

function sweeper(name: string, now: () => number) {
  const { config, aws } = region[name]!;
  const { close, ...stores } = sweptStores(config, aws);
  const worker = new ContentSweeper({ ...stores, log: silent, graceMs: GRACE_MS, leaseMs: 30_000, intervalMs: 60_000, now });
  return {
    async sweep(): Promise<LifecycleSweep> {
      try {
        return await worker.sweep();
      } finally {
        close();
      }
    },
  };
}

const objectsIn = async (name: string, prefix = 'public/') => (await bucketContents(region[name]!.aws, region[name]!.config, prefix)).objects;

/** What a create that died between its upload and its commit leaves: an object of its own in the region that took it. */
async function orphanIn(name: string, id: string): Promise<string> {
  const key = `public/${id}/${uuidv7()}`;
  await region[name]!.aws.s3.send(new PutObjectCommand({ Bucket: region[name]!.config.DOCUMENTS_BUCKET, Key: key, Body: randomBytes(2000) }));
  return key;
}

async function contentIn(name: string, key: string): Promise<Buffer> {
  const { Body } = await region[name]!.aws.s3.send(new GetObjectCommand({ Bucket: region[name]!.config.DOCUMENTS_BUCKET, Key: key }));
  return Buffer.from(await Body!.transformToByteArray());
}

describe('the content sweep of two regions', () => {
  it("a region's sweep never removes an object whose commit its replica lacks; the home removes its own orphans, everywhere", async () => {
    const { replication } = stacks;
    const clock = testClock();
    // Larger than INLINE_CONTENT_MAX_BYTES: content in S3.
    const committed = { here: idHomedIn(PRIMARY), there: idHomedIn(SECONDARY) };
    const bodies = { here: randomBytes(3000), there: randomBytes(3000) };
    const orphans = { here: idHomedIn(PRIMARY), there: idHomedIn(SECONDARY) };

    // A partition of the tables, longer than the grace period: objects still replicate.
    replication.pause('items');
    try {
      // Both created in the first region: the second's id commits at its home, the second region's table.
      for (const side of ['here', 'there'] as const) {
        const put = await app.inject({ method: 'PUT', url: `/documents/${committed[side]}`, payload: bodies[side], headers: { 'content-type': 'application/octet-stream' } });
        expect(put.statusCode, side).toBe(201);
      }
      const orphanKeys = { here: await orphanIn(PRIMARY, orphans.here), there: await orphanIn(SECONDARY, orphans.there) };
      await replication.settled('objects');
      const [committedHere] = await objectsIn(PRIMARY, `public/${committed.here}/`);
      const [committedThere] = await objectsIn(PRIMARY, `public/${committed.there}/`);
      const all = [committedHere!, committedThere!, orphanKeys.here, orphanKeys.there].sort();
      // Every bucket has every object; each table has only the commits homed in it.
      expect(await objectsIn(PRIMARY)).toEqual(all);
      expect(await objectsIn(SECONDARY)).toEqual(all);

      clock.advance(GRACE_MS + 1000);

      // The second region: its replica has not heard of the first region's commit.
      // It judges the two objects homed in it (keeps the one committed there, removes the orphan), not the others.
      const second = await sweeper(SECONDARY, clock.now).sweep();
      await replication.settled('objects');
      const afterSecond = [committedHere!, committedThere!, orphanKeys.here].sort();
      expect(await objectsIn(SECONDARY)).toEqual(afterSecond);
      expect(await objectsIn(PRIMARY)).toEqual(afterSecond);
      expect(second).toMatchObject({ checked: 2, elsewhere: 2, found: { unreferenced: 1, deleted: 0, upload: 0 }, removed: { unreferenced: 1 } });

      // The first region: its replica lacks the commit homed in the second; its own orphan goes, from both buckets.
      const first = await sweeper(PRIMARY, clock.now).sweep();
      await replication.settled('objects');
      const kept = [committedHere!, committedThere!].sort();
      expect(await objectsIn(PRIMARY)).toEqual(kept);
      expect(await objectsIn(SECONDARY)).toEqual(kept);
      expect(first).toMatchObject({ checked: 2, elsewhere: 1, found: { unreferenced: 1, deleted: 0, upload: 0 }, removed: { unreferenced: 1 } });
      for (const name of [PRIMARY, SECONDARY]) {
        expect((await contentIn(name, committedHere!)).equals(bodies.here), name).toBe(true);
        expect((await contentIn(name, committedThere!)).equals(bodies.there), name).toBe(true);
      }
    } finally {
      replication.resume('items');
    }

    // The partition over: both documents read as written, and nothing more is found anywhere.
    await replication.settled('items');
    for (const side of ['here', 'there'] as const) {
      const read = await app.inject({ method: 'GET', url: `/documents/${committed[side]}` });
      expect(read.statusCode, side).toBe(200);
      expect(read.rawPayload.equals(bodies[side]), side).toBe(true);
    }
    for (const name of [PRIMARY, SECONDARY]) {
      expect(await sweeper(name, clock.now).sweep(), name).toMatchObject({ checked: 1, elsewhere: 1, found: { unreferenced: 0, deleted: 0, upload: 0 } });
    }
  });

  it("a live upload's tail, replicated ahead of the upload's item, is kept by the other region and the upload goes on", async () => {
    const { replication } = stacks;
    const MiB = 1024 * 1024;
    const clock = testClock();
    replication.pause('items');
    try {
      // A part (5 MiB, in a multipart upload) and a tail (1 MiB, an object of its own, which replicates).
      const uploadId = await uploadWithPartAndTail(app, 7 * MiB);
      const upload = (await uploadHome(region[PRIMARY]!.config, region[PRIMARY]!.aws).records.get('public', uploadId))!;
      await replication.settled('objects');
      const prefix = `public/${upload.documentId}/`;
      expect(await objectsIn(SECONDARY, prefix)).toEqual([upload.tail!.key]);

      // Past the grace period, before the upload expires; the second region's replica has no item of it.
      clock.advance(GRACE_MS + 1000);
      for (const name of [SECONDARY, PRIMARY]) await sweeper(name, clock.now).sweep();
      await replication.settled('objects');
      expect(await objectsIn(SECONDARY, prefix)).toEqual([upload.tail!.key]);
      expect(await objectsIn(PRIMARY, prefix)).toEqual([upload.tail!.key]);

      // The upload completes from the bytes stored, the tail among them.
      const last = await patchUpload(app, uploadId, 6 * MiB, randomBytes(MiB));
      expect(last.statusCode).toBe(204);
      expect((await app.inject({ method: 'HEAD', url: `/documents/${upload.documentId}` })).statusCode).toBe(200);
    } finally {
      replication.resume('items');
    }
    // Every copy done before the stacks stop under it.
    await replication.settled('items', 'objects');
  });
});
