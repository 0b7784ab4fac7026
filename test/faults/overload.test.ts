import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import autocannon from 'autocannon';
import { freePort } from '../../src/local/emulators.ts';
import { isolatedStack, type IsolatedStack } from '../orders/support.ts';
import { assertBuilt, kill, report, sleep, startServer, stats, type ServerProcess } from './support.ts';

// Fault 7: overload. The built server, as a process, with load shedding set
// low (LOAD_SHED_EVENT_LOOP_DELAY_MS=50, MAX_IN_FLIGHT_REQUESTS=64), gets
// 1000 connections each posting two orders a second: ~2000 orders/s offered
// to a process that accepts ~100-300/s on this machine (every order is three
// DynamoDB writes against the emulator). The excess must get a fast 503 +
// Retry-After, the accepted orders a bounded latency, and the process must
// stay up with a bounded memory.
//
// For comparison (same machine, same load, FAULTS_MAX_IN_FLIGHT=100000):
// with no cap on requests in flight, under-pressure alone let accepted orders
// wait 2.6 s (p50) to 4.0 s (p99), up to the whole 5 s of the run: the event
// loop was not lagging, the emulator was the bottleneck, and requests piled
// up in flight, each behind all the others. With the cap of 64: ~0.5 s (p50)
// and 0.7-1.4 s (p99), while ~95 % of the offered orders got a 503 in ~0.1 s.

const CONNECTIONS = 1000;
const RATE_PER_CONNECTION = 2;
const SECONDS = 5;
/** FAULTS_MAX_IN_FLIGHT=100000 reproduces the comparison above (and fails the bounds). */
const MAX_IN_FLIGHT = Number(process.env.FAULTS_MAX_IN_FLIGHT ?? 64);
// Bounds, on requests sent after the first second: opening 1000 connections
// at once costs the first wave of requests 1-2.5 s on this machine whatever
// the server does (reported, and bounded by MAX_ANY_MS). Measured steady-state
// p99s, with the emulators, the load generator and other work sharing the 2
// cores: 503s 0.3-0.5 s (p50 ~0.1 s), 201s 0.9-1.4 s.
const SHED_P99_MS = 1000;
const ACCEPTED_P99_MS = 3000;
const MAX_ANY_MS = 5000;
const MAX_RSS_MB = 512;

let s: IsolatedStack;
let server: ServerProcess;
let port: number;

beforeAll(async () => {
  assertBuilt();
  s = await isolatedStack();
  port = await freePort();
  server = await startServer(
    {
      ...inject('stackEnv'),
      ...Object.fromEntries(Object.entries(s.names).map(([k, v]) => [k, String(v)])),
      LOG_LEVEL: 'fatal',
      NODE_ENV: 'production',
      LOAD_SHED_EVENT_LOOP_DELAY_MS: '50',
      MAX_IN_FLIGHT_REQUESTS: String(MAX_IN_FLIGHT),
    },
    port,
  );
});

afterAll(async () => {
  if (server) await kill(server);
  s?.close();
});

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function order() {
  return JSON.stringify({
    customerId: `CUST-${String(randomInt(0, 100_000_000)).padStart(8, '0')}`,
    items: [{ sku: 'SKU-LOAD', quantity: randomInt(1, 101) }],
  });
}

describe('overload: connections far above capacity', () => {
  it('sheds the excess with fast 503 + Retry-After, keeps accepted latency bounded, stays up', { timeout: 60_000 }, async () => {
    const pid = server.child.pid!;
    const latencies = new Map<number, number[]>();
    const codes = new Map<string, number>();
    let missingRetryAfter = 0;
    let maxRss = rssMb(pid);
    const sampler = setInterval(() => {
      try {
        maxRss = Math.max(maxRss, rssMb(pid));
      } catch {
        // the process is gone: asserted below
      }
    }, 100);

    const instance = autocannon({
      url: `http://127.0.0.1:${port}`,
      connections: CONNECTIONS,
      connectionRate: RATE_PER_CONNECTION,
      duration: SECONDS,
      timeout: 20,
      requests: [
        {
          method: 'POST',
          path: '/orders',
          headers: { 'content-type': 'application/json' },
          setupRequest: (request) => ({ ...request, body: order() }),
          onResponse: (status, body, _context, headers) => {
            if (status === 201) return;
            const code = status === 503 || status >= 500 ? (JSON.parse(body) as { code: string }).code : String(status);
            codes.set(code, (codes.get(code) ?? 0) + 1);
            if (status === 503 && !headers['retry-after']) missingRetryAfter += 1;
          },
        },
      ],
    });
    const startedAt = performance.now();
    /** Latencies of requests sent after the first second, once the 1000 connections are open. */
    const steady = new Map<number, number[]>();
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      const list = latencies.get(status) ?? [];
      list.push(ms);
      latencies.set(status, list);
      if (performance.now() - ms - startedAt < 1000) return;
      const steadyList = steady.get(status) ?? [];
      steadyList.push(ms);
      steady.set(status, steadyList);
    });
    const result = await instance;
    clearInterval(sampler);

    const accepted = stats(latencies.get(201) ?? []);
    const shed = stats(latencies.get(503) ?? []);
    const steadyAccepted = stats(steady.get(201) ?? []);
    const steadyShed = stats(steady.get(503) ?? []);
    report('overload: offered', { connections: CONNECTIONS, perConnectionPerSecond: RATE_PER_CONNECTION, seconds: SECONDS, maxInFlight: MAX_IN_FLIGHT });
    report('overload: 201 latency ms, whole run', accepted);
    report('overload: 503 latency ms, whole run', shed);
    report('overload: 201 latency ms, after the first second', steadyAccepted);
    report('overload: 503 latency ms, after the first second', steadyShed);
    report('overload: non-201 codes, errors, timeouts, max RSS MB', {
      codes: Object.fromEntries(codes),
      errors: result.errors,
      timeouts: result.timeouts,
      maxRssMb: Math.round(maxRss),
    });

    // Still up, within its memory, and serving at once.
    expect(server.child.exitCode).toBeNull();
    expect(server.child.signalCode).toBeNull();
    expect(maxRss).toBeLessThan(MAX_RSS_MB);
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);

    // Only 201s and 503 OVERLOADED, every 503 with Retry-After.
    expect([...latencies.keys()].sort()).toEqual([201, 503]);
    expect(Object.fromEntries(codes)).toEqual({ OVERLOADED: shed.count });
    expect(missingRetryAfter).toBe(0);
    // Most of the offered load was excess, and was shed.
    expect(shed.count).toBeGreaterThan(accepted.count);
    expect(accepted.count).toBeGreaterThan(50);

    // Shed fast, accepted within bound, nothing left waiting.
    expect(steadyShed.p50).toBeLessThan(steadyAccepted.p50);
    expect(steadyShed.p99).toBeLessThan(SHED_P99_MS);
    expect(steadyAccepted.p99).toBeLessThan(ACCEPTED_P99_MS);
    expect(Math.max(accepted.max, shed.max)).toBeLessThan(MAX_ANY_MS);

    // And once the flood stops, the next order goes straight through.
    await sleep(500);
    const started = performance.now();
    const after = await fetch(`http://127.0.0.1:${port}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: order(),
    });
    expect(after.status).toBe(201);
    expect(performance.now() - started).toBeLessThan(1000);
    expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
  });
});
