import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { randomInt } from 'node:crypto';
import { freePort } from '../../src/local/emulators.ts';
import type { NewOrder, Order } from '../../src/orders/schemas.ts';
import { isolatedStack, scanAll, waitFor, type IsolatedStack } from '../orders/support.ts';
import { assertBuilt, kill, report, sleep, startServer, stats, type ServerProcess } from './support.ts';

// Fault 5: the API process (the built dist/processes/api.js) is SIGKILLed at random
// moments, 0.5-1.5 s after each restart (5 to 9 times), while clients post 500 orders, each
// retrying the same payload until it gets a 201. Afterwards: every order that
// got a 201 exists exactly once, no payload became two orders, and every
// order's event reaches the consumer (a relay and a consumer run throughout,
// in this process, on tables, a topic and a queue of this test's own).
//
// Clients pace themselves (about 50 orders/s in all), and the orders are
// spread over the kills: order i is sent only once i × MIN_KILLS / (ORDERS - 1)
// kills have happened, so that the run spans at least MIN_KILLS kills however
// fast or slow the machine is, instead of counting on the clock for it.
//
// The payload dedup window is 120 s here, not the default 15 s: a retry after
// the window may rightly be a new order, so the window must outlast every
// order's retries, and on a starved machine a restart alone took 7.5 s at the
// median and one order's retries spanned 40 s. What is tested does not depend
// on the window's length; the test still checks every span fell inside it.

const ORDERS = 500;
const CLIENTS = 10;
const MIN_KILLS = 5;
/**
 * Then the killer stops: on a loaded machine a restart takes 2-4.5 s, so a
 * killer that went on for as long as the clients do left the server down
 * most of the time, and the run past its timeout.
 */
const MAX_KILLS = 9;

let s: IsolatedStack;
let port: number;
let env: Record<string, string>;
let server: ServerProcess | undefined;
let relay: ReturnType<IsolatedStack['relay']>;
let consumer: ReturnType<IsolatedStack['consumer']>;

beforeAll(async () => {
  assertBuilt();
  s = await isolatedStack({ ORDER_DEDUP_WINDOW_SECONDS: 120 });
  port = await freePort();
  env = { ...inject('stackEnv'), ...Object.fromEntries(Object.entries(s.names).map(([k, v]) => [k, String(v)])) };
  relay = s.relay({ graceMs: 1000, intervalMs: 200 });
  consumer = s.consumer();
  relay.start();
  consumer.start();
});

/** Set when the run is over, by the test or, if it timed out, by afterAll: the killer starts no server after it. */
let done = false;
/** The killer's loop, awaited by afterAll so that the server it may be restarting is the one killed. */
let killer: Promise<void> | undefined;

afterAll(async () => {
  done = true;
  await killer;
  if (server) await kill(server);
  await Promise.all([relay?.stop(), consumer?.stop()]);
  s?.close();
});

type Attempt = { status: number | 'network'; orderId?: string; replayed?: boolean };

async function post(payload: NewOrder): Promise<Attempt> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(5000),
    });
    const body = await response.json();
    if (response.status !== 201) return { status: response.status };
    return { status: 201, orderId: (body as Order).orderId, replayed: response.headers.get('idempotent-replayed') === 'true' };
  } catch {
    return { status: 'network' };
  }
}

