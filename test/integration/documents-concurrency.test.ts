import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';

// Real clients with a counter in front: how many GetItem calls go to DynamoDB.
let aws: AwsClients;
let app: FastifyInstance;
const getItems: string[] = [];

beforeAll(async () => {
  aws = createAwsClients(testConfig());
  const getItem = aws.dynamo.getItem.bind(aws.dynamo);
  aws.dynamo.getItem = (input, options) => {
    getItems.push(JSON.stringify(input.Key));
    return getItem(input, options);
  };
  app = await testApp({ overrides: { aws } });
});
afterAll(async () => {
  await app.close();
  aws.destroy();
});

describe('concurrency', () => {
  it('50 concurrent POSTs with one Idempotency-Key create exactly one document', async () => {
    const key = uniqueId('key');
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        app.inject({ method: 'POST', url: '/documents', payload: 'contended', headers: { 'idempotency-key': key } }),
      ),
    );
    const created = responses.filter((r) => r.statusCode === 201);
    const others = responses.filter((r) => r.statusCode !== 201);
    expect(created.length).toBeGreaterThan(0);
    for (const r of others) expect(r.json().code).toBe('IDEMPOTENCY_KEY_IN_USE');
    const ids = new Set(created.map((r) => r.json().id));
    expect(ids.size).toBe(1);
    expect(created.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    // The one id is readable, and a later retry still replays it.
    const [id] = ids;
    expect((await app.inject({ method: 'GET', url: `/documents/${id}` })).statusCode).toBe(200);
    const retry = await app.inject({ method: 'POST', url: '/documents', payload: 'contended', headers: { 'idempotency-key': key } });
    expect(retry.json().id).toBe(id);
  });

  it('50 concurrent GETs of a cold id make one DynamoDB read in this process', async () => {
    const id = uniqueId('cold');
    expect((await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: 'cold content' })).statusCode).toBe(201);
    getItems.length = 0;
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => app.inject({ method: 'GET', url: `/documents/${id}` })),
    );
    for (const r of responses) {
      expect(r.statusCode).toBe(200);
      expect(r.body).toBe('cold content');
    }
    const reads = getItems.filter((key) => key.includes(id));
    expect(reads).toHaveLength(1);
  });
});
