import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { text } from 'node:stream/consumers';
import { Pool, type Dispatcher } from 'undici';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { StandardRetryStrategy } from '@smithy/core/retry';
import type { AwsCredentialIdentity } from '@smithy/types';
import { dependencyFailure } from '../errors.ts';
import { traceDynamoCall } from '../telemetry/dynamodb-spans.ts';
import { retryErrorType, translateAwsError } from './aws-errors.ts';
import { SigningKeys, signRequest } from './sigv4.ts';
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
// stack; a signed JSON POST over undici costs ~0.1 ms (bench/README.md has
// the numbers). This client is the DynamoDb port on aws4-signed JSON over
// undici (node:http as an option, for the comparison), its signing key a
// KeyObject (sigv4.ts), with
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
  /** The HTTP client underneath: undici (the default), or node:http (bench/dynamodb-transport.ts compares them). */
  transport?: 'undici' | 'node:http';
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

/** What the client reads of an answer. */
type Answer = { status: number; requestId: string | undefined; date: string | undefined; cached: boolean; raw: string };

function answerOf(status: number, headers: Record<string, string | string[] | undefined>, raw: string): Answer {
  const requestId = headers['x-amzn-requestid'];
  const date = headers.date;
  return {
    status,
    requestId: typeof requestId === 'string' ? requestId : undefined,
    date: typeof date === 'string' ? date : undefined,
    cached: headers.age !== undefined,
    raw,
  };
}

/**
 * One HTTP exchange: resolves with a whole answer, of any status; rejects
 * with a DynamoCallError without one (refused, reset, cut mid-body, or
 * past a deadline: connect, or the whole exchange with its body), or with
 * an AbortError when the caller aborts.
 */
interface Transport {
  send(headers: Record<string, string>, body: string, signal: AbortSignal | undefined): Promise<Answer>;
  destroy(): void;
}

type Deadlines = Pick<LeanDynamoOptions, 'connectTimeoutMs' | 'requestTimeoutMs'>;

const MAX_CONNECTIONS = 128;

function timeout(code: 'ETIMEDOUT' | 'ECONNTIMEOUT', ms: number): DynamoCallError {
  return new DynamoCallError('TimeoutError', `no answer within ${ms} ms`, { code, noAnswer: true });
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

/** No whole answer (refused, reset, cut mid-body): transient, as for the SDK. */
function noAnswer(error: Error & { code?: string }): DynamoCallError {
  return new DynamoCallError(error.name, error.message, { code: error.code, noAnswer: true });
}

/**
 * undici's dispatcher, without its streams: the answer's chunks are
 * collected by a handler. A pool of keep-alive connections (TLS for AWS);
 * undici's own connect timeout, and one deadline for the whole exchange,
 * which aborts the request (and so closes its connection).
 */
class UndiciTransport implements Transport {
  private readonly pool: Pool;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;

  constructor(url: URL, deadlines: Deadlines) {
    this.requestTimeoutMs = deadlines.requestTimeoutMs;
    this.connectTimeoutMs = deadlines.connectTimeoutMs;
    // The deadline below covers headers and body: undici's own timeouts are off.
    this.pool = new Pool(url.origin, { connections: MAX_CONNECTIONS, connect: { timeout: deadlines.connectTimeoutMs }, headersTimeout: 0, bodyTimeout: 0 });
  }

  send(headers: Record<string, string>, body: string, signal: AbortSignal | undefined): Promise<Answer> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      let controller: Dispatcher.DispatchController | undefined;
      let failed: Error | undefined;
      let status = 0;
      let answerHeaders: Record<string, string | string[] | undefined> = {};
      const chunks: Buffer[] = [];
      const fail = (error: Error, abort = true) => {
        if (failed) return;
        failed = error;
        clearTimeout(deadline);
        signal?.removeEventListener('abort', onAbort);
        // Closes the connection of a request in flight; one still queued is aborted when it starts.
        if (abort) controller?.abort(error);
        reject(error);
      };
      const onAbort = () => fail(abortError(signal!));
      const deadline = setTimeout(() => fail(timeout('ETIMEDOUT', this.requestTimeoutMs)), this.requestTimeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pool.dispatch(
        { path: '/', method: 'POST', headers, body },
        {
          onRequestStart: (started) => {
            controller = started;
            if (failed) started.abort(failed);
          },
          onResponseStart: (_controller, statusCode, responseHeaders) => {
            status = statusCode;
            answerHeaders = responseHeaders;
          },
          onResponseData: (_controller, chunk) => {
            chunks.push(chunk);
          },
          onResponseEnd: () => {
            if (failed) return;
            clearTimeout(deadline);
            signal?.removeEventListener('abort', onAbort);
            resolve(answerOf(status, answerHeaders, chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString()));
          },
          onResponseError: (_controller, error: Error & { code?: string }) => {
            fail(error.code === 'UND_ERR_CONNECT_TIMEOUT' ? timeout('ECONNTIMEOUT', this.connectTimeoutMs) : noAnswer(error), false);
          },
        },
      );
    });
  }

  destroy(): void {
    void this.pool.destroy();
  }
}

