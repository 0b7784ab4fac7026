import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { FaultProxy } from '../support/fault-proxy.ts';
import { testApp, uniqueId } from '../support/app.ts';
import { report } from './support.ts';

// S3 stalls in the middle of an answer: the headers and the first part of a
// document's content arrive, then nothing. The request timeout of the AWS SDK
// ends at the response headers, so only an idle-socket timeout can end such a
// read; without one, GET /documents/{id} would wait forever.

const REQUEST_TIMEOUT_MS = 500;

let proxy: FaultProxy;
let app: FastifyInstance;

beforeAll(async () => {
  proxy = await FaultProxy.start(inject('stackEnv').AWS_ENDPOINT_URL!);
  app = await testApp({ config: { AWS_ENDPOINT_URL_S3: proxy.url(), AWS_REQUEST_TIMEOUT_MS: REQUEST_TIMEOUT_MS, MEMORY_CACHE_MAX_BYTES: 0 } });
});

afterAll(async () => {
  await app?.close();
  await proxy?.close();
});

describe('S3 stalls mid-body', () => {
  it('a read answers 503 + Retry-After after one idle timeout, and reads again once S3 answers', async () => {
    const id = uniqueId('s3-stall');
    const content = Buffer.alloc(1024 * 1024, 'stalled content ');
    expect((await app.inject({ method: 'PUT', url: `/documents/${id}`, payload: content })).statusCode).toBe(201);

    proxy.stallAfter(64 * 1024); // headers and a little of the body, then silence
    const started = performance.now();
    const answer = await Promise.race([
      app.inject({ method: 'GET', url: `/documents/${id}` }),
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 10_000)),
    ]);
    const ms = performance.now() - started;
    report('s3 stall: GET answered after ms (idle timeout)', { ms: Math.round(ms), REQUEST_TIMEOUT_MS });
    expect(answer).not.toBe('hung');
    if (answer === 'hung') return;
    expect(answer.statusCode).toBe(503);
    expect(answer.headers['retry-after']).toBeDefined();
    expect(answer.json().code).toBe('DEPENDENCY_TIMEOUT'); // the body stopped: S3 did not answer in time
    expect(ms).toBeLessThan(REQUEST_TIMEOUT_MS + 500);
    expect(proxy.mode.kind).toBe('blackhole'); // it did stall mid-body

    proxy.pass();
    const read = await app.inject({ method: 'GET', url: `/documents/${id}` });
    expect(read.statusCode).toBe(200);
    expect(read.rawPayload.equals(content)).toBe(true);
  });
});
