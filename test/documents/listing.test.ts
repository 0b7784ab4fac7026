import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import type { DynamoDb, QueryOutput } from '../../src/adapters/dynamodb.ts';
import { DocumentStore } from '../../src/documents/document-store.ts';
import { hashApiKey } from '../support/config.ts';
import { testApp, testConfig } from '../support/app.ts';
import { expectProblem } from '../support/problem.ts';
import { ownTenant } from './support.ts';

// GET /documents on the local stack: a tenant of this file's own with a few
// hundred documents, paged through while some are deleted.

const COUNT = 320;
const mine = ownTenant('listing');
const theirs = ownTenant('listing-other');

type Metadata = { id: string; createdAt: string; legalHold: string; size: number };
let app: FastifyInstance;
let aws: AwsClients;
let created: Metadata[] = [];

const list = (query: string, headers = mine.headers) => app.inject({ method: 'GET', url: `/documents${query}`, headers });

/** Every page from the first, `limit` at a time; `between` runs after each page. */
async function pages(limit: number, between: (page: number) => Promise<void> = async () => {}) {
  const seen: Metadata[][] = [];
  let cursor: string | undefined;
  do {
    const answer = await list(`?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(answer.statusCode, answer.body).toBe(200);
    const body = answer.json() as { items: Metadata[]; next?: string };
    expect(body.items.length).toBeLessThanOrEqual(limit);
    seen.push(body.items);
    cursor = body.next;
    await between(seen.length);
  } while (cursor);
  return seen;
}

/** Newest first: by creation time, then by id, as the index orders them. */
const newestFirst = (documents: Metadata[]) => [...documents].sort((a, b) => `${b.createdAt}#${b.id}`.localeCompare(`${a.createdAt}#${a.id}`));

beforeAll(async () => {
  app = await testApp({
    config: {
      ...mine.config,
      API_KEYS: `${mine.config.API_KEYS},${theirs.tenant}:${hashApiKey(theirs.headers.authorization.slice('Bearer '.length))}`,
    },
  });
  aws = createAwsClients(testConfig());
  for (let i = 0; i < COUNT; i += 16) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(16, COUNT - i) }, async (_, j) => {
        const answer = await app.inject({ method: 'POST', url: '/documents', headers: mine.headers, payload: `document ${i + j}` });
        expect(answer.statusCode).toBe(201);
        return answer.json() as Metadata;
      }),
    );
    created.push(...batch);
  }
  created = newestFirst(created);
  const other = await app.inject({ method: 'POST', url: '/documents', headers: theirs.headers, payload: 'not yours' });
  expect(other.statusCode).toBe(201);
}, 120_000);
afterAll(async () => {
  await app?.close();
  aws?.destroy();
});

describe('GET /documents', () => {
  it("pages through every active document of the tenant, newest first, none twice and none of another tenant's", async () => {
    const seen = await pages(37);
    expect(seen.length).toBe(Math.ceil(COUNT / 37));
    expect(seen.flat().map((document) => document.id)).toEqual(created.map((document) => document.id));
    expect(seen.flat()[0]).toEqual(created[0]);
  });

  it('answers 100 by default, and at most 1000', async () => {
    expect((await list('')).json().items).toHaveLength(100);
    const all = (await list('?limit=1000')).json();
    expect(all.items).toHaveLength(COUNT);
    expect(all.next).toBeUndefined();
  });

  it('never lists a document whose DELETE answered, on the pages still to come or in a new listing', async () => {
    const doomed = new Set<string>();
    const seen = await pages(50, async (page) => {
      if (page !== 2) return;
      // Deleted while the client pages: two on pages already read, three on pages to come.
      for (const document of [created[3], created[60], created[120], created[121], created[300]]) {
        expect((await app.inject({ method: 'DELETE', url: `/documents/${document!.id}`, headers: mine.headers })).statusCode).toBe(204);
        doomed.add(document!.id);
      }
    });
    const later = seen.slice(2).flat().map((document) => document.id);
    for (const id of [created[120]!.id, created[121]!.id, created[300]!.id]) expect(later).not.toContain(id);
    const fresh = (await list('?limit=1000')).json().items.map((document: Metadata) => document.id);
    expect(fresh).toEqual(created.map((document) => document.id).filter((id) => !doomed.has(id)));
    created = created.filter((document) => !doomed.has(document.id));
  });

  it("refuses another tenant's cursor, a cursor it never gave, and limits out of bounds, with 400", async () => {
    const next = (await list('?limit=5')).json().next as string;
    expectProblem(await list(`?limit=5&cursor=${next}`, theirs.headers), 400, 'INVALID_CURSOR');
    const forged = Buffer.from(JSON.stringify({ t: theirs.tenant, p: `${mine.tenant}#x`, s: '2026' })).toString('base64url');
    expectProblem(await list(`?cursor=${forged}`, theirs.headers), 400, 'INVALID_CURSOR');
    expectProblem(await list('?cursor=bm90LWpzb24'), 400, 'INVALID_CURSOR');
    expectProblem(await list('?cursor=not%20base64!'), 400, 'VALIDATION_FAILED');
    for (const limit of ['0', '1001', '-1', 'ten', '2.5']) expectProblem(await list(`?limit=${limit}`), 400, 'VALIDATION_FAILED');
    expectProblem(await list('?order=oldest'), 400, 'VALIDATION_FAILED');
    const own = (await list('?limit=1000', theirs.headers)).json();
    expect(own.items.map((document: Metadata) => document.id)).toHaveLength(1);
  });
});

describe('the listing index is eventually consistent (DynamoDB GSIs are; dynalite updates its own at once)', () => {
  it('a page whose index still lists a deleted document leaves it out: the items are read again from the table', async () => {
    const config = testConfig();
    const store = new DocumentStore({ dynamo: aws.dynamo, table: config.DOCUMENTS_TABLE, tombstoneSeconds: 60, region: 'us-east-1' });
    const before = await aws.dynamo.query({
      TableName: config.DOCUMENTS_TABLE,
      IndexName: 'listing',
      KeyConditionExpression: 'listPk = :tenant',
      ExpressionAttributeValues: { ':tenant': mine.tenant },
      ScanIndexForward: false,
      Limit: 3,
    });
    const [first, second] = created;
    expect((await app.inject({ method: 'DELETE', url: `/documents/${first!.id}`, headers: mine.headers })).statusCode).toBe(204);
    // The index as real DynamoDB may still answer for a moment: the page read before the delete.
    const stale: DynamoDb = {
      getItem: (input, options) => aws.dynamo.getItem(input, options),
      putItem: (input, options) => aws.dynamo.putItem(input, options),
      updateItem: (input, options) => aws.dynamo.updateItem(input, options),
      batchGetItem: (input, options) => aws.dynamo.batchGetItem(input, options),
      query: async (input, options): Promise<QueryOutput> => (input.IndexName === 'listing' ? before : aws.dynamo.query(input, options)),
    };
    const page = await new DocumentStore({ dynamo: stale, table: config.DOCUMENTS_TABLE, tombstoneSeconds: 60, region: 'us-east-1' }).list(mine.tenant, 3);
    expect(page.items.map((document) => document.id)).toEqual([second!.id, created[2]!.id]);
    expect(page.next).toBeDefined();
    expect((await store.list(mine.tenant, 3)).items.map((document) => document.id)).toEqual(created.slice(1, 4).map((document) => document.id));
    created = created.slice(1);
  });
});
