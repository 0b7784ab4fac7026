import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { randomInt } from 'node:crypto';
import { freePort } from '../../src/local/emulators.ts';
import { FaultProxy } from '../support/fault-proxy.ts';
import { assertBuilt, CALL_DEADLINE_MS, callSlackMs, kill, loopLateness, report, SHORT_AWS_DEADLINES, sleep, startServer, type ServerProcess } from './support.ts';

// Readiness is the pod's own (issue 20, item 2): the built API process, whose
// DynamoDB goes away behind a proxy, stays ready (so that the load balancer
// keeps sending it clients instead of answering 502 for every pod at once),
// answers each write 503 DEPENDENCY_TIMEOUT + Retry-After within one call's
// deadline, and serves again once DynamoDB returns.

let proxy: FaultProxy;
let server: ServerProcess | undefined;
let port: number;

beforeAll(async () => {
  assertBuilt();
  proxy = await FaultProxy.start(inject('stackEnv').AWS_ENDPOINT_URL_DYNAMODB!);
  port = await freePort();
  const env = Object.fromEntries(Object.entries(SHORT_AWS_DEADLINES).map(([key, value]) => [key, String(value)]));
  // Readiness here is about storage; its own stall threshold is off, so that a CPU-starved run (a busy
  // machine) is not read as the outage's doing (test/integration/readiness.test.ts tests the stall).
  server = await startServer({ ...inject('stackEnv'), ...env, LOAD_SHED_EVENT_LOOP_DELAY_MS: '0', AWS_ENDPOINT_URL_DYNAMODB: proxy.url() }, port);
}, 60_000);

afterAll(async () => {
  if (server) await kill(server);
  await proxy?.close();
});

const url = (path: string) => `http://127.0.0.1:${port}${path}`;

async function order(): Promise<{ status: number; code?: string; retryAfter: string | null; ms: number }> {
  const startedAt = performance.now();
  const response = await fetch(url('/orders'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ customerId: `CUST-${String(randomInt(0, 100_000_000)).padStart(8, '0')}`, items: [{ sku: 'SKU-READY', quantity: 1 }] }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await response.json()) as { code?: string };
  return { status: response.status, code: body.code, retryAfter: response.headers.get('retry-after'), ms: performance.now() - startedAt };
}

const readiness = async () => (await fetch(url('/health/ready'), { signal: AbortSignal.timeout(5000) })).status;

async function storage(): Promise<string> {
  const response = await fetch(url('/health'), { signal: AbortSignal.timeout(5000) });
  return ((await response.json()) as { storage: string }).storage;
}

/** The child's worst event-loop lag since the last scrape, in ms (prom-client's default metric, reset by each scrape). */
async function childLagMs(): Promise<number> {
  const text = await (await fetch(url('/metrics'))).text();
  const line = text.split('\n').find((l) => l.startsWith('nodejs_eventloop_lag_max_seconds '));
  return line ? Number(line.split(' ')[1]) * 1000 : 0;
}

describe('an API process whose DynamoDB goes away', () => {
  it('stays ready, answers writes 503 + Retry-After within one call deadline, and serves again when DynamoDB returns', { timeout: 90_000 }, async () => {
    const lateness = loopLateness();
    expect((await order()).status).toBe(201);
    expect(await readiness()).toBe(200);
    await childLagMs(); // a scrape resets the child's histogram: what follows measures this run, not its start

    proxy.blackhole();
    const blackholedAt = performance.now();
    const readinessSeen: number[] = [];
    const refused: Awaited<ReturnType<typeof order>>[] = [];
    let downAfterMs: number | undefined;
    // Until /health has seen the outage and a few writes have met it.
    while (downAfterMs === undefined || refused.length < 5) {
      if (performance.now() - blackholedAt > 30_000) throw new Error(`outage not seen in 30 s: ${refused.length} refused, /health after ${downAfterMs} ms`);
      refused.push(await order());
      readinessSeen.push(await readiness());
      if (downAfterMs === undefined && (await storage()) === 'down') downAfterMs = performance.now() - blackholedAt;
    }

    proxy.pass();
    const passedAt = performance.now();
    let servedAfterMs: number | undefined;
    while (servedAfterMs === undefined) {
      if (performance.now() - passedAt > 20_000) throw new Error('no write succeeded within 20 s of DynamoDB returning');
      readinessSeen.push(await readiness());
      if ((await order()).status === 201) servedAfterMs = performance.now() - passedAt;
      else await sleep(100);
    }

    // The slack of the bounds: the worst timer lateness of either process in this run, per timer of a call.
    const lagMs = Math.max(lateness.maxMs(), await childLagMs());
    lateness.stop();
    const slack = callSlackMs(lagMs);
    report('dynamodb away (process): deadline and slack, ms', { CALL_DEADLINE_MS, slack: Math.round(slack) });
    report('dynamodb away (process): refused writes, ms', refused.map((r) => Math.round(r.ms)));
    report('dynamodb away (process): /health down after, served again after, ms', { downAfterMs: Math.round(downAfterMs), servedAfterMs: Math.round(servedAfterMs) });

    expect(readinessSeen.filter((status) => status !== 200)).toEqual([]);
    for (const r of refused) {
      expect(r.status).toBe(503);
      expect(r.code).toBe('DEPENDENCY_TIMEOUT');
      expect(Number(r.retryAfter)).toBeGreaterThan(0);
      expect(r.ms).toBeLessThan(CALL_DEADLINE_MS + slack);
    }
    // /health saw it within one probe (1 s deadline, 1 s cache).
    expect(downAfterMs).toBeLessThan(2000 + 2 * slack);
  });
});
