import {
  CreateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, PutBucketLifecycleConfigurationCommand } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { Config } from '../config.ts';
import type { AwsClients } from '../adapters/aws.ts';
import { DOCUMENT_EVENT_ATTRIBUTES } from '../documents/document-events.ts';
import { Regions } from '../adapters/regions.ts';
import { hasName } from '../errors.ts';

// Every table, bucket, topic and queue the service needs, created
// idempotently. `make dev`, docker compose and the tests all call this; on AWS
// the same shapes live in terraform/.

type Table = { name: string; ttlAttribute: string; input: Omit<CreateTableCommandInput, 'TableName'> };

type Index = NonNullable<CreateTableCommandInput['GlobalSecondaryIndexes']>[number];

/** A sparse index: only the items that carry its hash attribute are in it. */
function sparseIndex(name: string, hash: string, range: string, projection: Index['Projection'] = { ProjectionType: 'KEYS_ONLY' }): Index {
  return {
    IndexName: name,
    KeySchema: [
      { AttributeName: hash, KeyType: 'HASH' },
      { AttributeName: range, KeyType: 'RANGE' },
    ],
    Projection: projection,
  };
}

const byPk = {
  AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' as const }],
  KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' as const }],
  BillingMode: 'PAY_PER_REQUEST' as const,
};

export function tableDefinitions(config: Config): Table[] {
  return [
    {
      name: config.DOCUMENTS_TABLE,
      ttlAttribute: 'deleteAt',
      input: {
        ...byPk,
        AttributeDefinitions: [
          ...byPk.AttributeDefinitions,
          { AttributeName: 'tombstoneShard', AttributeType: 'S' },
          { AttributeName: 'deleteAt', AttributeType: 'N' },
          { AttributeName: 'uploadShard', AttributeType: 'S' },
          { AttributeName: 'expiresAt', AttributeType: 'N' },
          { AttributeName: 'listPk', AttributeType: 'S' },
          { AttributeName: 'listSk', AttributeType: 'S' },
          { AttributeName: 'outboxShard', AttributeType: 'S' },
          { AttributeName: 'outboxSince', AttributeType: 'N' },
        ],
        // Sparse: only tombstones carry tombstoneShard; the content sweeper reads the oldest.
        GlobalSecondaryIndexes: [
          sparseIndex('tombstones', 'tombstoneShard', 'deleteAt'),
          // Sparse too: only resumable uploads that may hold bytes in S3 carry uploadShard;
          // the content sweeper reads those past their expiry.
          sparseIndex('uploads', 'uploadShard', 'expiresAt'),
          // Sparse: active documents carry listPk (their tenant) and listSk (createdAt#id); the
          // listing reads keys here, newest first, and the items from the table.
          sparseIndex('listing', 'listPk', 'listSk'),
          // Sparse: items whose document event is pending; what the relay needs to publish it, and no content.
          sparseIndex('outbox', 'outboxShard', 'outboxSince', { ProjectionType: 'INCLUDE', NonKeyAttributes: [...DOCUMENT_EVENT_ATTRIBUTES] }),
        ],
      },
    },
    { name: config.IDEMPOTENCY_TABLE, ttlAttribute: 'expiresAt', input: byPk },
    { name: config.CONSUMER_TABLE, ttlAttribute: 'expiresAt', input: byPk },
    {
      name: config.ORDERS_TABLE,
      ttlAttribute: 'expiresAt',
      input: {
        ...byPk,
        AttributeDefinitions: [
          ...byPk.AttributeDefinitions,
          { AttributeName: 'outboxShard', AttributeType: 'S' },
          { AttributeName: 'outboxSince', AttributeType: 'N' },
        ],
        // Sparse: only orders whose event is still pending carry outboxShard.
        GlobalSecondaryIndexes: [
          sparseIndex('outbox', 'outboxShard', 'outboxSince', { ProjectionType: 'ALL' }),
        ],
      },
    },
  ];
}

