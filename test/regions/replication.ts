import { once } from 'node:events';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';

/**
 * The one stand-in for AWS in the multi-region tests: it joins two (or
 * more) local stacks as if they were regions of one deployment.
 *
 * - Table items, as a DynamoDB global table in MREC mode (the default,
 *   eventually consistent) does: every write to a replicated table is
 *   seen by a proxy in front of its region's emulator, and after `lag.items`
 *   the item as it then is (or its absence: a delete) is written to the
 *   other regions, last writer wins per item, so that concurrent writes of
 *   one item in two regions converge to the later one everywhere, and the
 *   earlier one is lost without either writer hearing of it.
 * - Objects, as S3 Replication between the regions' buckets does (with
 *   delete-marker replication on, as terraform sets it): a PutObject or a
 *   completed multipart upload, and a DeleteObject, are carried after
 *   `lag.objects`.
 * - Events, as an SNS topic in one region with subscribed SQS queues in the
 *   others does: what a region publishes on its document-events topic
 *   reaches the other regions' invalidation queues after `lag.events`.
 *
 * What the real services do differently: global tables replicate every
 * write in order per item, from DynamoDB Streams, with the writing region's
 * timestamp deciding conflicts inside the replica atomically; this double
 * replicates the item's state when the lag has passed (intermediate states
 * may be skipped, the final one is the same) and orders writes by when the
 * proxy saw their answers, a check not atomic with a concurrent local write
 * of the same item. Real lag is not a constant: ReplicationLatency is
 * usually under a second, has no SLA, and grows without bound while a
 * region is cut off (pause() models that); items of a transaction are not
 * replicated together, and writes to different items may arrive in another
 * order (they do here too, by timers). MRSC tables, which this service does
 * not use, would make a conditional write see the other regions' writes
 * synchronously. S3 Replication is usually seconds, 15 minutes for 99.99%
 * of objects with Replication Time Control, never replicates a version
 * delete, and replicates delete markers only when told to. SNS retries
 * delivery to a queue of another region for days; here a message is handed
 * over once its lag has passed.
 */

export type Channel = 'items' | 'objects' | 'events';

export type ReplicatedRegion = {
  name: string;
  /** The emulators of its local stack. */
  dynamodbUrl: string;
  awsUrl: string;
  bucket: string;
  /** Its document-events topic, and its queue that the other regions' topics deliver to. */
  topicArn: string;
  invalidationsQueue: string;
};

/** A write to a replicated table, as the proxy saw it, before its answer goes back. */
export type ObservedWrite = { region: string; table: string; operation: string; pk: string; input: Record<string, any> };

const DYNAMODB_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

type Clients = { dynamo: DynamoDBClient; s3: S3Client; sqs: SQSClient; sns: SNSClient };

export class Replication {
  readonly lag: Record<Channel, number>;
  /** Called for every write to a replicated table before its answer is sent: a test can crash the writer there. */
  onWrite: ((write: ObservedWrite) => Promise<void> | void) | undefined;
  private readonly regions: ReplicatedRegion[];
  private readonly tables: Set<string>;
  private readonly clients = new Map<string, Clients>();
  private readonly proxies = new Map<string, { dynamodb: string; s3: string }>();
  private readonly servers: Server[] = [];
  /** Per region: the order (see `sequence`) of the last write each item or object got there. */
  private readonly lastWrite = new Map<string, Map<string, number>>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly gates = new Map<Channel, Promise<void>>();
  private readonly opened = new Map<Channel, () => void>();
  private sequence = 0;
  private readonly pending: Record<Channel, number> = { items: 0, objects: 0, events: 0 };
  private idle: { channels: readonly Channel[]; resolve: () => void }[] = [];
  private readonly down = new Set<string>();
  private stopped = false;
  private taps: Promise<void>[] = [];
  /** Items, objects and events handed over, per channel. */
  readonly carried: Record<Channel, number> = { items: 0, objects: 0, events: 0 };

  private constructor(regions: ReplicatedRegion[], tables: string[], lag: Record<Channel, number>) {
    this.regions = regions;
    this.tables = new Set(tables);
    this.lag = lag;
  }

  static async start(regions: ReplicatedRegion[], options: { tables: string[]; lag: Record<Channel, number> }): Promise<Replication> {
    const replication = new Replication(regions, options.tables, { ...options.lag });
    for (const region of regions) {
      replication.lastWrite.set(region.name, new Map());
      const common = { region: region.name, credentials };
      replication.clients.set(region.name, {
        dynamo: new DynamoDBClient({ ...common, endpoint: region.dynamodbUrl }),
        s3: new S3Client({ ...common, endpoint: region.awsUrl, forcePathStyle: true }),
        sqs: new SQSClient({ ...common, endpoint: region.awsUrl, useQueueUrlAsEndpoint: false }),
        sns: new SNSClient({ ...common, endpoint: region.awsUrl }),
      });
      replication.proxies.set(region.name, {
        dynamodb: await replication.listen(region.dynamodbUrl, (incoming, body, answer) => replication.dynamodb(region, incoming, body, answer)),
        s3: await replication.listen(
          region.awsUrl,
          (incoming, _body, answer) => replication.s3(region, incoming, answer),
          () => replication.down.has(region.name),
        ),
      });
    }
    return replication;
  }

