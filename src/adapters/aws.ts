import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { HttpRequest } from '@smithy/core/transport';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentity, BuildHandler, HandlerExecutionContext, InitializeHandler } from '@smithy/types';
import type { Config } from '../config.ts';
import { traceAwsCalls } from '../telemetry/aws-spans.ts';
import { translateAwsError } from './aws-errors.ts';
import type { DynamoDb } from './dynamodb.ts';
import { LeanDynamoClient } from './dynamodb-lean.ts';
import { Sha256 } from './sigv4.ts';

export type AwsClients = {
  /** Data plane, on the lean client (see dynamodb-lean.ts for why). */
  dynamo: DynamoDb;
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
function baseOptions(config: Config, service: Service, options: ClientOptions & { socketTimeoutMs?: number; requestTimeoutMs?: number } = {}) {
  const agentOptions = { keepAlive: true, maxSockets: 128 };
  const endpoint = endpointFor(config, service);
  return {
    region: config.AWS_REGION,
    maxAttempts: config.AWS_MAX_ATTEMPTS,
    ...(endpoint ? { endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    // Signatures without a Buffer key: see sigv4.ts.
    sha256: Sha256,
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

/** What a test may change: credentials that fail, for one. */
export type ClientOptions = { credentials?: () => Promise<AwsCredentialIdentity> };

/**
 * The final error of every call of a data-plane SDK client leaves it as the
 * service's coded error (aws-errors.ts). In the outermost step, so that the
 * SDK's retries still see its own errors.
 */
function serviceErrors(service: string) {
  return <Input extends object, Output extends object>(next: InitializeHandler<Input, Output>, context: HandlerExecutionContext) =>
    async (args: Parameters<InitializeHandler<Input, Output>>[0]) => {
      try {
        return await next(args);
      } catch (error) {
        throw translateAwsError(error, `${service} ${context.commandName?.replace(/Command$/, '') ?? ''}`);
      }
    };
}
const SERVICE_ERRORS = { step: 'initialize', priority: 'high', name: 'serviceErrors' } as const;

/**
 * Uploads of content are signed without a SHA-256 of their body
 * (UNSIGNED-PAYLOAD, which S3 accepts for PutObject and UploadPart): the SDK
 * would otherwise hash every part it sends, a second SHA-256 of every byte
 * uploaded next to the content checksum the service computes anyway. Their
 * integrity in transit is the CRC32 checksum each of them carries
 * (s3-multipart.ts), which S3 checks before it stores the bytes, and TLS.
 */
const UNSIGNED_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);
function unsignedContentUploads<Input extends object, Output extends object>(next: BuildHandler<Input, Output>, context: HandlerExecutionContext) {
  return (args: Parameters<BuildHandler<Input, Output>>[0]) => {
    const { request } = args;
    if (UNSIGNED_COMMANDS.has(context.commandName ?? '') && HttpRequest.isInstance(request)) {
      request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    }
    return next(args);
  };
}

export function createAwsClients(config: Config, options: ClientOptions = {}): AwsClients {
  const lean = new LeanDynamoClient({
    region: config.AWS_REGION,
    endpoint: endpointFor(config, 'DYNAMODB'),
    connectTimeoutMs: config.AWS_CONNECT_TIMEOUT_MS,
    requestTimeoutMs: config.AWS_REQUEST_TIMEOUT_MS,
    maxAttempts: config.AWS_MAX_ATTEMPTS,
    ...options,
  });
  const dynamoAdmin = new DynamoDBClient(baseOptions(config, 'DYNAMODB', options));
  // Document content streams from S3; SQS long polls are idle on purpose, so only S3 gets the idle timeout.
  const s3 = new S3Client({
    ...baseOptions(config, 'S3', { ...options, socketTimeoutMs: config.AWS_REQUEST_TIMEOUT_MS }),
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
  });
  // A 5 MiB part, or a download paced by a slow client, needs more than one hot-path deadline.
  const s3Transfer = new S3Client({
    ...baseOptions(config, 'S3', { ...options, socketTimeoutMs: config.S3_TRANSFER_TIMEOUT_MS, requestTimeoutMs: config.S3_TRANSFER_TIMEOUT_MS }),
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
  });
  const sns = new SNSClient(baseOptions(config, 'SNS', options));
  // Queue URLs of emulators name hosts that do not resolve; the SDK's own
  // endpoint for the region is right everywhere.
  const sqs = new SQSClient({ ...baseOptions(config, 'SQS', options), useQueueUrlAsEndpoint: false });
  s3.middlewareStack.add(serviceErrors('S3'), SERVICE_ERRORS);
  s3Transfer.middlewareStack.add(serviceErrors('S3'), SERVICE_ERRORS);
  s3Transfer.middlewareStack.add(unsignedContentUploads, { step: 'build', name: 'unsignedContentUploads' });
  sns.middlewareStack.add(serviceErrors('SNS'), SERVICE_ERRORS);
  sqs.middlewareStack.add(serviceErrors('SQS'), SERVICE_ERRORS);
  // A span per call when tracing is on (src/telemetry); nothing otherwise.
  traceAwsCalls(dynamoAdmin, 'DynamoDB');
  traceAwsCalls(s3, 'S3');
  traceAwsCalls(s3Transfer, 'S3');
  traceAwsCalls(sns, 'SNS');
  traceAwsCalls(sqs, 'SQS');
  return {
    dynamo: lean,
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
