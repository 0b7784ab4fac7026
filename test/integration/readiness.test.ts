import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.ts';

// /health/ready is this process's own state: 503 while its event loop is
// stalled (the load-shedding threshold), 200 once it turns again. Storage is
// not asked (test/faults/dynamodb-blackhole.test.ts: ready throughout an outage).

const DELAY_MS = 50;
let app: FastifyInstance;

beforeAll(async () => {
  app = await testApp({ config: { LOAD_SHED_EVENT_LOOP_DELAY_MS: DELAY_MS } });
});
afterAll(async () => {
  await app.close();
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls readiness until `done` holds of an answer, at most `ms`; returns the answers seen. */
async function readinessUntil(done: (status: number, body: { status: string }) => boolean, ms: number) {
  const seen: { status: number; body: { status: string } }[] = [];
  const until = performance.now() + ms;
  while (performance.now() < until) {
    const response = await app.inject({ method: 'GET', url: '/health/ready' });
    seen.push({ status: response.statusCode, body: response.json() });
    if (done(response.statusCode, response.json())) return seen;
    await sleep(10);
  }
  throw new Error(`readiness never matched in ${ms} ms: ${JSON.stringify(seen.slice(-3))}`);
}

describe('readiness', () => {
  it('turns 503 "event loop stalled" after the loop is blocked, and 200 again once it turns', async () => {
    await readinessUntil((status) => status === 200, 5000);
    // Blocked for far longer than the threshold: the 250 ms sample's mean lag exceeds it.
    const blockedUntil = performance.now() + 30 * DELAY_MS;
    while (performance.now() < blockedUntil);
    const stalled = await readinessUntil((status) => status === 503, 2000);
    expect(stalled.at(-1)).toEqual({ status: 503, body: { status: 'event loop stalled' } });
    // The next samples see the loop turning: ready again.
    await readinessUntil((status, body) => status === 200 && body.status === 'ready', 5000);
  });
});
