import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { LeanDynamoClient } from '../../src/adapters/dynamodb-lean.ts';
import { isConditionFailure, isDependencyFailure } from '../../src/adapters/aws.ts';
import { testConfig, uniqueId } from '../support/app.ts';

const config = testConfig();
let client: LeanDynamoClient;
const table = config.DOCUMENTS_TABLE;

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
    const item = { pk, bytes: Buffer.from([0, 1, 254, 255]), nested: { list: [1, 'two', { three: true }] }, n: 42.5, flag: false };
    await client.send(new PutCommand({ TableName: table, Item: item }));
    const { Item } = await client.send(new GetCommand({ TableName: table, Key: { pk }, ConsistentRead: true }));
    expect(Buffer.from(Item!.bytes as Uint8Array).equals(item.bytes)).toBe(true);
    expect(Item).toMatchObject({ pk, nested: item.nested, n: 42.5, flag: false });
  });

  it('returns nothing for a missing item, and attributes on update', async () => {
    const pk = uniqueId('lean');
    expect((await client.send(new GetCommand({ TableName: table, Key: { pk } }))).Item).toBeUndefined();
    await client.send(new PutCommand({ TableName: table, Item: { pk, count: 1 } }));
    const { Attributes } = await client.send(
      new UpdateCommand({ TableName: table, Key: { pk }, UpdateExpression: 'SET #c = #c + :one', ExpressionAttributeNames: { '#c': 'count' }, ExpressionAttributeValues: { ':one': 1 }, ReturnValues: 'ALL_NEW' }),
    );
    expect(Attributes).toEqual({ pk, count: 2 });
    await client.send(new DeleteCommand({ TableName: table, Key: { pk } }));
    expect((await client.send(new GetCommand({ TableName: table, Key: { pk }, ConsistentRead: true }))).Item).toBeUndefined();
  });

  it('names a failed condition as the SDK does, as a client fault that is not retried', async () => {
    const pk = uniqueId('lean');
    await client.send(new PutCommand({ TableName: table, Item: { pk } }));
    const error = await client
      .send(new PutCommand({ TableName: table, Item: { pk }, ConditionExpression: 'attribute_not_exists(pk)' }))
      .catch((e: unknown) => e);
    expect(isConditionFailure(error)).toBe(true);
    expect(isDependencyFailure(error)).toBe(false);
  });

  it('queries an index and decodes every item', async () => {
    const shard = uniqueId('shard');
    for (let i = 0; i < 3; i++) {
      await client.send(new PutCommand({ TableName: config.ORDERS_TABLE, Item: { pk: uniqueId('o'), outboxShard: shard, outboxSince: i, blob: Buffer.from([i]) } }));
    }
    const { Items } = await client.send(
      new QueryCommand({ TableName: config.ORDERS_TABLE, IndexName: 'outbox', KeyConditionExpression: 'outboxShard = :s', ExpressionAttributeValues: { ':s': shard } }),
    );
    expect(Items!.map((item: Record<string, unknown>) => item.outboxSince)).toEqual([0, 1, 2]);
    expect(Buffer.from(Items![2]!.blob as Uint8Array)).toEqual(Buffer.from([2]));
  });

  it('refuses commands it does not speak, loudly', async () => {
    await expect(client.send(new DescribeTableCommand({ TableName: table }) as never)).rejects.toThrow(/does not speak/);
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

  it('times out each attempt, retries up to maxAttempts, and fails as a dependency failure', async () => {
    const port = (blackhole.address() as { port: number }).port;
    const dead = new LeanDynamoClient({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, connectTimeoutMs: 200, requestTimeoutMs: 200, maxAttempts: 3, credentials: async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }) });
    const started = performance.now();
    const error = await dead.send(new GetCommand({ TableName: 't', Key: { pk: 'x' } })).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    dead.destroy();
    expect(isDependencyFailure(error)).toBe(true);
    expect((error as Error).name).toBe('TimeoutError');
    expect(accepted).toBe(3);
    expect(elapsed).toBeGreaterThanOrEqual(600);
    expect(elapsed).toBeLessThan(600 + 2 * 1000 + 300); // three timeouts plus at most two capped backoffs
  });

  it('fails fast on a refused connection, as a dependency failure', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as { port: number }).port;
    closed.close();
    const dead = new LeanDynamoClient({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, connectTimeoutMs: 200, requestTimeoutMs: 200, maxAttempts: 1, credentials: async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }) });
    const error = await dead.send(new GetCommand({ TableName: 't', Key: { pk: 'x' } })).catch((e: unknown) => e);
    dead.destroy();
    expect(isDependencyFailure(error)).toBe(true);
  });
});