/** node:http(s) with a keep-alive agent: what the client used before undici. */
class NodeHttpTransport implements Transport {
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly deadlines: Deadlines;

  constructor(url: URL, deadlines: Deadlines) {
    this.url = url;
    this.deadlines = deadlines;
    const agentOptions = { keepAlive: true, maxSockets: MAX_CONNECTIONS };
    this.agent = url.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  }

  send(headers: Record<string, string>, body: string, signal: AbortSignal | undefined): Promise<Answer> {
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const { connectTimeoutMs, requestTimeoutMs } = this.deadlines;
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
      const cut = (code: 'ETIMEDOUT' | 'ECONNTIMEOUT', ms: number) => () => {
        cutOff = timeout(code, ms);
        request.destroy(cutOff);
      };
      // One deadline for the whole exchange, body included.
      const deadline = setTimeout(cut('ETIMEDOUT', requestTimeoutMs), requestTimeoutMs);
      const fail = (error: Error & { code?: string }) => {
        clearTimeout(deadline);
        if (cutOff) reject(cutOff);
        else if (error.name === 'AbortError') reject(error);
        else reject(noAnswer(error));
      };
      request.once('socket', (socket) => {
        if (!socket.connecting) return;
        const connect = setTimeout(cut('ECONNTIMEOUT', connectTimeoutMs), connectTimeoutMs);
        socket.once('connect', () => clearTimeout(connect));
        socket.once('close', () => clearTimeout(connect));
      });
      request.on('error', fail);
      request.once('response', (response: IncomingMessage) => {
        text(response).then((raw) => {
          clearTimeout(deadline);
          resolve(answerOf(response.statusCode ?? 0, response.headers, raw));
        }, fail);
      });
      request.end(body);
    });
  }

  destroy(): void {
    this.agent.destroy();
  }
}

const AMZ_DATE = /[:-]|\.\d{3}/g;

export class LeanDynamoClient implements DynamoDb {
  private readonly options: LeanDynamoOptions;
  private readonly url: URL;
  private readonly transport: Transport;
  private readonly credentials: () => Promise<AwsCredentialIdentity>;
  private readonly retries: StandardRetryStrategy;
  private readonly signingKeys = new SigningKeys();
  private cached: { value: AwsCredentialIdentity; until: number } | undefined;
  /** Server time minus ours, from the last answer's Date header; requests are signed with it. */
  private clockOffsetMs = 0;

  constructor(options: LeanDynamoOptions) {
    this.options = options;
    this.url = new URL(options.endpoint ?? `https://dynamodb.${options.region}.amazonaws.com`);
    this.transport = options.transport === 'node:http' ? new NodeHttpTransport(this.url, options) : new UndiciTransport(this.url, options);
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
    this.transport.destroy();
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
    return this.answer(await this.transport.send(headers, body, signal), sentAt, signedWithOffset);
  }

  private answer(response: Answer, sentAt: number, signedWithOffset: number): WireOutput {
    const { status, requestId: id } = response;
    const clockSkewCorrected = this.observeClock(response, sentAt, signedWithOffset);
    let parsed: WireOutput & { __type?: unknown; message?: unknown; Message?: unknown };
    try {
      parsed = JSON.parse(response.raw || '{}');
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
  private observeClock(response: Answer, sentAt: number, signedWithOffset: number): boolean {
    const serverTime = Date.parse(response.date ?? '');
    const received = Date.now();
    if (Number.isNaN(serverTime) || response.cached || received - sentAt > 900_000) return false;
    this.clockOffsetMs = serverTime - received;
    // The Date header has a resolution of one second.
    return Math.abs(this.clockOffsetMs) >= 240_000 && Math.abs(this.clockOffsetMs - signedWithOffset) >= 1000;
  }

  private sign(operation: Operation, body: string, credentials: AwsCredentialIdentity): Record<string, string> {
    const signed = signRequest(
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
      this.signingKeys,
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
