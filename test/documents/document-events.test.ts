import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import { DeleteMessageBatchCommand, GetQueueUrlCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { FastifyInstance } from 'fastify';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { ensureDocumentResources, watchQueueOf } from '../../src/bootstrap/resources.ts';
import type { Config } from '../../src/config.ts';
import { DocumentEventPublisher, documentEventId, documentOutbox, type DocumentEvent } from '../../src/documents/document-events.ts';
import { DocumentStore } from '../../src/documents/document-store.ts';
import { OutboxRelay } from '../../src/outbox/outbox-relay.ts';
import { testApp, testConfig } from '../support/app.ts';
import { drain } from '../support/outbox.ts';
import { DEAD_ENDPOINT, silentLog } from '../orders/support.ts';
import { eventually } from './support.ts';

// document.created and document.deleted, as a subscriber receives them: the
// queue `make dev` subscribes to the topic (raw delivery). A table, bucket,
// topic and queue of this file's own, so that its relay publishes only its
// events and its queue receives only them.

type Received = { event: DocumentEvent; attributes: Record<string, string> };

let config: Config;
let aws: AwsClients;
let app: FastifyInstance;
let queueUrl: string;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  const suffix = randomUUID().slice(0, 8);
  config = testConfig({
    DOCUMENTS_TABLE: `documents-events-${suffix}`,
    DOCUMENTS_BUCKET: `documents-events-${suffix}`,
    DOCUMENT_CHANGES_TOPIC_ARN: `arn:aws:sns:us-east-1:000000000000:document-changes-${suffix}`,
    INLINE_CONTENT_MAX_BYTES: 1024,
  });
  aws = createAwsClients(config);
  await ensureDocumentResources(config, aws);
  queueUrl = (await aws.sqs.send(new GetQueueUrlCommand({ QueueName: watchQueueOf(config.DOCUMENT_CHANGES_TOPIC_ARN) }))).QueueUrl!;
  app = await appWith({});
});
afterAll(async () => {
  await Promise.all(apps.map((each) => each.close()));
  aws?.destroy();
});

async function appWith(overrides: Parameters<typeof testConfig>[0]) {
  const created = await testApp({
    config: {
      DOCUMENTS_TABLE: config.DOCUMENTS_TABLE,
      DOCUMENTS_BUCKET: config.DOCUMENTS_BUCKET,
      DOCUMENT_CHANGES_TOPIC_ARN: config.DOCUMENT_CHANGES_TOPIC_ARN,
      INLINE_CONTENT_MAX_BYTES: 1024,
      ...overrides,
    },
  });
  apps.push(created);
  return created;
}

/** Receives (and deletes) until `count` messages came, or `timeoutMs` passed. */
async function receive(count: number, timeoutMs = 15_000): Promise<Received[]> {
  const received: Received[] = [];
  const deadline = Date.now() + timeoutMs;
  while (received.length < count && Date.now() < deadline) {
    const { Messages = [] } = await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
    for (const message of Messages) {
      const attributes = Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue ?? '']));
      received.push({ event: JSON.parse(message.Body!) as DocumentEvent, attributes });
    }
    if (Messages.length > 0) {
      await aws.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    } else {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return received;
}

/** Until the API's own publications are marked: nothing pending in this region's outbox. */
async function settled(): Promise<void> {
  const outbox = documentOutbox(aws.dynamo, config.DOCUMENTS_TABLE, config.AWS_REGION);
  const backlog = await eventually(() => outbox.backlog(), (found) => found.count === 0);
  expect(backlog.count).toBe(0);
}

const relay = (region = config.AWS_REGION) =>
  new OutboxRelay({
    name: 'documents',
    store: documentOutbox(aws.dynamo, config.DOCUMENTS_TABLE, region),
    publisher: new DocumentEventPublisher({ sns: aws.sns, topicArn: config.DOCUMENT_CHANGES_TOPIC_ARN }),
    log: silentLog,
    batchSize: 25,
    graceMs: 0,
    leaseMs: 10_000,
    intervalMs: 50,
  });

/** The CloudEvent of a created document, as its 201 described it. */
function createdAs(metadata: Record<string, unknown> & { id: string; createdAt: string }): DocumentEvent {
  return {
    specversion: '1.0',
    id: documentEventId('public', metadata.id, 'document.created'),
    type: 'document.created',
    source: '/documents',
    subject: metadata.id,
    time: metadata.createdAt,
    datacontenttype: 'application/json',
    tenant: 'public',
    data: metadata as DocumentEvent['data'],
  };
}