describe('the API process SIGKILLed at random moments during 500 order posts', () => {
  it('every order that got a 201 exists once, no payload twice, and every event reaches the consumer', { timeout: 180_000 }, async () => {
    const base = randomInt(0, 90_000_000);
    const payloads: NewOrder[] = Array.from({ length: ORDERS }, (_, i) => ({
      customerId: `CUST-${String(base + i).padStart(8, '0')}`,
      items: [{ sku: `SKU-${1000 + (i % 50)}`, quantity: 1 + (i % 100) }],
    }));
    /** Every orderId a 201 named, per payload: must be one per payload. */
    const answered = payloads.map(() => new Set<string>());
    const attempts = payloads.map(() => 0);
    const spans: number[] = [];
    const outcomes = new Map<string, number>();
    /** 201s that replayed an order an earlier, killed attempt had already accepted. */
    let replays = 0;

    server = await startServer(env, port);
    let kills = 0;
    const restarts: number[] = [];
    killer = (async () => {
      while (!done && kills < MAX_KILLS) {
        await sleep(500 + Math.random() * 1000);
        if (done) break;
        await kill(server!);
        kills += 1;
        const started = performance.now();
        server = await startServer(env, port);
        restarts.push(performance.now() - started);
      }
    })();

    let next = 0;
    let aborted = false; // a client failed: the others stop too
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (next < payloads.length && !aborted) {
        const index = next++;
        while (kills < Math.floor((index * MIN_KILLS) / (ORDERS - 1)) && !aborted) await sleep(20);
        const firstAt = performance.now();
        for (;;) {
          attempts[index]! += 1;
          const attempt = await post(payloads[index]!);
          outcomes.set(String(attempt.status), (outcomes.get(String(attempt.status)) ?? 0) + 1);
          if (attempt.status === 201) {
            answered[index]!.add(attempt.orderId!);
            if (attempt.replayed) replays += 1;
            break;
          }
          // Only a dead or restarting process may refuse: a live one never answers 4xx or 500 to these payloads.
          if (attempt.status !== 'network' && attempt.status !== 503) aborted = true;
          expect(['network', 503]).toContain(attempt.status);
          if (aborted) return;
          await sleep(50 + Math.random() * 50);
        }
        spans.push(performance.now() - firstAt);
        await sleep(150);
      }
    });
    try {
      await Promise.all(clients);
    } finally {
      done = true; // also when a client's assertion failed: no restarts after the test
      await killer;
    }

    const retried = attempts.filter((n) => n > 1).length;
    report('api sigkill: kills, restart ms, attempts by outcome', { kills, restartMs: stats(restarts), outcomes: Object.fromEntries(outcomes) });
    report('api sigkill: orders retried at least once, of which replayed (a killed attempt had accepted them), ms from first attempt to 201', {
      retried,
      replays,
      spans: stats(spans),
    });
    expect(kills).toBeGreaterThanOrEqual(MIN_KILLS);
    expect(retried).toBeGreaterThan(0);
    // The dedup window must cover every client's retries, or a retry could legitimately be a new order.
    expect(stats(spans).max).toBeLessThan(s.config.ORDER_DEDUP_WINDOW_SECONDS * 1000);

    // Every payload got a 201, and all its 201s named one order.
    for (const ids of answered) expect(ids.size).toBe(1);
    const orderIds = answered.map((ids) => [...ids][0]!);
    expect(new Set(orderIds).size).toBe(ORDERS);

    // In the table: exactly those orders, once each, and no payload twice.
    const items = await scanAll(s.aws, s.config.ORDERS_TABLE, 'ORDER#');
    report('api sigkill: orders in the table', items.length);
    const stored = new Map(items.map((item) => [item.orderId as string, item]));
    expect(items.length).toBe(ORDERS);
    expect(new Set(orderIds)).toEqual(new Set(stored.keys()));
    const byPayload = new Set(items.map((item) => JSON.stringify([item.customerId, item.items])));
    expect(byPayload.size).toBe(ORDERS);
    payloads.forEach((payload, index) => {
      expect(stored.get(orderIds[index]!)).toMatchObject({ customerId: payload.customerId, items: payload.items });
    });

    // Every event reaches the consumer, and is applied once.
    const wanted = new Set(orderIds);
    const startedWaiting = performance.now();
    await waitFor(async () => new Set(consumer.appliedEvents.map((event) => event.id)).size >= ORDERS, 60_000, 'every event at the consumer');
    await sleep(500);
    const applied = consumer.appliedEvents.map((event) => event.id);
    report('api sigkill: events applied, ms waited after the last 201', { applied: applied.length, waitedMs: Math.round(performance.now() - startedWaiting) });
    expect(applied.length).toBe(ORDERS);
    expect(new Set(applied)).toEqual(wanted);
  });
});
