import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { INITIAL_RETRY_TOKENS, Retry, StandardRetryStrategy } from '@smithy/core/retry';
import { LeanDynamoClient, type LeanDynamoOptions } from '../../src/adapters/dynamodb-lean.ts';
import { isConditionFailure } from '../../src/adapters/dynamodb.ts';
import { testConfig, uniqueId } from '../support/app.ts';
import { loopLateness } from '../faults/support.ts';

const config = testConfig();
let client: LeanDynamoClient;
const table = config.DOCUMENTS_TABLE;
const credentials = async () => ({ accessKeyId: 'a', secretAccessKey: 'b' });

beforeAll(() => {
  client = new LeanDynamoClient({
    region: config.AWS_REGION,
    endpoint: config.AWS_ENDPOINT_URL_DYNAMODB,
    connectTimeoutMs: 1000,
    requestTimeoutMs: 2000,
    maxAttempts: 2,
  });
});
afterAll(() => client.destroy());

describe('LeanDynamoClient against the DynamoDB emulator', () => {
  it('round-trips binary, nested, numeric and boolean attributes', async () => {
    const pk = uniqueId('lean');
    const item = { pk, bytes: Buffer.from([0, 1, 254, 255]), nested: { list: [1, 'two', { three: true, raw: Buffer.from([7]) }] }, n: 42.5, flag: false };
    await client.putItem({ TableName: table, Item: item });
    const { Item } = await client.getItem({ TableName: table, Key: { pk }, ConsistentRead: true });
    expect(Buffer.from(Item!.bytes as Uint8Array).equals(item.bytes)).toBe(true);
    expect(Item).toMatchObject({ pk, n: 42.5, flag: false });
    expect(Buffer.from((Item!.nested as { list: [number, string, { raw: Uint8Array }] }).list[2].raw)).toEqual(Buffer.from([7]));
  });

  it('returns nothing for a missing item, and attributes on update', async () => {
    const pk = uniqueId('lean');
    expect(await client.getItem({ TableName: table, Key: { pk } })).toEqual({});
    await client.putItem({ TableName: table, Item: { pk, count: 1 } });
    const { Attributes } = await client.updateItem({
      TableName: table,
      Key: { pk },
      UpdateExpression: 'SET #c = #c + :one',
      ExpressionAttributeNames: { '#c': 'count' },
      ExpressionAttributeValues: { ':one': 1 },
      ReturnValues: 'ALL_NEW',
    });
    expect(Attributes).toEqual({ pk, count: 2 });
  });

  it('names a failed condition as DynamoDB does, a client fault that is neither retried nor translated', async () => {
    const pk = uniqueId('lean');
    await client.putItem({ TableName: table, Item: { pk } });
    const error = await client.putItem({ TableName: table, Item: { pk }, ConditionExpression: 'attribute_not_exists(pk)' }).catch((e: unknown) => e);
    expect(isConditionFailure(error)).toBe(true);
    expect(error).toMatchObject({ $fault: 'client', $metadata: { httpStatusCode: 400, attempts: 1 } });
  });

  it('queries an index and decodes every item', async () => {
    const shard = uniqueId('shard');
    for (let i = 0; i < 3; i++) {
      await client.putItem({ TableName: config.ORDERS_TABLE, Item: { pk: uniqueId('o'), outboxShard: shard, outboxSince: i, blob: Buffer.from([i]) } });
    }
    const answer = await client.query({
      TableName: config.ORDERS_TABLE,
      IndexName: 'outbox',
      KeyConditionExpression: 'outboxShard = :s',
      ExpressionAttributeValues: { ':s': shard },
    });
    expect(answer.Count).toBe(3);
    expect(answer.Items.map((item) => item.outboxSince)).toEqual([0, 1, 2]);
    expect(Buffer.from(answer.Items[2]!.blob as Uint8Array)).toEqual(Buffer.from([2]));
  });
});

// dynalite never throttles, fails, skews or resets: a server that answers
// what each test scripts, and records what it was sent.

type Received = { at: number; target: string; amzDate: string; body: string };
type Script = (request: IncomingMessage, response: ServerResponse, index: number) => void;

const scripted: { server: HttpServer; received: Received[]; script: Script }[] = [];