describe('document events', () => {
  it('publishes document.created and document.deleted, as committed, with type and tenant to filter on', async () => {
    const inline = await app.inject({ method: 'PUT', url: `/documents/${randomUUID()}`, headers: { 'content-type': 'text/plain' }, payload: 'small' });
    const large = await app.inject({
      method: 'POST',
      url: '/documents',
      headers: { 'content-type': 'application/pdf', 'retain-until': '2031-01-01T00:00:00.000Z' },
      payload: randomBytes(5000),
    });
    expect([inline.statusCode, large.statusCode]).toEqual([201, 201]);
    const gone = inline.json().id as string;
    expect((await app.inject({ method: 'DELETE', url: `/documents/${gone}` })).statusCode).toBe(204);

    const received = await receive(3);
    expect(received).toHaveLength(3);
    const byType = (type: string) => received.filter(({ event }) => event.type === type);
    const created = byType('document.created').map(({ event }) => event);
    expect(created.sort((a, b) => a.subject.localeCompare(b.subject))).toEqual(
      [createdAs(inline.json()), createdAs(large.json())].sort((a, b) => a.subject.localeCompare(b.subject)),
    );
    const [deleted] = byType('document.deleted');
    expect(deleted!.event).toMatchObject({
      specversion: '1.0',
      id: documentEventId('public', gone, 'document.deleted'),
      source: '/documents',
      subject: gone,
      tenant: 'public',
      data: { id: gone, deletedAt: deleted!.event.time },
    });
    expect(Date.parse(deleted!.event.time)).toBeGreaterThanOrEqual(Date.parse(inline.json().createdAt));
    for (const { event, attributes } of received) expect(attributes).toMatchObject({ type: event.type, tenant: 'public' });

    // Published by the API itself: nothing is left for the relay.
    await settled();
    expect(await drain(relay())).toEqual({ claimed: 0, published: 0, failed: 0 });
  });

  it('loses none while SNS is down: the answers are 201 and 204, and the relay publishes the events after', async () => {
    const down = await appWith({ AWS_ENDPOINT_URL_SNS: DEAD_ENDPOINT });
    const created = await down.inject({ method: 'POST', url: '/documents', payload: randomBytes(3000) });
    const doomed = await down.inject({ method: 'POST', url: '/documents', payload: 'doomed' });
    expect([created.statusCode, doomed.statusCode]).toEqual([201, 201]);
    expect((await down.inject({ method: 'DELETE', url: `/documents/${doomed.json().id}` })).statusCode).toBe(204);

    const metrics = (await down.inject({ method: 'GET', url: '/metrics' })).body;
    expect(Number(/^outbox_pending_events\{outbox="documents"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(3);
    // Nothing reaches the topic meanwhile (a second of quiet: what was not sent cannot arrive late).
    expect(await receive(1, 1000)).toEqual([]);

    expect(await drain(relay())).toEqual({ claimed: 3, published: 3, failed: 0 });
    const received = await receive(3);
    expect(received.map(({ event }) => event.id).sort()).toEqual(
      [
        documentEventId('public', created.json().id, 'document.created'),
        documentEventId('public', doomed.json().id, 'document.created'),
        documentEventId('public', doomed.json().id, 'document.deleted'),
      ].sort(),
    );
    expect(received.find(({ event }) => event.subject === created.json().id)!.event).toEqual(createdAs(created.json()));
    expect(await drain(relay())).toEqual({ claimed: 0, published: 0, failed: 0 });
  });

  it('a repeated DELETE publishes the same event again, with the same id: a duplicate, never a second deletion', async () => {
    const created = await app.inject({ method: 'POST', url: '/documents', payload: 'twice' });
    expect(await receive(1)).toHaveLength(1);
    const id = created.json().id as string;
    for (let i = 0; i < 2; i++) expect((await app.inject({ method: 'DELETE', url: `/documents/${id}` })).statusCode).toBe(204);
    const received = await receive(2);
    expect(received.length).toBeGreaterThanOrEqual(1);
    // Both DELETEs answered 204; each sent the one deletion it recorded: the same event, whole.
    for (const { event } of received) expect(event).toEqual({ ...received[0]!.event, id: documentEventId('public', id, 'document.deleted') });
    await settled();
  });

  it('with DOCUMENT_EVENTS=off publishes none and leaves nothing pending', async () => {
    const quiet = await appWith({ DOCUMENT_EVENTS: 'off' });
    const created = await quiet.inject({ method: 'POST', url: '/documents', payload: 'unannounced' });
    expect(created.statusCode).toBe(201);
    expect((await quiet.inject({ method: 'DELETE', url: `/documents/${created.json().id}` })).statusCode).toBe(204);
    expect(await drain(relay())).toEqual({ claimed: 0, published: 0, failed: 0 });
    expect(await receive(1, 1000)).toEqual([]);
  });

  it("leaves a document homed in another region to that region's relay", async () => {
    const elsewhere = new DocumentStore({ dynamo: aws.dynamo, table: config.DOCUMENTS_TABLE, tombstoneSeconds: 60, region: 'eu-west-1' });
    const id = randomUUID();
    const metadata = { id, status: 'ACTIVE' as const, contentType: 'text/plain', size: 4, checksum: '0'.repeat(64), createdAt: new Date().toISOString(), legalHold: 'OFF' as const };
    expect(await elsewhere.create('public', metadata, { content: Buffer.from('away') }, { now: Date.now() })).toMatchObject({ outcome: 'created' });
    expect(await drain(relay())).toEqual({ claimed: 0, published: 0, failed: 0 });
    expect(await drain(relay('eu-west-1'))).toEqual({ claimed: 1, published: 1, failed: 0 });
    expect((await receive(1)).map(({ event }) => event)).toEqual([createdAs(metadata)]);
  });
});
