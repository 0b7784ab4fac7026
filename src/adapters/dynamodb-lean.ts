import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import aws4 from 'aws4';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsCredentialIdentity } from '@aws-sdk/types';
import { traceDynamoCall } from '../telemetry/dynamodb-spans.ts';

// The AWS SDK v3 spends ~0.9 ms of CPU per DynamoDB call in its middleware
// stack; a signed JSON POST costs ~0.3 ms (bench/README.md has the numbers).
// This client speaks the same commands as @aws-sdk/lib-dynamodb (it reads
// `command.input` of PutCommand, GetCommand, ...), so stores do not know which
// client they hold, with the SDK's credential chain (Pod Identity on EKS),
// its error names, timeouts that throw, and capped retries with full jitter.

export type LeanDynamoOptions = {
  region: string;
  endpoint?: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  credentials?: () => Promise<AwsCredentialIdentity>;
};

type Command = { input: Record<string, unknown>; constructor: { name: string } };
type SendOptions = { abortSignal?: AbortSignal };

const OPERATIONS: Record<string, string> = {
  PutCommand: 'PutItem',
  GetCommand: 'GetItem',
  UpdateCommand: 'UpdateItem',
  DeleteCommand: 'DeleteItem',
  QueryCommand: 'Query',
  ScanCommand: 'Scan',
};
const MARSHALLED_INPUTS = ['Item', 'Key', 'ExpressionAttributeValues', 'ExclusiveStartKey'] as const;
const RETRYABLE = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TransactionConflictException',
]);

export class DynamoCallError extends Error {
  readonly $fault: 'client' | 'server';
  readonly $retryable: boolean;
  readonly code: string | undefined;
  readonly statusCode: number | undefined;

  constructor(name: string, message: string, options: { fault: 'client' | 'server'; retryable: boolean; code?: string; status?: number }) {
    super(message);
    this.name = name;
    this.$fault = options.fault;
    this.$retryable = options.retryable;
    this.code = options.code;
    this.statusCode = options.status;
  }
}

/** JSON with binary attributes as base64, as the DynamoDB wire format wants them. */
function encodeBody(input: Record<string, unknown>): string {
  const wire: Record<string, unknown> = { ...input };
  for (const field of MARSHALLED_INPUTS) {
    if (wire[field] !== undefined) wire[field] = marshall(wire[field] as Record<string, unknown>, { removeUndefinedValues: true });
  }
  return JSON.stringify(wire, function (this: Record<string, unknown>, key, value) {
    const raw = this[key];
    return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value;
  });
}

/** Turns base64 binary attributes of a wire item back into bytes, in place. */
function reviveBinary(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  const attribute = value as Record<string, unknown>;
  if (typeof attribute.B === 'string') attribute.B = Buffer.from(attribute.B, 'base64');
  if (Array.isArray(attribute.BS)) attribute.BS = attribute.BS.map((b: string) => Buffer.from(b, 'base64'));
  if (Array.isArray(attribute.L)) attribute.L.forEach(reviveBinary);
  if (attribute.M) Object.values(attribute.M as object).forEach(reviveBinary);
}

function decodeItem(item: unknown) {
  if (!item) return undefined;
  Object.values(item as object).forEach(reviveBinary);
  return unmarshall(item as never);
}

export class LeanDynamoClient {
  private readonly options: LeanDynamoOptions;
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly credentials: () => Promise<AwsCredentialIdentity>;
  private cached: { value: AwsCredentialIdentity; until: number } | undefined;

  constructor(options: LeanDynamoOptions) {
    this.options = options;
    this.url = new URL(options.endpoint ?? `https://dynamodb.${options.region}.amazonaws.com`);
    const agentOptions = { keepAlive: true, maxSockets: 128 };
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.credentials = options.credentials ?? defaultProvider();
  }

