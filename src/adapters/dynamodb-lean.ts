import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { text } from 'node:stream/consumers';
import aws4 from 'aws4';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { StandardRetryStrategy } from '@smithy/core/retry';
import type { AwsCredentialIdentity } from '@smithy/types';
import { dependencyFailure } from '../errors.ts';
import { traceDynamoCall } from '../telemetry/dynamodb-spans.ts';
import { retryErrorType, translateAwsError } from './aws-errors.ts';
import type {
  BatchGetItemInput,
  CallOptions,
  DynamoDb,
  GetItemInput,
  Item,
  PutItemInput,
  QueryInput,
  QueryOutput,
  UpdateItemInput,
} from './dynamodb.ts';

/** BatchGetItem's most keys in one call. */
const BATCH_GET_KEYS = 100;
/** Rounds for the keys a BatchGetItem leaves unprocessed (throttled): each waits a little longer. */
const BATCH_GET_ROUNDS = 5;

// The AWS SDK v3 spends ~0.9 ms of CPU per DynamoDB call in its middleware
// stack; a signed JSON POST costs ~0.3 ms (bench/README.md has the numbers).
// This client is the DynamoDb port on aws4-signed JSON over node:http, with
// what the SDK would give: its credential chain (Pod Identity on EKS), its
// standard retry strategy (a retry quota, a longer back-off when throttled),
// its error classification, clock-skew correction from the Date header, the
// AWS request id on every error, and timeouts that throw.

export type Operation = 'GetItem' | 'PutItem' | 'UpdateItem' | 'Query' | 'BatchGetItem';

export type LeanDynamoOptions = {
  region: string;
  endpoint?: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  credentials?: () => Promise<AwsCredentialIdentity>;
  /** By default the SDK's standard strategy with `maxAttempts`; tests pass one with a fixed back-off. */
  retryStrategy?: StandardRetryStrategy;
};

type WireItem = Record<string, AttributeValue>;
type WireOutput = {
  Item?: WireItem;
  Attributes?: WireItem;
  Items?: WireItem[];
  Count?: number;
  LastEvaluatedKey?: WireItem;
  Responses?: Record<string, WireItem[]>;
  UnprocessedKeys?: Record<string, { Keys?: WireItem[] }>;
};

/** One failed attempt, shaped as the SDK's service exceptions are, so that its classifiers read it. */
export class DynamoCallError extends Error {
  readonly $fault: 'client' | 'server';
  readonly $metadata: { httpStatusCode?: number; requestId?: string; attempts?: number; clockSkewCorrected?: true };
  /** Defined (the SDK's "retryable" trait) on failures without a whole answer: a reset, a timeout, a garbled body. */
  readonly $retryable: { throttling?: boolean } | undefined;
  readonly code: string | undefined;

  constructor(
    name: string,
    message: string,
    options: { status?: number; requestId?: string; code?: string; noAnswer?: boolean; clockSkewCorrected?: boolean },
  ) {
    super(message);
    this.name = name;
    this.$fault = options.status !== undefined && options.status < 500 ? 'client' : 'server';
    this.$metadata = {
      httpStatusCode: options.status,
      requestId: options.requestId,
      ...(options.clockSkewCorrected ? { clockSkewCorrected: true } : {}),
    };
    this.$retryable = options.noAnswer ? {} : undefined;
    this.code = options.code;
  }
}

const MARSHALLED = ['Item', 'Key', 'ExpressionAttributeValues', 'ExclusiveStartKey'] as const;
type Marshalled = { [F in (typeof MARSHALLED)[number]]?: Item };

/** JSON with binary attributes as base64, as the DynamoDB wire format wants them. */
function encodeBody(input: Marshalled): string {
  const wire: Record<string, unknown> = { ...input };
  for (const field of MARSHALLED) {
    const value = input[field];
    if (value !== undefined) wire[field] = marshall(value, { removeUndefinedValues: true });
  }
  return JSON.stringify(wire, function (this: Record<string, unknown>, key, value) {
    const raw = this[key];
    return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value;
  });
}

/** Binary attributes arrive as base64 strings: bytes again, in place. */
function reviveBinary(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  if ('B' in value && typeof value.B === 'string') value.B = Buffer.from(value.B, 'base64');
  if ('BS' in value && Array.isArray(value.BS)) value.BS = value.BS.map((b: string) => Buffer.from(b, 'base64'));
  if ('L' in value && Array.isArray(value.L)) value.L.forEach(reviveBinary);
  if ('M' in value && typeof value.M === 'object' && value.M !== null) Object.values(value.M).forEach(reviveBinary);
}

function fromWire(item: WireItem): Item {
  Object.values(item).forEach(reviveBinary);
  return unmarshall(item);
}