async function scriptedDynamo(script: Script) {
  const state = { received: [] as Received[], script };
  const server = createHttpServer(async (request, response) => {
    let body = '';
    for await (const chunk of request) body += chunk;
    state.received.push({
      at: performance.now(),
      target: String(request.headers['x-amz-target']),
      amzDate: String(request.headers['x-amz-date']),
      body,
    });
    state.script(request, response, state.received.length - 1);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  scripted.push({ server, ...state });
  return { endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`, received: state.received };
}

afterEach(() => {
  for (const { server } of scripted.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

function answer(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `req-${status}-${Math.random().toString(36).slice(2, 8)}`, ...headers });
  response.end(JSON.stringify(body));
}

const fault = (type: string, message = type) => ({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message });
const OK_ITEM = { Item: { pk: { S: 'x' }, n: { N: '1' } } };

/** A back-off without jitter: the delay the SDK's strategy picks as its upper bound, every time. */
function exactBackoff() {
  let base = 0;
  return {
    setDelayBase(delay: number) {
      base = delay;
    },
    computeNextBackoffDelay(retries: number) {
      return base * 2 ** retries;
    },
  };
}

function leanOn(endpoint: string, options: Partial<LeanDynamoOptions> = {}) {
  const lean = new LeanDynamoClient({ region: 'us-east-1', endpoint, connectTimeoutMs: 500, requestTimeoutMs: 1000, maxAttempts: 3, credentials, ...options });
  clients.push(lean);
  return lean;
}
const clients: LeanDynamoClient[] = [];
afterEach(() => {
  for (const lean of clients.splice(0)) lean.destroy();
});

describe('LeanDynamoClient against a scripted DynamoDB', () => {
  it('retries a 5xx, and answers what the retry got', async () => {
    const dynamo = await scriptedDynamo((_request, response, i) =>
      i === 0 ? answer(response, 500, fault('InternalServerError')) : answer(response, 200, OK_ITEM),
    );
    expect(await leanOn(dynamo.endpoint).getItem({ TableName: 't', Key: { pk: 'x' } })).toEqual({ Item: { pk: 'x', n: 1 } });
    expect(dynamo.received.map((r) => r.target)).toEqual(['DynamoDB_20120810.GetItem', 'DynamoDB_20120810.GetItem']);
  });

  it('gives up after maxAttempts as SERVICE_UNAVAILABLE, naming the AWS request id and the attempts', async () => {
    const dynamo = await scriptedDynamo((_request, response) => answer(response, 503, fault('ServiceUnavailable', 'try later'), { 'x-amzn-requestid': 'REQ-42' }));
    const error = await leanOn(dynamo.endpoint).putItem({ TableName: 't', Item: { pk: 'x' } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', statusCode: 503 });
    expect((error as Error).message).toBe('DynamoDB PutItem: ServiceUnavailable: try later (request id REQ-42, 3 attempt(s))');
    expect((error as Error).cause).toMatchObject({ name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503, requestId: 'REQ-42', attempts: 3 } });
    expect(dynamo.received).toHaveLength(3);
  });

  it('carries the AWS request id on a client error, which is not retried', async () => {
    const dynamo = await scriptedDynamo((_request, response) => answer(response, 400, fault('ValidationException', 'bad key'), { 'x-amzn-requestid': 'REQ-7' }));
    const error = await leanOn(dynamo.endpoint).getItem({ TableName: 't', Key: { pk: 'x' } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ValidationException', $fault: 'client', $metadata: { httpStatusCode: 400, requestId: 'REQ-7', attempts: 1 } });
    expect(dynamo.received).toHaveLength(1);
  });

  it('backs off longer when throttled than after a transient failure', async () => {
    // Without jitter the SDK strategy waits its whole base: 1000 ms when throttled, 50 ms otherwise.
    const gapAfter = async (first: (response: ServerResponse) => void) => {
      const dynamo = await scriptedDynamo((_request, response, i) => (i === 0 ? first(response) : answer(response, 200, {})));
      const lean = leanOn(dynamo.endpoint, { retryStrategy: new StandardRetryStrategy({ maxAttempts: 2, backoff: exactBackoff() }) });
      await lean.putItem({ TableName: 't', Item: { pk: 'x' } });
      expect(dynamo.received).toHaveLength(2);
      return dynamo.received[1]!.at - dynamo.received[0]!.at;
    };
    const throttled = await gapAfter((response) => answer(response, 400, fault('ThrottlingException', 'Rate exceeded')));
    const overCapacity = await gapAfter((response) => answer(response, 400, fault('ProvisionedThroughputExceededException')));
    const transient = await gapAfter((response) => answer(response, 500, fault('InternalServerError')));
    // Timers never fire early (5 ms for clock granularity); the transient bound leaves 450 ms for a loaded machine.
    expect(throttled).toBeGreaterThanOrEqual(Retry.throttlingDelay() - 5);
    expect(overCapacity).toBeGreaterThanOrEqual(Retry.throttlingDelay() - 5);
    expect(transient).toBeGreaterThanOrEqual(Retry.delay() - 5);
    expect(transient).toBeLessThan(500);
  });

  it('stops retrying when its retry quota is spent, so an outage does not multiply traffic', async () => {
    const dynamo = await scriptedDynamo((_request, response) => answer(response, 500, fault('InternalServerError')));
    const noWait = { setDelayBase() {}, computeNextBackoffDelay: () => 0 };
    const lean = leanOn(dynamo.endpoint, { retryStrategy: new StandardRetryStrategy({ maxAttempts: 3, backoff: noWait }) });
    const calls = 60;
    for (let i = 0; i < calls; i++) {
      const error = await lean.getItem({ TableName: 't', Key: { pk: 'x' } }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    }
    // 3 attempts each would be 180 requests; the quota allows INITIAL_RETRY_TOKENS / cost retries in all.
    expect(dynamo.received).toHaveLength(calls + Math.floor(INITIAL_RETRY_TOKENS / Retry.cost()));
    expect(dynamo.received.length).toBeLessThan(calls * 2);
  });

  it('corrects its clock from the Date header when a signature is refused as skewed, and retries', async () => {
    const skewMs = 60 * 60_000; // the server's clock runs an hour ahead of ours
    const serverNow = () => Date.now() + skewMs;
    const signedAt = (amzDate: string) => Date.parse(amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
    const dynamo = await scriptedDynamo((request, response) => {
      const headers = { date: new Date(serverNow()).toUTCString() };
      // What DynamoDB does with a request signed more than 5 minutes off its clock.
      if (Math.abs(signedAt(String(request.headers['x-amz-date'])) - serverNow()) > 5 * 60_000) {
        answer(response, 400, fault('InvalidSignatureException', 'Signature expired: 20260101T000000Z is now earlier than ...'), headers);
      } else {
        answer(response, 200, OK_ITEM, headers);
      }
    });
    const lean = leanOn(dynamo.endpoint);
    expect(await lean.getItem({ TableName: 't', Key: { pk: 'x' } })).toEqual({ Item: { pk: 'x', n: 1 } });
    expect(dynamo.received).toHaveLength(2);
    // The retry, and every later call, is signed on the server's clock (the Date header has 1 s resolution).
    await lean.getItem({ TableName: 't', Key: { pk: 'x' } });
    expect(dynamo.received).toHaveLength(3);
    for (const received of dynamo.received.slice(1)) expect(Math.abs(signedAt(received.amzDate) - serverNow())).toBeLessThan(5000);
  });

  it('retries a connection reset in the middle of the answer body', async () => {
    const dynamo = await scriptedDynamo((request, response, i) => {
      if (i > 0) return answer(response, 200, OK_ITEM);
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'content-length': '200' });
      response.write('{"Item":{"pk":');
      setTimeout(() => request.socket.destroy(), 20);
    });
    expect(await leanOn(dynamo.endpoint).getItem({ TableName: 't', Key: { pk: 'x' } })).toEqual({ Item: { pk: 'x', n: 1 } });
    expect(dynamo.received).toHaveLength(2);
  });

  it('retries a garbled 200 answer as a transient failure', async () => {
    const dynamo = await scriptedDynamo((_request, response, i) => {
      if (i > 0) return answer(response, 200, OK_ITEM);
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      response.end('{"Item":');
    });
    expect(await leanOn(dynamo.endpoint).getItem({ TableName: 't', Key: { pk: 'x' } })).toEqual({ Item: { pk: 'x', n: 1 } });
    expect(dynamo.received).toHaveLength(2);
  });

  it("passes the caller's abort through, unretried and untranslated", async () => {
    const dynamo = await scriptedDynamo(() => undefined); // never answers
    const lean = leanOn(dynamo.endpoint, { requestTimeoutMs: 5000 });
    const started = performance.now();
    const error = await lean.getItem({ TableName: 't', Key: { pk: 'x' } }, { abortSignal: AbortSignal.timeout(100) }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(dynamo.received).toHaveLength(1);
    const already = await lean.getItem({ TableName: 't', Key: { pk: 'x' } }, { abortSignal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(already).toMatchObject({ name: 'AbortError' });
    expect(dynamo.received).toHaveLength(1);
  });

  it('answers the same over either transport', async () => {
    const dynamo = await scriptedDynamo((_request, response) => answer(response, 200, OK_ITEM));
    for (const transport of ['undici', 'node:http'] as const) {
      expect(await leanOn(dynamo.endpoint, { transport }).getItem({ TableName: 't', Key: { pk: 'x' } })).toEqual({ Item: { pk: 'x', n: 1 } });
    }
    expect(dynamo.received.map((r) => r.target)).toEqual(['DynamoDB_20120810.GetItem', 'DynamoDB_20120810.GetItem']);
  });

  it('reports credentials that cannot be had as SERVICE_UNAVAILABLE, without sending anything', async () => {
    const dynamo = await scriptedDynamo((_request, response) => answer(response, 200, OK_ITEM));
    const lean = leanOn(dynamo.endpoint, { credentials: () => Promise.reject(new Error('the credential endpoint is down')) });
    const error = await lean.getItem({ TableName: 't', Key: { pk: 'x' } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', statusCode: 503 });
    expect((error as Error).message).toContain('no credentials');
    expect(dynamo.received).toHaveLength(0);
  });
});

describe('LeanDynamoClient against a dead endpoint', () => {
  let blackhole: Server;
  const sockets: Socket[] = [];
  let accepted = 0;
  beforeAll(async () => {
    blackhole = createServer((socket) => {
      accepted++;
      sockets.push(socket);
    });
    blackhole.listen(0, '127.0.0.1');
    await once(blackhole, 'listening');
  });
  afterAll(() => {
    sockets.forEach((socket) => socket.destroy());
    blackhole.close();
  });

  it('times out each attempt, retries up to maxAttempts, and fails as DEPENDENCY_TIMEOUT', async () => {
    const port = (blackhole.address() as { port: number }).port;
    const dead = leanOn(`http://127.0.0.1:${port}`, { connectTimeoutMs: 200, requestTimeoutMs: 200 });
    const lateness = loopLateness();
    const started = performance.now();
    const error = await dead.getItem({ TableName: 't', Key: { pk: 'x' } }).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    const lagMs = lateness.maxMs();
    lateness.stop();
    expect(error).toMatchObject({ code: 'DEPENDENCY_TIMEOUT', statusCode: 503 });
    expect((error as Error).cause).toMatchObject({ name: 'TimeoutError', $metadata: { attempts: 3 } });
    expect(accepted).toBe(3);
    // Three 200 ms deadlines plus back-offs of at most 50 + 100 ms, each of these five timers fired
    // late by at most the event loop's worst lag meanwhile, and 100 ms for the connections themselves.
    expect(elapsed).toBeGreaterThanOrEqual(3 * 200 - 5);
    expect(elapsed).toBeLessThan(3 * 200 + 150 + 100 + 5 * lagMs);
  });

  it('fails fast on a refused connection, as SERVICE_UNAVAILABLE, without waiting for any timeout', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as { port: number }).port;
    closed.close();
    const dead = leanOn(`http://127.0.0.1:${port}`, { connectTimeoutMs: 5000, requestTimeoutMs: 5000, maxAttempts: 3 });
    const started = performance.now();
    const error = await dead.getItem({ TableName: 't', Key: { pk: 'x' } }).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED', $metadata: { attempts: 3 } });
    // Three refused connects (about 1 ms each) and back-offs of at most 50 + 100 ms: "fast" is far below
    // the 5 s timeouts it could have waited for; 1 s leaves 5x margin for a loaded machine.
    expect(elapsed).toBeLessThan(1000);
  });
});
