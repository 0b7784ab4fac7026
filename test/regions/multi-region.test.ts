import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { configFor } from '../support/config.ts';
import { Regions } from '../../src/adapters/regions.ts';
import { kill, report, sleep, stats } from '../faults/support.ts';
import { PRIMARY, SECONDARY, metric, startTwoRegions, waitFor, type TestRegion, type TwoRegions } from './support.ts';

// Two regions on one machine (test/regions/support.ts), joined by the
// replication double (test/regions/replication.ts) with a lag of LAG ms on
// table items, objects and events. What docs/design.md "Multi-region documents"
// promises is checked here, process against process.

const LAG = { items: 300, objects: 300, events: 300 };
/**
 * How long after a 204 in one region the other may still answer 200: the
 * event's lag, the worker's long poll answering it, the announcement's wait
 * for an instance that does not acknowledge (at most one lease, 1 s), plus
 * 1.5 s of margin for a loaded 2-core machine. Measured: see the report line.
 */
const BOUND_MS = LAG.events + 1000 + 1500;

let world: TwoRegions;
let a: TestRegion;
let b: TestRegion;
const regionsOf = new Regions(configFor({ AWS_REGION: PRIMARY, DOCUMENTS_BUCKET: `documents-${PRIMARY}`, DOCUMENT_REGIONS: `${PRIMARY}=documents-${PRIMARY},${SECONDARY}=documents-${SECONDARY}` }));
const homeOfDocument = (id: string) => regionsOf.homeOf(`public#${id}`);
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

beforeAll(async () => {
  world = await startTwoRegions(LAG);
  a = world.regions[PRIMARY]!;
  b = world.regions[SECONDARY]!;
}, 90_000);

afterAll(async () => {
  await world?.stop();
});

type Answer = { status: number; body: string; headers: Headers };