const AMZ_DATE = /[:-]|\.\d{3}/g;

export class LeanDynamoClient implements DynamoDb {
  private readonly options: LeanDynamoOptions;
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly credentials: () => Promise<AwsCredentialIdentity>;
  private readonly retries: StandardRetryStrategy;
  private cached: { value: AwsCredentialIdentity; until: number } | undefined;
  /** Server time minus ours, from the last answer's Date header; requests are signed with it. */
  private clockOffsetMs = 0;

  constructor(options: LeanDynamoOptions) {
    this.options = options;
    this.url = new URL(options.endpoint ?? `https://dynamodb.${options.region}.amazonaws.com`);
    const agentOptions = { keepAlive: true, maxSockets: 128 };
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.credentials = options.credentials ?? defaultProvider();
    this.retries = options.retryStrategy ?? new StandardRetryStrategy(options.maxAttempts);
  }

  async getItem(input: GetItemInput, options?: CallOptions): Promise<{ Item?: Item }> {
    const { Item } = await this.call('GetItem', input, options);
    return Item ? { Item: fromWire(Item) } : {};
  }

  async putItem(input: PutItemInput, options?: CallOptions): Promise<void> {
    await this.call('PutItem', input, options);
  }

  async updateItem(input: UpdateItemInput, options?: CallOptions): Promise<{ Attributes?: Item }> {
    const { Attributes } = await this.call('UpdateItem', input, options);
    return Attributes ? { Attributes: fromWire(Attributes) } : {};
  }

  async query(input: QueryInput, options?: CallOptions): Promise<QueryOutput> {
    const { Items = [], Count = 0, LastEvaluatedKey } = await this.call('Query', input, options);
    return { Items: Items.map(fromWire), Count, ...(LastEvaluatedKey ? { LastEvaluatedKey: fromWire(LastEvaluatedKey) } : {}) };
  }

