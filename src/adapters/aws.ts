import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Config } from '../config.ts';
import { traceAwsCalls } from '../telemetry/aws-spans.ts';
import { LeanDynamoClient } from './dynamodb-lean.ts';

/** What the stores need of DynamoDB: lib-dynamodb's commands, sent. */
export type DocumentDb = { send: DynamoDBDocumentClient['send'] };

export type AwsClients = {
  /** Data plane, on the lean client (see dynamodb-lean.ts for why). */
  dynamo: DocumentDb;
  /** Control plane (tables, waiters) for the bootstrap, on the SDK. */
  dynamoAdmin: DynamoDBClient;
  /** S3 for small content, on the request path: short deadlines, a stall fails fast. */
  s3: S3Client;
  /** S3 for content in bulk (multipart uploads, streamed downloads): deadlines per part, not per document. */
  s3Transfer: S3Client;
  sns: SNSClient;
  sqs: SQSClient;
  destroy(): void;
};

type Service = 'DYNAMODB' | 'S3' | 'SNS' | 'SQS';

function endpointFor(config: Config, service: Service): string | undefined {
  return config[`AWS_ENDPOINT_URL_${service}`] ?? config.AWS_ENDPOINT_URL;
}

/**
 * One keep-alive connection pool per service and timeouts that really fail a
 * call: the SDK only logs a request timeout unless told to throw. Retries use
 * the SDK's standard strategy (exponential backoff, full jitter, retry quota).
 */
function baseOptions(config: Config, service: Service, options: { socketTimeoutMs?: number; requestTimeoutMs?: number } = {}) {
  const agentOptions = { keepAlive: true, maxSockets: 128 };
  const endpoint = endpointFor(config, service);
  return {
    region: config.AWS_REGION,
    maxAttempts: config.AWS_MAX_ATTEMPTS,
    ...(endpoint ? { endpoint } : {}),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: config.AWS_CONNECT_TIMEOUT_MS,
      requestTimeout: options.requestTimeoutMs ?? config.AWS_REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
      // requestTimeout ends with the response headers: a body that stops half-way needs an idle timeout.
      ...(options.socketTimeoutMs ? { socketTimeout: options.socketTimeoutMs } : {}),
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    }),
  };
}

export function createAwsClients(config: Config): AwsClients {
  const lean = new LeanDynamoClient({
    region: config.AWS_REGION,
    endpoint: endpointFor(config, 'DYNAMODB'),
    connectTimeoutMs: config.AWS_CONNECT_TIMEOUT_MS,
    requestTimeoutMs: config.AWS_REQUEST_TIMEOUT_MS,
    maxAttempts: config.AWS_MAX_ATTEMPTS,
  });
  const dynamoAdmin = new DynamoDBClient(baseOptions(config, 'DYNAMODB'));
  // Document content streams from S3; SQS long polls are idle on purpose, so only S3 gets the idle timeout.
  const s3 = new S3Client({
    ...baseOptions(config, 'S3', { socketTimeoutMs: config.AWS_REQUEST_TIMEOUT_MS }),
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
  });
  // A 5 MiB part, or a download paced by a slow client, needs more than one hot-path deadline.
  const s3Transfer = new S3Client({
    ...baseOptions(config, 'S3', { socketTimeoutMs: config.S3_TRANSFER_TIMEOUT_MS, requestTimeoutMs: config.S3_TRANSFER_TIMEOUT_MS }),
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
  });
  const sns = new SNSClient(baseOptions(config, 'SNS'));
  // Queue URLs of emulators name hosts that do not resolve; the SDK's own
  // endpoint for the region is right everywhere.
  const sqs = new SQSClient({ ...baseOptions(config, 'SQS'), useQueueUrlAsEndpoint: false });
  // A span per call when tracing is on (src/telemetry); nothing otherwise.
  traceAwsCalls(dynamoAdmin, 'DynamoDB');
  traceAwsCalls(s3, 'S3');
  traceAwsCalls(s3Transfer, 'S3');
  traceAwsCalls(sns, 'SNS');
  traceAwsCalls(sqs, 'SQS');
  return {
    dynamo: lean as unknown as DocumentDb,
    dynamoAdmin,
    s3,
    s3Transfer,
    sns,
    sqs,
    destroy() {
      lean.destroy();
      dynamoAdmin.destroy();
      s3.destroy();
      s3Transfer.destroy();
      sns.destroy();
      sqs.destroy();
    },
  };
}

/** Whether an error means "a dependency failed" (retry later) rather than "our bug". */
export function isDependencyFailure(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { name?: string; code?: string; $fault?: string; $retryable?: unknown; $metadata?: unknown };
  if (e.$fault === 'server' || e.$retryable) return true;
  if (e.name && ['TimeoutError', 'RequestTimeout', 'AbortError', 'ThrottlingException',
    'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'InternalServerError',
    'ServiceUnavailable', 'SlowDown'].includes(e.name)) return true;
  return typeof e.code === 'string' && /^(ECONN|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|ENETUNREACH|ERR_SOCKET|UND_ERR)/.test(e.code);
}

export function isConditionFailure(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}