  async send<T = Record<string, any>>(command: Command, options: SendOptions = {}): Promise<T> {
    const operation = OPERATIONS[command.constructor.name];
    if (!operation) throw new Error(`LeanDynamoClient does not speak ${command.constructor.name}`);
    return traceDynamoCall(operation, command.input, this.options.region, () => this.sendOnce<T>(operation, command, options));
  }

  private async sendOnce<T>(operation: string, command: Command, options: SendOptions): Promise<T> {
    const body = encodeBody(command.input);
    for (let attempt = 1; ; attempt++) {
      try {
        const output = await this.call(operation, body, options.abortSignal);
        if (output.Item) output.Item = decodeItem(output.Item);
        if (output.Attributes) output.Attributes = decodeItem(output.Attributes);
        if (output.LastEvaluatedKey) output.LastEvaluatedKey = decodeItem(output.LastEvaluatedKey);
        if (Array.isArray(output.Items)) output.Items = output.Items.map(decodeItem);
        return output as T;
      } catch (error) {
        const retryable = (error as DynamoCallError).$retryable === true;
        if (!retryable || attempt >= this.options.maxAttempts || options.abortSignal?.aborted) throw error;
        // Full jitter: 0..min(1 s, 25 ms × 2^attempt).
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(1000, 25 * 2 ** attempt)));
      }
    }
  }

  destroy(): void {
    this.agent.destroy();
  }

  private async credentialsNow(): Promise<AwsCredentialIdentity> {
    const now = Date.now();
    if (this.cached && now < this.cached.until) return this.cached.value;
    const value = await this.credentials();
    // Refresh five minutes before expiry; static credentials are kept an hour.
    const until = value.expiration ? value.expiration.getTime() - 5 * 60_000 : now + 3_600_000;
    this.cached = { value, until };
    return value;
  }

  private async call(operation: string, body: string, signal: AbortSignal | undefined): Promise<Record<string, any>> {
    const credentials = await this.credentialsNow();
    const signed = aws4.sign(
      {
        host: this.url.host,
        path: '/',
        method: 'POST',
        service: 'dynamodb',
        region: this.options.region,
        headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `DynamoDB_20120810.${operation}` },
        body,
      },
      { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken },
    );
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const request = send({
        protocol: this.url.protocol,
        hostname: this.url.hostname,
        port: this.url.port,
        path: '/',
        method: 'POST',
        headers: signed.headers as Record<string, string>,
        agent: this.agent,
        signal,
      });
      const fail = (name: string, code: string) => () =>
        request.destroy(new DynamoCallError(name, `${operation} ${code}`, { fault: 'server', retryable: true, code }));
      const deadline = setTimeout(fail('TimeoutError', 'ETIMEDOUT'), this.options.requestTimeoutMs);
      request.once('socket', (socket) => {
        if (socket.connecting) {
          const connect = setTimeout(fail('TimeoutError', 'ECONNTIMEOUT'), this.options.connectTimeoutMs);
          socket.once('connect', () => clearTimeout(connect));
          socket.once('close', () => clearTimeout(connect));
        }
      });
      request.once('error', (error: Error & { code?: string }) => {
        clearTimeout(deadline);
        if (error instanceof DynamoCallError || error.name === 'AbortError') reject(error);
        else reject(new DynamoCallError(error.name, error.message, { fault: 'server', retryable: true, code: error.code }));
      });
      request.once('response', (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', reject);
        response.once('end', () => {
          clearTimeout(deadline);
          const status = response.statusCode ?? 500;
          let parsed: Record<string, any>;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString() || '{}');
          } catch {
            parsed = {};
          }
          if (status < 300) return resolve(parsed);
          const name = String(parsed.__type ?? 'UnknownError').split('#').at(-1)!;
          const message = String(parsed.message ?? parsed.Message ?? name);
          reject(new DynamoCallError(name, message, { fault: status >= 500 ? 'server' : 'client', retryable: status >= 500 || RETRYABLE.has(name), status }));
        });
      });
      request.end(body);
    });
  }
}