  async batchGetItem(input: BatchGetItemInput, options?: CallOptions): Promise<{ Items: Item[] }> {
    const { TableName, Keys, ...request } = input;
    const items: Item[] = [];
    for (let start = 0; start < Keys.length; start += BATCH_GET_KEYS) {
      let keys: WireItem[] = Keys.slice(start, start + BATCH_GET_KEYS).map((key) => marshall(key) as WireItem);
      for (let round = 0; keys.length > 0; round++) {
        if (round === BATCH_GET_ROUNDS) throw dependencyFailure('unavailable', `DynamoDB BatchGetItem: ${keys.length} keys still unprocessed`, undefined);
        if (round > 0) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** round));
        const output = await this.call('BatchGetItem', { RequestItems: { [TableName]: { ...request, Keys: keys } } }, options, TableName);
        items.push(...(output.Responses?.[TableName] ?? []).map(fromWire));
        keys = output.UnprocessedKeys?.[TableName]?.Keys ?? [];
      }
    }
    return { Items: items };
  }

  destroy(): void {
    this.agent.destroy();
  }

  /**
   * The one request path of every operation: a span when tracing is on,
   * then the attempts, retries and the final error translated into the
   * service's codes.
   */
  call(operation: Operation, input: Marshalled & { TableName?: string; RequestItems?: unknown }, options: CallOptions = {}, table = input.TableName ?? ''): Promise<WireOutput> {
    return traceDynamoCall(operation, { TableName: table }, this.options.region, () => this.attempts(operation, input, options));
  }

  private async attempts(operation: Operation, input: Marshalled, options: CallOptions): Promise<WireOutput> {
    const body = encodeBody(input);
    let token = await this.retries.acquireInitialRetryToken('');
    for (let attempt = 1; ; attempt++) {
      try {
        const output = await this.attempt(operation, body, options.abortSignal);
        this.retries.recordSuccess(token);
        return output;
      } catch (error) {
        // The caller's abort and a credential failure are final; only a failed exchange is retried.
        if (!(error instanceof DynamoCallError)) throw error;
        error.$metadata.attempts = attempt;
        try {
          // Waits the back-off; refuses when attempts or the retry quota are used up, or the error is not retryable.
          token = await this.retries.refreshRetryTokenForRetry(token, { errorType: retryErrorType(error) });
        } catch {
          throw translateAwsError(error, `DynamoDB ${operation}`);
        }
      }
    }
  }

  private async attempt(operation: Operation, body: string, signal: AbortSignal | undefined): Promise<WireOutput> {
    const signedWithOffset = this.clockOffsetMs;
    const headers = this.sign(operation, body, await this.credentialsNow(operation));
    const sentAt = Date.now();
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const request = send({
        protocol: this.url.protocol,
        hostname: this.url.hostname,
        port: this.url.port,
        path: '/',
        method: 'POST',
        headers,
        agent: this.agent,
        signal,
      });
      let cutOff: DynamoCallError | undefined;
      const cut = (code: string, ms: number) => () => {
        cutOff = new DynamoCallError('TimeoutError', `no answer within ${ms} ms`, { code, noAnswer: true });
        request.destroy(cutOff);
      };
      // One deadline for the whole exchange, body included.
      const deadline = setTimeout(cut('ETIMEDOUT', this.options.requestTimeoutMs), this.options.requestTimeoutMs);
      const fail = (error: Error & { code?: string }) => {
        clearTimeout(deadline);
        if (cutOff) reject(cutOff);
        else if (error.name === 'AbortError') reject(error);
        // No whole answer (refused, reset, cut mid-body): transient, as for the SDK.
        else reject(new DynamoCallError(error.name, error.message, { code: error.code, noAnswer: true }));
      };
      request.once('socket', (socket) => {
        if (!socket.connecting) return;
        const connect = setTimeout(cut('ECONNTIMEOUT', this.options.connectTimeoutMs), this.options.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(connect));
        socket.once('close', () => clearTimeout(connect));
      });
      request.on('error', fail);
      request.once('response', (response: IncomingMessage) => {
        text(response).then((raw) => {
          clearTimeout(deadline);
          try {
            resolve(this.answer(response, raw, sentAt, signedWithOffset));
          } catch (error) {
            reject(error);
          }
        }, fail);
      });
      request.end(body);
    });
  }

  private answer(response: IncomingMessage, raw: string, sentAt: number, signedWithOffset: number): WireOutput {
    const status = response.statusCode ?? 0;
    const requestId = response.headers['x-amzn-requestid'];
    const id = typeof requestId === 'string' ? requestId : undefined;
    const clockSkewCorrected = this.observeClock(response, sentAt, signedWithOffset);
    let parsed: WireOutput & { __type?: unknown; message?: unknown; Message?: unknown };
    try {
      parsed = JSON.parse(raw || '{}');
    } catch {
      throw new DynamoCallError('InvalidResponse', `HTTP ${status} with a body that is not JSON`, { status, requestId: id, noAnswer: true });
    }
    if (status >= 200 && status < 300) return parsed;
    const name = String(parsed.__type ?? 'UnknownError').split('#').at(-1)!;
    const message = String(parsed.message ?? parsed.Message ?? name);
    throw new DynamoCallError(name, message, { status, requestId: id, clockSkewCorrected });
  }

  /**
   * Records the server's clock, as the SDK does: the offset from every Date
   * header (unless the answer was cached or took over 15 min). True when the
   * skew is large enough to fail signatures (4 min) and the offset now
   * differs from the one this request was signed with (corrected by this
   * answer or by a concurrent one): a retry will be signed right.
   */
  private observeClock(response: IncomingMessage, sentAt: number, signedWithOffset: number): boolean {
    const serverTime = Date.parse(response.headers.date ?? '');
    const received = Date.now();
    if (Number.isNaN(serverTime) || response.headers.age !== undefined || received - sentAt > 900_000) return false;
    this.clockOffsetMs = serverTime - received;
    // The Date header has a resolution of one second.
    return Math.abs(this.clockOffsetMs) >= 240_000 && Math.abs(this.clockOffsetMs - signedWithOffset) >= 1000;
  }

  private sign(operation: Operation, body: string, credentials: AwsCredentialIdentity): Record<string, string> {
    const signed = aws4.sign(
      {
        host: this.url.host,
        path: '/',
        method: 'POST',
        service: 'dynamodb',
        region: this.options.region,
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `DynamoDB_20120810.${operation}`,
          'X-Amz-Date': new Date(Date.now() + this.clockOffsetMs).toISOString().replace(AMZ_DATE, ''),
        },
        body,
      },
      { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken },
    );
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(signed.headers ?? {})) headers[name] = String(value);
    return headers;
  }

  /** Credentials that cannot be had are a dependency down (the credential endpoint), not a bug. */
  private async credentialsNow(operation: Operation): Promise<AwsCredentialIdentity> {
    const now = Date.now();
    if (this.cached && now < this.cached.until) return this.cached.value;
    let value: AwsCredentialIdentity;
    try {
      value = await this.credentials();
    } catch (error) {
      throw dependencyFailure('unavailable', `DynamoDB ${operation}: no credentials: ${String(error)}`, error);
    }
    // Refresh five minutes before expiry; static credentials are kept an hour.
    const until = value.expiration ? value.expiration.getTime() - 5 * 60_000 : now + 3_600_000;
    this.cached = { value, until };
    return value;
  }
}