  /** The endpoints a region's processes use for DynamoDB and S3: the proxies that see their writes. */
  endpoints(region: string): { dynamodb: string; s3: string } {
    const endpoints = this.proxies.get(region);
    if (!endpoints) throw new Error(`no region ${region}`);
    return endpoints;
  }

  /** Subscribes a tap queue to every region's topic; needs the topics and queues to exist (the bootstrap). */
  async tapEvents(): Promise<void> {
    for (const region of this.regions) {
      const { sqs, sns } = this.clients.get(region.name)!;
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'replication-tap' }));
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
      await sns.send(
        new SubscribeCommand({ TopicArn: region.topicArn, Protocol: 'sqs', Endpoint: Attributes!.QueueArn!, Attributes: { RawMessageDelivery: 'true' } }),
      );
      this.taps.push(this.forwardEvents(region, QueueUrl!));
    }
  }

  /** Holds a channel's hand-overs until resume(): a region cut off from the others. */
  pause(channel: Channel): void {
    if (this.gates.has(channel)) return;
    this.gates.set(channel, new Promise((resolve) => this.opened.set(channel, resolve)));
  }

  resume(channel: Channel): void {
    this.opened.get(channel)?.();
    this.opened.delete(channel);
    this.gates.delete(channel);
  }

  /** Resolves once every write seen so far on these channels has been carried (events: once handed to the tap's poll). */
  settled(...channels: Channel[]): Promise<void> {
    const of = channels.length > 0 ? channels : (['items', 'objects', 'events'] as const);
    if (of.every((channel) => this.pending[channel] === 0)) return Promise.resolve();
    return new Promise((resolve) => this.idle.push({ channels: of, resolve }));
  }

  /** A region's S3 answers nobody (its connections are dropped) until set back: the other regions cannot read its bucket. */
  cutS3(region: string, cut: boolean): void {
    if (cut) this.down.add(region);
    else this.down.delete(region);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const channel of ['items', 'objects', 'events'] as const) this.resume(channel);
    await Promise.allSettled(this.taps);
    await Promise.all(
      this.servers.map((server) => {
        server.closeAllConnections();
        return new Promise((resolve) => server.close(resolve));
      }),
    );
    for (const clients of this.clients.values()) for (const client of Object.values(clients)) client.destroy();
  }

  // ------------------------------------------------------------ proxies

  /**
   * A proxy to `upstream` that sees each request and its answer before the
   * answer goes back. Bodies are held whole: the tests' documents are small.
   */
  private async listen(
    upstream: string,
    observe: (incoming: IncomingMessage, body: Buffer, answer: Answer) => Promise<void>,
    isDown: () => boolean = () => false,
  ): Promise<string> {
    const server = createServer((incoming, outgoing) => {
      if (isDown()) return void outgoing.destroy();
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => {
        const body = Buffer.concat(chunks);
        forward(upstream, incoming, body)
          .then(async (answer) => {
            await observe(incoming, body, answer);
            if (outgoing.destroyed) return;
            outgoing.writeHead(answer.status, answer.headers);
            outgoing.end(answer.body);
          })
          .catch(() => outgoing.destroy());
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  private async dynamodb(region: ReplicatedRegion, incoming: IncomingMessage, body: Buffer, answer: Answer) {
    const operation = String(incoming.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    if (answer.status !== 200 || !DYNAMODB_WRITES.has(operation)) return;
    const input = JSON.parse(body.toString()) as Record<string, any>;
    const pk: unknown = (input.Item ?? input.Key)?.pk?.S;
    if (!this.tables.has(input.TableName) || typeof pk !== 'string') return;
    const key = `${input.TableName}\0${pk}`;
    const order = this.record(region.name, key);
    await this.onWrite?.({ region: region.name, table: input.TableName, operation, pk, input });
    this.carry('items', key, () => this.copyItem(region, input.TableName, pk, key, order));
  }

  private async s3(region: ReplicatedRegion, incoming: IncomingMessage, answer: Answer) {
    const url = new URL(incoming.url ?? '/', 'http://s3');
    const [, bucket, ...rest] = url.pathname.split('/');
    const objectKey = rest.map((part) => decodeURIComponent(part)).join('/');
    if (bucket !== region.bucket || !objectKey || answer.status >= 300) return;
    const query = url.searchParams;
    const written =
      (incoming.method === 'PUT' && !query.has('uploadId') && !query.has('partNumber') && !incoming.headers['x-amz-copy-source']) ||
      (incoming.method === 'POST' && query.has('uploadId')) ||
      (incoming.method === 'DELETE' && !query.has('uploadId'));
    if (!written) return;
    const key = `s3\0${objectKey}`;
    const order = this.record(region.name, key);
    this.carry('objects', key, () => this.copyObject(region, objectKey, key, order));
  }

  // ------------------------------------------------------------ replication

  private record(region: string, key: string): number {
    const order = ++this.sequence;
    this.lastWrite.get(region)!.set(key, order);
    return order;
  }

  /** After the channel's lag (and while it is not paused), runs `copy`, one at a time per key. */
  private carry(channel: Channel, key: string, copy: () => Promise<void>) {
    this.pending[channel] += 1;
    const run = async () => {
      await new Promise((resolve) => setTimeout(resolve, this.lag[channel]));
      while (this.gates.has(channel)) await this.gates.get(channel);
      if (this.stopped) return;
      const previous = this.chains.get(key) ?? Promise.resolve();
      const next = previous.then(copy, copy);
      this.chains.set(key, next);
      await next;
      if (this.chains.get(key) === next) this.chains.delete(key);
      this.carried[channel] += 1;
    };
    run()
      .catch((error: unknown) => console.error(`[replication] ${channel} ${key}:`, error))
      .finally(() => {
        this.pending[channel] -= 1;
        const waiting = this.idle;
        this.idle = [];
        for (const waiter of waiting) {
          if (waiter.channels.every((each) => this.pending[each] === 0)) waiter.resolve();
          else this.idle.push(waiter);
        }
      });
  }

  /** Regions that get a write of `key` made in `source` as `order`: those whose own last write of it is older. */
  private targets(source: ReplicatedRegion, key: string, order: number): ReplicatedRegion[] {
    return this.regions.filter((region) => {
      if (region === source) return false;
      const last = this.lastWrite.get(region.name)!;
      if ((last.get(key) ?? 0) > order) return false; // last writer wins
      last.set(key, order);
      return true;
    });
  }

  private async copyItem(source: ReplicatedRegion, table: string, pk: string, key: string, order: number) {
    const Key = { pk: { S: pk } };
    const { Item } = await this.clients.get(source.name)!.dynamo.send(new GetItemCommand({ TableName: table, Key, ConsistentRead: true }));
    for (const target of this.targets(source, key, order)) {
      const { dynamo } = this.clients.get(target.name)!;
      if (Item) await dynamo.send(new PutItemCommand({ TableName: table, Item }));
      else await dynamo.send(new DeleteItemCommand({ TableName: table, Key }));
    }
  }

  private async copyObject(source: ReplicatedRegion, objectKey: string, key: string, order: number) {
    let object: { body: Uint8Array; contentType: string | undefined } | undefined;
    try {
      const { Body, ContentType } = await this.clients.get(source.name)!.s3.send(new GetObjectCommand({ Bucket: source.bucket, Key: objectKey }));
      object = { body: await Body!.transformToByteArray(), contentType: ContentType };
    } catch (error) {
      if ((error as { name?: string }).name !== 'NoSuchKey') throw error;
    }
    for (const target of this.targets(source, key, order)) {
      const { s3 } = this.clients.get(target.name)!;
      if (object) await s3.send(new PutObjectCommand({ Bucket: target.bucket, Key: objectKey, Body: object.body, ContentType: object.contentType }));
      else await s3.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: objectKey }));
    }
  }

  private async forwardEvents(source: ReplicatedRegion, tapUrl: string) {
    const { sqs } = this.clients.get(source.name)!;
    while (!this.stopped) {
      const { Messages = [] } = await sqs
        .send(new ReceiveMessageCommand({ QueueUrl: tapUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }))
        .catch(() => ({ Messages: [] }));
      for (const message of Messages) {
        this.carry('events', `event\0${message.MessageId}`, async () => {
          for (const target of this.regions.filter((region) => region !== source)) {
            const queue = this.clients.get(target.name)!.sqs;
            const { QueueUrl } = await queue.send(new GetQueueUrlCommand({ QueueName: target.invalidationsQueue }));
            await queue.send(new SendMessageCommand({ QueueUrl, MessageBody: message.Body! }));
          }
        });
        await sqs.send(new DeleteMessageCommand({ QueueUrl: tapUrl, ReceiptHandle: message.ReceiptHandle! })).catch(() => {});
      }
    }
  }
}

type Answer = { status: number; headers: IncomingHttpHeaders; body: Buffer };

/** Sends the request on to the emulator as it came, and reads the whole answer. */
function forward(upstream: string, incoming: IncomingMessage, body: Buffer): Promise<Answer> {
  const target = new URL(upstream);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      { host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: Buffer.concat(chunks) }));
        answer.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}