/**
 * The same rule as terraform/modules/region/storage.tf puts on the bucket: the
 * backstop for multipart uploads nobody aborted (a process killed mid-upload,
 * a resumable upload the content sweeper could not end). Longer than the
 * longest life of a resumable upload (UPLOAD_EXPIRY_SECONDS, under 2 days).
 */
export const ABORT_INCOMPLETE_UPLOADS = {
  ID: 'abort-incomplete-multipart-uploads',
  Status: 'Enabled' as const,
  Filter: { Prefix: '' },
  AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 },
};

export function topicNameOf(arn: string): string {
  return arn.split(':').at(-1) ?? arn;
}

/** The tables every region of the document path has (global tables on AWS); the others live in the primary only. */
function isDocumentTable(config: Config, name: string): boolean {
  return name === config.DOCUMENTS_TABLE || name === config.IDEMPOTENCY_TABLE;
}

async function ensureTables(tables: Table[], aws: AwsClients, log: (message: string) => void) {
  for (const table of tables) {
    try {
      await aws.dynamoAdmin.send(new CreateTableCommand({ TableName: table.name, ...table.input }));
      log(`created table ${table.name}`);
    } catch (error) {
      if (!hasName(error, 'ResourceInUseException')) throw error;
    }
    await waitUntilTableExists({ client: aws.dynamoAdmin, maxWaitTime: 60, minDelay: 1 }, { TableName: table.name });
    try {
      await aws.dynamoAdmin.send(
        new UpdateTimeToLiveCommand({
          TableName: table.name,
          TimeToLiveSpecification: { AttributeName: table.ttlAttribute, Enabled: true },
        }),
      );
    } catch {
      // dynalite has no TTL; expiry is checked in conditions anyway, TTL only cleans up.
    }
  }
}

/**
 * The document path of this region: its tables, its bucket and, of several
 * regions, its document-events topic and invalidations queue. A region that
 * is not the primary has nothing else (orders live in the primary).
 */
export async function ensureDocumentResources(config: Config, aws: AwsClients, log: (message: string) => void = () => {}) {
  await ensureTables(tableDefinitions(config).filter((table) => isDocumentTable(config, table.name)), aws, log);
  try {
    await aws.s3.send(new CreateBucketCommand({ Bucket: config.DOCUMENTS_BUCKET }));
    log(`created bucket ${config.DOCUMENTS_BUCKET}`);
  } catch (error) {
    if (!hasName(error, 'BucketAlreadyOwnedByYou', 'BucketAlreadyExists')) throw error;
  }
  // The backstop for uploads nobody aborted (a process killed mid-upload): S3 drops their parts.
  await aws.s3.send(
    new PutBucketLifecycleConfigurationCommand({
      Bucket: config.DOCUMENTS_BUCKET,
      LifecycleConfiguration: { Rules: [ABORT_INCOMPLETE_UPLOADS] },
    }),
  );
  await ensureDocumentChanges(config, aws, log);
  if (new Regions(config).multi) await ensureInvalidationResources(config, aws, log);
}

/** The queue `make watch-events` reads: subscribed to the document-changes topic, for people, not for a consumer. */
export function watchQueueOf(topicArn: string): string {
  return `${topicNameOf(topicArn)}-watch`;
}

/**
 * The topic of document.created and document.deleted; locally also a queue
 * subscribed to it, to watch them (make watch-events). On AWS, subscribers
 * bring their own queues (terraform lets them subscribe).
 */
async function ensureDocumentChanges(config: Config, aws: AwsClients, log: (message: string) => void) {
  const { TopicArn } = await aws.sns.send(new CreateTopicCommand({ Name: topicNameOf(config.DOCUMENT_CHANGES_TOPIC_ARN) }));
  if (TopicArn !== config.DOCUMENT_CHANGES_TOPIC_ARN) {
    throw new Error(`DOCUMENT_CHANGES_TOPIC_ARN is ${config.DOCUMENT_CHANGES_TOPIC_ARN} but the topic is ${TopicArn}`);
  }
  const watch = watchQueueOf(TopicArn);
  // Messages kept an hour: a queue nobody may ever read does not grow without end.
  const queue = await aws.sqs.send(new CreateQueueCommand({ QueueName: watch, Attributes: { MessageRetentionPeriod: '3600' } }));
  await subscribeQueue(aws, TopicArn, queue.QueueUrl!);
  log(`topic ${TopicArn} → queue ${watch} (make watch-events)`);
}

