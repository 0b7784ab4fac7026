import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { CredentialsProviderError } from '@smithy/core/config';
import { createAwsClients, type AwsClients } from '../../src/adapters/aws.ts';
import { DocumentCache } from '../../src/documents/document-cache.ts';
import { expectProblem } from '../support/problem.ts';
import { testApp, testConfig, uniqueId } from '../support/app.ts';

// AWS failures are translated where the AWS clients are (src/adapters), into
// the service's codes; the HTTP layer maps codes only.

const noCredentials = () => Promise.reject(new CredentialsProviderError('Could not load credentials from any providers'));
const clients: AwsClients[] = [];
const apps: FastifyInstance[] = [];
afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  for (const aws of clients) aws.destroy();
});

async function appWith(aws: AwsClients, overrides: Parameters<typeof testApp>[0] = {}) {
  const app = await testApp({ ...overrides, overrides: { aws, ...overrides.overrides } });
  apps.push(app);
  return app;
}
function awsClients(options: Parameters<typeof createAwsClients>[1] = {}) {
  const aws = createAwsClients(testConfig(), options);
  clients.push(aws);
  return aws;
}

describe('credentials that cannot be had', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appWith(awsClients({ credentials: noCredentials }));
  });

  it.each([
    ['GET /documents/{id}', { method: 'GET' as const, url: `/documents/${uniqueId()}` }],
    ['PUT /documents/{id}', { method: 'PUT' as const, url: `/documents/${uniqueId()}`, payload: 'x', headers: { 'content-type': 'text/plain' } }],
    ['POST /orders', { method: 'POST' as const, url: '/orders', payload: '{"customerId":"CUST-00000001","items":[{"sku":"SKU-1","quantity":1}]}', headers: { 'content-type': 'application/json' } }],
  ])('%s: 503 SERVICE_UNAVAILABLE with Retry-After, not a 500', async (_name, request) => {
    const response = await app.inject(request);
    expectProblem(response, 503, 'SERVICE_UNAVAILABLE');
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('through the SDK (S3) as well as the lean DynamoDB client', async () => {
    const good = awsClients();
    const failing = awsClients({ credentials: noCredentials });
    const withoutS3 = await appWith({ ...good, s3: failing.s3, s3Transfer: failing.s3Transfer });
    // Over INLINE_CONTENT_MAX_BYTES: the content goes to S3 first.
    const response = await withoutS3.inject({ method: 'PUT', url: `/documents/${uniqueId()}`, payload: Buffer.alloc(20_000, 1) });
    expectProblem(response, 503, 'SERVICE_UNAVAILABLE');
  });
});

describe('the HTTP layer maps codes only', () => {
  it('an AWS-shaped error that reached it untranslated is a bug: 500, not a guessed 503', async () => {
    const awsLike = Object.assign(new Error('ServiceUnavailable'), { name: 'ServiceUnavailable', $fault: 'server', $retryable: {} });
    const app = await appWith(awsClients(), {
      overrides: {
        documentCache: (options) =>
          Object.assign(new DocumentCache(options), {
            lookup: async () => {
              throw awsLike;
            },
          }),
      },
    });
    expectProblem(await app.inject({ method: 'GET', url: `/documents/${uniqueId()}` }), 500, 'INTERNAL_ERROR');
  });
});
