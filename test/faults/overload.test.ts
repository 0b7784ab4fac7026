import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import autocannon from 'autocannon';
import { freePort } from '../../src/local/emulators.ts';
import { isolatedStack, type IsolatedStack } from '../orders/support.ts';
import { assertBuilt, kill, report, sleep, startServer, stats, type ServerProcess } from './support.ts';

// Fault 7: overload. The built server, as a process, with an in-flight cap
// (MAX_IN_FLIGHT_REQUESTS=64) and the default event-loop threshold, gets 1000
// connections each posting two orders a second: ~2000 orders/s offered to a
// process that accepts ~50-150/s on this machine (every order is three
// DynamoDB writes against the emulator; the emulator, this load generator and
// other work share the 2 cores). The excess must get a 503 + Retry-After that
// is faster than an acceptance, the accepted orders a latency bounded by the
// cap, and the process must stay up with a bounded memory.
//
// The bounds follow from the design, not from the machine's speed, so that
// they hold on a loaded machine:
// - At most MAX_IN_FLIGHT orders are in progress, so an accepted order waits
//   on average MAX_IN_FLIGHT / (orders accepted per second) (Little's law).
//   Bound of the p99: three times that (arrivals come in waves, the 1000
//   connections tick together; measured up to 1.9 times), plus 250 ms of
//   scheduling slack.
// - Refusing costs less than accepting: 503s come back faster than 201s, at
//   the median and at the p99.
// Measured after the first second: opening 1000 connections at once costs
// the first wave 1-2.5 s whatever the server does, and on a starved machine
// one of its requests took 10.2 s (the connections wait in the kernel's
// queues for a process that barely runs), so the first second is bounded
// only by the load generator's 20 s timeout; the rest by MAX_ANY_MS.
// The flood lasts 5 s and until 64 orders sent after its first second were
// accepted: beside two busy loops the first 64 accepted orders once took
// 5.4 s (the emulator starved), so that in 5 s not one order sent after the
// first second was accepted, and there was no rate to measure. Measured
// before that change, in 9 runs with 2-3x the cores' worth of other work on
// the machine (load average 4-6): 503 p50 0.1-0.34 s, p99 0.3-1.2 s; 201 p50 0.33-0.74 s, p99
// 0.67-2.46 s; 49-141 orders accepted per second.
//
// What these bounds cannot absorb: a machine so oversubscribed that the
// process barely runs. At load average 8-11 (this suite and four others on
// the 2 cores), 5 of 8 runs failed (this version and two variants: a flood
// sized to a capacity measured first, and bounds widened by a probe of the
// scheduling delay; neither held there): refusals waited 2-4 s in socket
// buffers behind the flood, longer than acceptances. The test before these
// changes failed at load 5-7 as well, on main's code too. Run it where the
// load average stays below about 3x the cores.
//
// Without the cap (FAULTS_MAX_IN_FLIGHT=100000), requests pile up in flight
// until their DynamoDB calls time out: in two runs here not one order was
// accepted after the first second, and the 503s were SERVICE_UNAVAILABLE.
// The event-loop threshold is the default (200 ms): at 50 ms, other work on
// the machine alone made the process shed every order for seconds (zero
// accepted after the first second in 2 of 10 runs at load average 5-7).