/** A queue subscribed to a topic (raw delivery), with the policy that lets the topic send to it. */
async function subscribeQueue(aws: AwsClients, topicArn: string, queueUrl: string): Promise<void> {
  const arn = await queueArn(aws, queueUrl);
  await aws.sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: queueUrl,
      Attributes: {
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'sns.amazonaws.com' },
              Action: 'sqs:SendMessage',
              Resource: arn,
              Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
            },
          ],
        }),
      },
    }),
  );
  await aws.sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: arn, Attributes: { RawMessageDelivery: 'true' } }));
}

export async function ensureResources(config: Config, aws: AwsClients, log: (message: string) => void = () => {}) {
  await ensureDocumentResources(config, aws, log);
  await ensureTables(tableDefinitions(config).filter((table) => !isDocumentTable(config, table.name)), aws, log);

  const { TopicArn } = await aws.sns.send(new CreateTopicCommand({ Name: topicNameOf(config.ORDER_EVENTS_TOPIC_ARN) }));
  if (TopicArn !== config.ORDER_EVENTS_TOPIC_ARN) {
    throw new Error(`ORDER_EVENTS_TOPIC_ARN is ${config.ORDER_EVENTS_TOPIC_ARN} but the topic is ${TopicArn}`);
  }

  const dlq = await aws.sqs.send(new CreateQueueCommand({ QueueName: config.ORDER_EVENTS_DLQ }));
  const dlqArn = await queueArn(aws, dlq.QueueUrl!);
  const queue = await aws.sqs.send(
    new CreateQueueCommand({
      QueueName: config.ORDER_EVENTS_QUEUE,
      Attributes: {
        VisibilityTimeout: '30',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: config.CONSUMER_MAX_RECEIVES }),
      },
    }),
  );
  const queueUrl = queue.QueueUrl!;
  await subscribeQueue(aws, TopicArn, queueUrl);
  log(`topic ${TopicArn} → queue ${config.ORDER_EVENTS_QUEUE} (dead letters: ${config.ORDER_EVENTS_DLQ})`);
  return { topicArn: TopicArn, queueUrl, dlqUrl: dlq.QueueUrl! };
}

/**
 * Of several regions: this region's document-events topic and its
 * invalidations queue. Subscribing the queue to the other regions' topics
 * crosses regions, which terraform does (and, locally, the test double).
 */
async function ensureInvalidationResources(config: Config, aws: AwsClients, log: (message: string) => void) {
  const { TopicArn } = await aws.sns.send(new CreateTopicCommand({ Name: topicNameOf(config.DOCUMENT_EVENTS_TOPIC_ARN) }));
  if (TopicArn !== config.DOCUMENT_EVENTS_TOPIC_ARN) {
    throw new Error(`DOCUMENT_EVENTS_TOPIC_ARN is ${config.DOCUMENT_EVENTS_TOPIC_ARN} but the topic is ${TopicArn}`);
  }
  const dlq = await aws.sqs.send(new CreateQueueCommand({ QueueName: config.DOCUMENT_INVALIDATIONS_DLQ }));
  await aws.sqs.send(
    new CreateQueueCommand({
      QueueName: config.DOCUMENT_INVALIDATIONS_QUEUE,
      Attributes: {
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: await queueArn(aws, dlq.QueueUrl!), maxReceiveCount: config.CONSUMER_MAX_RECEIVES }),
      },
    }),
  );
  log(`topic ${TopicArn} (this region's deletes); queue ${config.DOCUMENT_INVALIDATIONS_QUEUE} (the other regions')`);
}

async function queueArn(aws: AwsClients, queueUrl: string): Promise<string> {
  const { Attributes } = await aws.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  return Attributes!.QueueArn!;
}
