import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { DocumentCache } from '../../src/documents/document-cache.ts';
import { hashApiKey } from '../support/config.ts';
import { testApp, uniqueId } from '../support/app.ts';

// "No stack traces or internal messages in any response": what a bug or a
// dependency failure says stays in the log; the client gets the generic
// problem of its code, with the request id to quote.

const TENANT = `internal-${randomUUID().slice(0, 8)}`;
const API_KEY = `internal-key-${randomUUID()}`;
const auth = { authorization: `Bearer ${API_KEY}` };
const SECRET = `secret-${randomUUID()}`;
const config = { AUTH_MODE: 'api-key', API_KEYS: `${TENANT}:${hashApiKey(API_KEY)}`, RATE_LIMIT_PER_MINUTE: 100_000 };

const INTERNALS = [/\bat .*:\d+:\d+/, /node_modules/, /Error:/, /\.[cm]?[jt]s\b/, /ECONN|ETIMEDOUT|EPIPE/, /127\.0\.0\.1|localhost/, /dynamo|redis|s3|sns/i];

function expectGeneric(response: LightMyRequestResponse, status: number, code: string, detail: string) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = response.json();
  expect(Object.keys(body).sort()).toEqual(['code', 'detail', 'requestId', 'status', 'title', 'type']);
  expect(body).toMatchObject({ status, code, detail });
  expect(body.requestId).toBe(response.headers['x-request-id']);
  expect(response.body).not.toContain(SECRET);
  for (const internal of INTERNALS) expect(response.body, String(internal)).not.toMatch(internal);
}

describe('a bug answers 500 INTERNAL_ERROR and says nothing of it', () => {
  const thrown: [string, () => unknown][] = [
    ['an Error with an internal message', () => new Error(`${SECRET} at /srv/app/src/documents/document-cache.ts:12:7`)],
    ['a TypeError', () => new TypeError(`Cannot read properties of undefined (reading '${SECRET}')`)],
    ['an Error carrying a 500 status and a code', () => Object.assign(new Error(SECRET), { statusCode: 500, code: 'E_SECRET' })],
    ['a string', () => SECRET],
    ['an object', () => ({ message: SECRET, stack: `Error: ${SECRET}\n    at x (/srv/node_modules/y.js:1:2)` })],
  ];
  let app: FastifyInstance;
  let next: () => unknown = () => new Error(SECRET);

  beforeAll(async () => {
    app = await testApp({
      config,
      overrides: {
        documentCache: (options) =>
          Object.assign(new DocumentCache(options), {
            lookup: async () => {
              throw next();
            },
          }),
        orderIntake: {
          afterWrite: () => {
            throw next();
          },
        },
      },
    });
  });
  afterAll(async () => {
    await app.close();
  });

  it.each(thrown)('%s thrown while reading a document', async (_name, error) => {
    next = error;
    for (const url of [`/documents/${uniqueId()}`, `/documents/${uniqueId()}/metadata`]) {
      expectGeneric(await app.inject({ method: 'GET', url, headers: auth }), 500, 'INTERNAL_ERROR', 'An unexpected error occurred');
    }
    const head = await app.inject({ method: 'HEAD', url: `/documents/${uniqueId()}`, headers: auth });
    expect(head.statusCode).toBe(500);
    expect(head.body).toBe('');
  });

  it.each(thrown)('%s thrown while accepting an order', async (_name, error) => {
    next = error;
    const order = { customerId: `CUST-${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`, items: [{ sku: 'SKU-1001', quantity: 1 }] };
    const response = await app.inject({ method: 'POST', url: '/orders', headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify(order) });
    expectGeneric(response, 500, 'INTERNAL_ERROR', 'An unexpected error occurred');
  });
});

describe('a dependency down answers 503 with Retry-After and says nothing of it', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    // Nothing listens on port 9: DynamoDB refuses every connection.
    app = await testApp({ config: { ...config, AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: 1, AWS_CONNECT_TIMEOUT_MS: 200 } });
  });
  afterAll(async () => {
    await app.close();
  });

  type Call = { method: 'GET' | 'PUT' | 'POST' | 'DELETE'; url: string; payload?: string; headers?: Record<string, string> };
  it.each<[string, Call]>([
    ['GET /documents/{id}', { method: 'GET', url: `/documents/${uniqueId()}` }],
    ['PUT /documents/{id}', { method: 'PUT', url: `/documents/${uniqueId()}`, payload: 'x', headers: { 'content-type': 'text/plain' } }],
    ['POST /documents with a key', { method: 'POST', url: '/documents', payload: 'x', headers: { 'content-type': 'text/plain', 'idempotency-key': uniqueId() } }],
    ['DELETE /documents/{id}', { method: 'DELETE', url: `/documents/${uniqueId()}` }],
    ['POST /orders', { method: 'POST', url: '/orders', payload: JSON.stringify({ customerId: 'CUST-00000001', items: [{ sku: 'SKU-1', quantity: 1 }] }), headers: { 'content-type': 'application/json' } }],
    ['GET /orders/{orderId}', { method: 'GET', url: '/orders/01900000-0000-7000-8000-000000000000' }],
  ])('%s', async (_name, request) => {
    const response = await app.inject({ ...request, headers: { ...auth, ...request.headers } });
    expectGeneric(response, 503, 'SERVICE_UNAVAILABLE', 'A dependency is unavailable; retry later');
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('GET /health names the component, not the error', async () => {
    const response = await app.inject({ method: 'GET', url: '/health' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ status: 'unhealthy', storage: 'down' });
    for (const internal of INTERNALS.slice(0, 6)) expect(response.body, String(internal)).not.toMatch(internal);
  });
});