const CONNECTIONS = 1000;
const RATE_PER_CONNECTION = 2;
/** The flood lasts this long at the least, and until a cap's worth of orders sent after its first second were accepted ... */
const SECONDS = 5;
/** ... within this: a stuck process fails the bounds below instead of the test's timeout. */
const MAX_FLOOD_SECONDS = 25;
/** FAULTS_MAX_IN_FLIGHT=100000 reproduces the comparison above (and fails the bounds). */
const MAX_IN_FLIGHT = Number(process.env.FAULTS_MAX_IN_FLIGHT ?? 64);
/** The cap the accepted-latency bound is computed from: the configured one, not the override. */
const DESIGNED_IN_FLIGHT = 64;
const SCHEDULING_SLACK_MS = 250;
const MAX_ANY_MS = 10_000;
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
      MAX_IN_FLIGHT_REQUESTS: String(MAX_IN_FLIGHT),
      // The emulators' deadline, as everywhere in the tests: dynalite on a starved
      // machine takes more than production's 1 s now and then, and that would be
      // DEPENDENCY_TIMEOUT, not the shedding this is about.
      AWS_REQUEST_TIMEOUT_MS: '10000',
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
  it('sheds the excess with fast 503 + Retry-After, keeps accepted latency bounded, stays up', { timeout: 90_000 }, async () => {
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
      duration: MAX_FLOOD_SECONDS,
      timeout: 20,
      requests: [
        {
          method: 'POST',
          path: '/orders',
          headers: { 'content-type': 'application/json' },
          setupRequest: (request) => ({ ...request, body: order() }),
          onResponse: (status, body, _context, headers) => {
            if (status === 201) return;
            // Thousands of answers: a regular expression, not a JSON.parse each, keeps the load generator's CPU low.
            const code = status >= 500 ? (/"code":"([A-Z_]+)"/.exec(body)?.[1] ?? 'unparsed') : String(status);
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
      if (performance.now() - startedAt >= SECONDS * 1000 && (steady.get(201)?.length ?? 0) >= DESIGNED_IN_FLIGHT) instance.stop();
    });
    const result = await instance;
    const floodSeconds = (performance.now() - startedAt) / 1000;
    clearInterval(sampler);

    const accepted = stats(latencies.get(201) ?? []);
    const shed = stats(latencies.get(503) ?? []);
    const steadyAccepted = stats(steady.get(201) ?? []);
    const steadyShed = stats(steady.get(503) ?? []);
    report('overload: offered', { connections: CONNECTIONS, perConnectionPerSecond: RATE_PER_CONNECTION, seconds: Math.round(floodSeconds * 10) / 10, maxInFlight: MAX_IN_FLIGHT });
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

    // The process kept accepting at its own pace while it shed the excess ...
    const acceptedPerSecond = steadyAccepted.count / (floodSeconds - 1);
    const acceptedBoundMs = (3 * DESIGNED_IN_FLIGHT * 1000) / acceptedPerSecond + SCHEDULING_SLACK_MS;
    report('overload: accepted per second after the first second, and the p99 bound it gives (ms)', {
      acceptedPerSecond: Math.round(acceptedPerSecond),
      boundMs: Math.round(acceptedBoundMs),
    });
    expect(steadyAccepted.count).toBeGreaterThan(0);
    // ... its accepted orders waited no longer than the cap allows ...
    expect(steadyAccepted.p99).toBeLessThan(acceptedBoundMs);
    // ... refusing was faster than accepting ...
    expect(steadyShed.p50).toBeLessThan(steadyAccepted.p50);
    expect(steadyShed.p99).toBeLessThan(steadyAccepted.p99);
    // ... and nothing was left waiting.
    expect(Math.max(steadyAccepted.max, steadyShed.max)).toBeLessThan(MAX_ANY_MS);

    // And once the flood stops and the orders still in flight are done (the
    // cap's worth at the accepted rate, with the same margin as above), the
    // next order goes straight through.
    const floodEnded = performance.now();
    const drainBoundMs = acceptedBoundMs;
    let after: { status: number; ms: number; atMs: number } | undefined;
    while (performance.now() - floodEnded < drainBoundMs) {
      const started = performance.now();
      const response = await fetch(`http://127.0.0.1:${port}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: order() });
      await response.arrayBuffer();
      after = { status: response.status, ms: performance.now() - started, atMs: performance.now() - floodEnded };
      // Accepted, and not queued behind what the flood left in flight: straight through.
      if (response.status === 201 && after.ms < 1000) break;
      await sleep(50);
    }
    report('overload: the first order straight through after the flood (status, its own ms, ms after the flood, bound)', { ...after, drainBoundMs: Math.round(drainBoundMs) });
    expect(after?.status).toBe(201);
    expect(after!.ms).toBeLessThan(1000);
    expect((await fetch(`http://127.0.0.1:${port}/health/live`)).status).toBe(200);
  });
});