async function call(url: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${url}${path}`, {
    method,
    body,
    headers: body === undefined ? headers : { 'content-type': 'text/plain', ...headers },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const dynamo = (region: TestRegion) => new DynamoDBClient({ region: region.name, endpoint: region.env.AWS_ENDPOINT_URL_DYNAMODB, credentials });
const s3 = (region: TestRegion) => new S3Client({ region: region.name, endpoint: region.env.AWS_ENDPOINT_URL, credentials, forcePathStyle: true });

describe('two regions joined by MREC-style replication', () => {
  it('the double behaves as global tables do: two local writes of one item both succeed, and the last one wins everywhere', async () => {
    const pk = `public#lww-${randomUUID()}`;
    const [clientA, clientB] = [dynamo(a), dynamo(b)];
    const put = (client: DynamoDBClient, writer: string) =>
      client.send(new PutItemCommand({ TableName: 'documents', Item: { pk: { S: pk }, writer: { S: writer } }, ConditionExpression: 'attribute_not_exists(pk)' }));
    // Both conditions pass: neither replica has heard of the other's write yet.
    await put(clientA, 'a');
    await put(clientB, 'b');
    await world.replication.settled('items');
    const read = async (client: DynamoDBClient) =>
      (await client.send(new GetItemCommand({ TableName: 'documents', Key: { pk: { S: pk } }, ConsistentRead: true }))).Item?.writer?.S;
    expect([await read(clientA), await read(clientB)]).toEqual(['b', 'b']);
    clientA.destroy();
    clientB.destroy();
  });

  it('a PUT of one id in both regions at once: one 201, one 409, and one content everywhere', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `race-${i}-${randomUUID()}`);
    const large = (i: number) => i % 2 === 0;
    const bodies = (id: string, i: number, region: string) => (large(i) ? `${region} ${id} `.repeat(60) : `${region} ${id}`);
    const outcomes = await Promise.all(
      ids.map(async (id, i) => {
        const [inA, inB] = await Promise.all([
          call(a.url, 'PUT', `/documents/${id}`, bodies(id, i, 'a')),
          call(b.url, 'PUT', `/documents/${id}`, bodies(id, i, 'b')),
        ]);
        expect([inA.status, inB.status].sort(), id).toEqual([201, 409]);
        return inA.status === 201 ? bodies(id, i, 'a') : bodies(id, i, 'b');
      }),
    );
    await world.replication.settled('items', 'objects');
    for (const [i, id] of ids.entries()) {
      for (const region of [a, b]) {
        const read = await waitFor(`${id} in ${region.name}`, async () => {
          const answer = await call(region.url, 'GET', `/documents/${id}`);
          return answer.status === 200 ? answer : undefined;
        });
        expect(read.body, `${id} in ${region.name}`).toBe(outcomes[i]);
      }
    }
    // The loser's staged object is removed, and its removal replicates: one object per large id in each bucket.
    for (const region of [a, b]) {
      const client = s3(region);
      for (const [i, id] of ids.entries()) {
        const keys = await waitFor(`one object of ${id} in ${region.name}`, async () => {
          await world.replication.settled('objects');
          const { Contents = [] } = await client.send(new ListObjectsV2Command({ Bucket: `documents-${region.name}`, Prefix: `public/${id}/` }));
          return Contents.length === (large(i) ? 1 : 0) ? Contents.map((object) => object.Key) : undefined;
        });
        expect(keys).toHaveLength(large(i) ? 1 : 0);
      }
      client.destroy();
    }
  });

  it('a delete in one region is final in the other within the bound, and the stale reads counted are those the window allowed', async () => {
    const docs = Array.from({ length: 12 }, (_, i) => ({
      id: `final-${i}-${randomUUID()}`,
      body: i % 2 === 0 ? `big ${i} `.repeat(300) : `small ${i}`,
      writer: i % 2 === 0 ? a : b,
      deleter: i % 3 === 0 ? b : a,
    }));
    for (const doc of docs) expect((await call(doc.writer.url, 'PUT', `/documents/${doc.id}`, doc.body)).status).toBe(201);
    // Replicated, then read twice in each region: in its Redis and its process memory.
    for (const doc of docs) {
      for (const region of [a, b]) {
        await waitFor(`${doc.id} in ${region.name}`, async () => ((await call(region.url, 'GET', `/documents/${doc.id}`)).status === 200 ? true : undefined));
        expect((await call(region.url, 'GET', `/documents/${doc.id}`)).status).toBe(200);
      }
    }
    const staleBefore: Record<string, number> = { [PRIMARY]: await metric(a.url, 'document_stale_reads_total'), [SECONDARY]: await metric(b.url, 'document_stale_reads_total') };

    type Sample = { sentAt: number; receivedAt: number; status: number };
    const results = await Promise.all(
      docs.map(async (doc) => {
        const other = doc.deleter === a ? b : a;
        const samples = new Map<TestRegion, Sample[]>([
          [a, []],
          [b, []],
        ]);
        let reading = true;
        const readers = [a, b].map(async (region) => {
          while (reading) {
            const sentAt = Date.now();
            const { status } = await call(region.url, 'GET', `/documents/${doc.id}`);
            samples.get(region)!.push({ sentAt, receivedAt: Date.now(), status });
            if (status !== 200 && status !== 404) throw new Error(`GET ${doc.id} in ${region.name}: ${status}`);
            // A reader per document and region, not a flood: the double shares this process's event loop.
            await sleep(5);
          }
        });
        await sleep(Math.random() * 500);
        const t0 = Date.now();
        const deleted = await call(doc.deleter.url, 'DELETE', `/documents/${doc.id}`);
        const t1 = Date.now();
        expect(deleted.status).toBe(204);
        await sleep(BOUND_MS + 500);
        reading = false;
        await Promise.all(readers);
        const ok = (region: TestRegion) => samples.get(region)!.filter((sample) => sample.status === 200);
        return {
          doc,
          other,
          /** 200s in the deleting region sent after its 204: the contract forbids any. */
          localAfter: ok(doc.deleter).filter((sample) => sample.sentAt > t1).length,
          /** 200s in the other region sent after the 204: stale reads, surely after deletedAt. */
          staleAtLeast: ok(other).filter((sample) => sample.sentAt > t1).length,
          /** 200s in the other region answered after the DELETE was sent: the most that can be after deletedAt. */
          staleAtMost: ok(other).filter((sample) => sample.receivedAt > t0).length,
          lateAfterBound: ok(other).filter((sample) => sample.sentAt > t1 + BOUND_MS).length,
          windowMs: Math.max(0, ...ok(other).filter((sample) => sample.sentAt > t1).map((sample) => sample.receivedAt - t1)),
          reads: samples.get(other)!.length,
        };
      }),
    );
    // Each API instance counts when its region's worker announces the delete: wait until every window has passed.
    const counted = async (region: TestRegion, origin: string) => (await metric(region.url, 'document_stale_reads_total', { origin })) - staleBefore[region.name]!;
    const sum = (other: TestRegion, pick: (result: (typeof results)[number]) => number) =>
      results.filter((result) => result.other === other).reduce((total, result) => total + pick(result), 0);
    const stale: Record<string, number> = { [PRIMARY]: await counted(a, SECONDARY), [SECONDARY]: await counted(b, PRIMARY) };

    report('regions: delete window in the other region, ms after the 204', stats(results.map((result) => result.windowMs)));
    report('regions: stale reads (counted by the service; the window allowed at least..at most)', {
      [PRIMARY]: { counted: stale[PRIMARY], atLeast: sum(a, (r) => r.staleAtLeast), atMost: sum(a, (r) => r.staleAtMost), reads: sum(a, (r) => r.reads) },
      [SECONDARY]: { counted: stale[SECONDARY], atLeast: sum(b, (r) => r.staleAtLeast), atMost: sum(b, (r) => r.staleAtMost), reads: sum(b, (r) => r.reads) },
    });
    for (const result of results) {
      expect(result.localAfter, `${result.doc.id}: 200 in the deleting region after its 204`).toBe(0);
      expect(result.lateAfterBound, `${result.doc.id}: 200 in ${result.other.name} after the bound`).toBe(0);
    }
    for (const region of [a, b]) {
      expect(stale[region.name]).toBeGreaterThanOrEqual(sum(region, (r) => r.staleAtLeast));
      expect(stale[region.name]).toBeLessThanOrEqual(sum(region, (r) => r.staleAtMost));
    }
    // The lag opened a window (reads in it were served, and counted), and the bound closed it.
    expect(sum(a, (r) => r.staleAtLeast) + sum(b, (r) => r.staleAtLeast)).toBeGreaterThan(0);
  });

  it('an Idempotency-Key retried in the other region after the first died mid-request makes one document', { timeout: 60_000 }, async () => {
    const route = 'POST /documents';
    const keyHomedIn = (region: string) => {
      for (;;) {
        const key = `key-${randomUUID()}`;
        if (regionsOf.homeOf(`public#${route}#${key}`) === region) return key;
      }
    };
    const cases = [
      { dies: 'after its claim', key: keyHomedIn(SECONDARY) },
      { dies: 'after its commit, before completing the record', key: keyHomedIn(PRIMARY) },
    ];
    for (const { dies, key } of cases) {
      const body = `idempotent ${key}`;
      const pk = `public#${route}#${key}`;
      const dying = await world.startApi(PRIMARY);
      // Nothing replicates meanwhile: only the key's home can make the retry find the first attempt.
      world.replication.pause('items');
      try {
        world.replication.onWrite = async (write) => {
          const claimed = write.table === 'idempotency-keys' && write.pk === pk && write.input.Item?.status?.S === 'IN_PROGRESS';
          const committed = write.table === 'documents' && write.operation === 'PutItem' && write.input.Item?.checksum?.S === sha256(body);
          if (dies === 'after its claim' ? claimed : committed) await kill(dying.api);
        };
        const first = await call(dying.url, 'POST', '/documents', body, { 'idempotency-key': key }).then(
          (answer) => answer.status,
          () => 'no answer',
        );
        world.replication.onWrite = undefined;
        expect(first, dies).toBe('no answer');

        // The client retries in the other region at once; 409 (with Retry-After) while the dead request's lock lasts.
        let conflicts = 0;
        const created = await waitFor(
          `201 in ${SECONDARY}`,
          async () => {
            const answer = await call(b.url, 'POST', '/documents', body, { 'idempotency-key': key });
            if (answer.status === 201) return answer;
            expect(answer.status, answer.body).toBe(409);
            expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
            conflicts += 1;
            await sleep(200);
            return undefined;
          },
          15_000,
        );
        const id = JSON.parse(created.body).id as string;
        const home = world.regions[regionsOf.homeOf(pk)]!;
        const records = dynamo(home);
        const { Item } = await records.send(new GetItemCommand({ TableName: 'idempotency-keys', Key: { pk: { S: pk } }, ConsistentRead: true }));
        records.destroy();
        expect(Item?.resourceId?.S, dies).toBe(id);
        expect(Item?.status?.S).toBe('COMPLETED');
        report(`regions: Idempotency-Key retried in ${SECONDARY}, first attempt died ${dies}`, { conflicts, home: home.name, documentHome: homeOfDocument(id) });
        for (const region of [a, b]) expect((await call(region.url, 'GET', `/documents/${id}`)).body, region.name).toBe(body);
        const replay = await call(a.url, 'POST', '/documents', body, { 'idempotency-key': key });
        expect(replay.status).toBe(201);
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
        expect(JSON.parse(replay.body).id).toBe(id);
      } finally {
        world.replication.onWrite = undefined;
        world.replication.resume('items');
      }
      await world.replication.settled('items');
      for (const region of [a, b]) {
        const client = dynamo(region);
        const { Items = [] } = await client.send(
          new ScanCommand({ TableName: 'documents', FilterExpression: 'checksum = :checksum', ExpressionAttributeValues: { ':checksum': { S: sha256(body) } } }),
        );
        client.destroy();
        expect(Items.length, `documents with these bytes in ${region.name}`).toBe(1);
      }
    }
  });

  it('content not replicated yet is read from the bucket that has it; 503 with Retry-After when that one is out of reach', async () => {
    const docs = [
      { id: `late-${randomUUID()}`, body: 'read whole and cached '.repeat(100) }, // 2.2 KiB: under DOCUMENT_CACHE_MAX_BYTES
      { id: `late-${randomUUID()}`, body: 'streamed from S3 '.repeat(500) }, // 8.5 KiB: above it, streamed
    ];
    const unreachable = { id: `late-${randomUUID()}`, body: 'only in the first bucket '.repeat(100) };
    world.replication.pause('objects');
    try {
      for (const doc of [...docs, unreachable]) expect((await call(a.url, 'PUT', `/documents/${doc.id}`, doc.body)).status).toBe(201);
      await world.replication.settled('items');
      const before = await metric(b.url, 'document_content_remote_reads_total');
      for (const doc of docs) {
        const read = await call(b.url, 'GET', `/documents/${doc.id}`);
        expect(read.status, doc.id).toBe(200);
        expect(read.body).toBe(doc.body);
      }
      expect(await metric(b.url, 'document_content_remote_reads_total')).toBe(before + docs.length);

      world.replication.cutS3(PRIMARY, true);
      const cut = await call(b.url, 'GET', `/documents/${unreachable.id}`);
      expect(cut.status).toBe(503);
      expect(cut.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(JSON.parse(cut.body).code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      world.replication.cutS3(PRIMARY, false);
      world.replication.resume('objects');
    }
    await world.replication.settled('objects');
    expect((await call(b.url, 'GET', `/documents/${unreachable.id}`)).body).toBe(unreachable.body);
  });

  it('orders stay in the primary: one placed in the other region is in the primary\'s table', async () => {
    const placed = await fetch(`${b.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'CUST-00000013', items: [{ sku: `SKU-${randomUUID().slice(0, 8).toUpperCase()}`, quantity: 1 }] }),
    });
    expect(placed.status).toBe(201);
    const { orderId } = (await placed.json()) as { orderId: string };
    const read = await fetch(`${a.url}/orders/${orderId}`);
    expect(read.status).toBe(200);
    expect(((await read.json()) as { orderId: string }).orderId).toBe(orderId);
  });

  it('a resumable upload created in one region is continued in the other from the bytes stored, and makes one document', async () => {
    const tus = { 'tus-resumable': '1.0.0' };
    const body = 'x'.repeat(3000) + randomUUID();
    const created = await call(a.url, 'POST', '/documents', undefined, { ...tus, 'upload-length': String(body.length), 'upload-metadata': `filetype ${Buffer.from('text/plain').toString('base64')}` });
    expect(created.status).toBe(201);
    const upload = created.headers.get('location')!;
    const append = (url: string, offset: number, piece: string) =>
      call(url, 'PATCH', upload, piece, { ...tus, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' });
    expect((await append(a.url, 0, body.slice(0, 1000))).headers.get('upload-offset')).toBe('1000');
    // The upload is homed where it was created: the other region reads its offset there, at once.
    const head = await call(b.url, 'HEAD', upload, undefined, tus);
    expect(head.status).toBe(200);
    expect(head.headers.get('upload-offset')).toBe('1000');
    const done = await append(b.url, 1000, body.slice(1000));
    expect(done.status).toBe(204);
    expect(done.headers.get('etag')).toBe(`"${sha256(body)}"`);
    const document = done.headers.get('content-location')!;
    for (const region of [b, a]) {
      const read = await waitFor(`${document} in ${region.name}`, async () => {
        const answer = await call(region.url, 'GET', document);
        return answer.status === 200 ? answer : undefined;
      });
      expect(read.body).toBe(body);
    }
  });
  it('retention and legal holds replicate with the metadata: a delete is refused in every region', async () => {
    const until = new Date(Date.now() + 3600_000).toISOString();
    // One id homed in each region, so that each rule is written at either home and read at both.
    const ids = [PRIMARY, SECONDARY].flatMap((home) => {
      for (;;) {
        const id = `keep-${randomUUID()}`;
        if (homeOfDocument(id) === home) return [id];
      }
    });
    for (const [i, id] of ids.entries()) {
      const writer = i === 0 ? b : a; // the region that is not the id's home
      expect((await call(writer.url, 'PUT', `/documents/${id}`, `retained ${id}`, { 'retain-until': until })).status).toBe(201);
      const held = await call(writer.url, 'PUT', `/documents/${id}-held`, `held ${id}`);
      expect(held.status).toBe(201);
      const hold = await call((i === 0 ? a : b).url, 'PUT', `/documents/${id}-held/legal-hold`, JSON.stringify({ status: 'ON' }), { 'content-type': 'application/json' });
      expect(hold.status, hold.body).toBe(200);
    }
    await world.replication.settled('items');
    for (const id of ids) {
      for (const region of [a, b]) {
        const retained = await call(region.url, 'GET', `/documents/${id}/metadata`);
        expect(JSON.parse(retained.body).retainUntil, region.name).toBe(until);
        const held = await call(region.url, 'GET', `/documents/${id}-held/metadata`);
        expect(JSON.parse(held.body).legalHold, region.name).toBe('ON');
        const refused = await call(region.url, 'DELETE', `/documents/${id}`);
        expect([refused.status, JSON.parse(refused.body).code]).toEqual([409, 'DOCUMENT_RETAINED']);
        const onHold = await call(region.url, 'DELETE', `/documents/${id}-held`);
        expect([onHold.status, JSON.parse(onHold.body).code]).toEqual([409, 'DOCUMENT_ON_LEGAL_HOLD']);
      }
    }
  });
  it("publishes a document's events on its home region's topic, whichever region took the request", async () => {
    const sqs = (region: TestRegion) => new SQSClient({ region: region.name, endpoint: region.env.AWS_ENDPOINT_URL, credentials });
    const id = (() => {
      for (;;) {
        const candidate = `evented-${randomUUID()}`;
        if (homeOfDocument(candidate) === PRIMARY) return candidate;
      }
    })();
    // Created and deleted through the other region: both events are the home's.
    expect((await call(b.url, 'PUT', `/documents/${id}`, 'announced')).status).toBe(201);
    expect((await call(b.url, 'DELETE', `/documents/${id}`)).status).toBe(204);
    const watched = async (region: TestRegion, wanted: number) => {
      const client = sqs(region);
      const queueUrl = `${region.env.AWS_ENDPOINT_URL}/000000000000/document-changes-watch`;
      const types: string[] = [];
      try {
        // Until the events wanted came; of none wanted, until the queue is read empty.
        for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
          const { Messages = [] } = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
          for (const message of Messages) {
            const event = JSON.parse(message.Body!) as { subject: string; type: string };
            if (event.subject === id) types.push(event.type);
            await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
          }
          if (wanted > 0 ? types.length >= wanted : Messages.length === 0) break;
          if (Messages.length === 0) await sleep(50);
        }
      } finally {
        client.destroy();
      }
      return types.sort();
    };
    expect(await watched(a, 2)).toEqual(['document.created', 'document.deleted']);
    expect(await watched(b, 0)).toEqual([]);
  });
});
