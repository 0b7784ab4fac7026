import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
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

/** Readiness answers until `done` holds of one, each asked after `between` has run; at most `tries`. */
async function readinessUntil(done: (status: number, body: { status: string }) => boolean, between: () => Promise<void>, tries: number) {
  const seen: { status: number; body: { status: string } }[] = [];
  for (let i = 0; i < tries; i++) {
    await between();
    const response = await app.inject({ method: 'GET', url: '/health/ready' });
    seen.push({ status: response.statusCode, body: response.json() });
    if (done(response.statusCode, response.json())) return seen;
  }
  throw new Error(`readiness never matched in ${tries} tries: ${JSON.stringify(seen.slice(-3))}`);
}

/** The loop held for 4× the threshold, then let turn once: every 250 ms sample of the lag sees a stall. */
const stall = async () => {
  const until = performance.now() + 4 * DELAY_MS;
  while (performance.now() < until);
  await new Promise((resolve) => setImmediate(resolve));
};
const turn = () => sleep(10);

describe('readiness', () => {
  it('turns 503 "event loop stalled" while the loop is held, and 200 again once it turns', async () => {
    await readinessUntil((status) => status === 200, turn, 500);
    // A stall lasting several samples (a CPU-starved process), not one long block: a single block
    // can fall between two samples of the lag's mean and dilute into it.
    const stalled = await readinessUntil((status) => status === 503, stall, 100);
    expect(stalled.at(-1)).toEqual({ status: 503, body: { status: 'event loop stalled' } });
    // The next samples see the loop turning: ready again.
    await readinessUntil((status, body) => status === 200 && body.status === 'ready', turn, 500);
  });

  it('sheds requests while the loop is held (503 OVERLOADED with Retry-After), never probes or metrics, and serves again once it turns', async () => {
    const read = () => app.inject({ method: 'GET', url: `/documents/${randomUUID()}` });
    // Each try: the loop held, then a read, and the probes and metrics asked in the same state.
    let seen: { read: number; live: number; metrics: number } | undefined;
    let shed: Awaited<ReturnType<typeof read>> | undefined;
    for (let i = 0; i < 100 && !shed; i++) {
      await stall();
      const answer = await read();
      const [live, metrics] = await Promise.all([app.inject({ method: 'GET', url: '/health/live' }), app.inject({ method: 'GET', url: '/metrics' })]);
      seen = { read: answer.statusCode, live: live.statusCode, metrics: metrics.statusCode };
      if (answer.statusCode === 503) shed = answer;
    }
    expect(shed, `never shed: ${JSON.stringify(seen)}`).toBeDefined();
    expect(shed!.json()).toMatchObject({ status: 503, code: 'OVERLOADED' });
    expect(shed!.headers['retry-after']).toBeDefined();
    expect(seen).toMatchObject({ live: 200, metrics: 200 });
    // Once the loop turns again, the same read is answered (404: no such document).
    let after = 0;
    for (let i = 0; i < 500 && after !== 404; i++) {
      await turn();
      after = (await read()).statusCode;
    }
    expect(after).toBe(404);
  });
});
