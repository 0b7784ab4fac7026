import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchedWindowCounter } from '../../src/http/batched-window-counter.ts';
import type { WindowCount } from '../../src/http/window-counter.ts';

// Instances of the service sharing one count. The shared count here is what
// window-counter.ts's script does in Redis (INCRBY, the window starting at
// the first count, its time left); the script itself runs against
// redis-server in test/security/tenants.test.ts and
// test/integration/rate-limit-batches.test.ts. Timers and Date are vitest's
// fake ones, so flush intervals pass exactly when the test says.

const WINDOW_MS = 60_000;
const KEY = 'ratelimit:acme';

/** The shared count; `delayMs`: how long an answer takes to come back (the count itself is made at once, as Redis makes it). */
function sharedCount(delayMs = 0) {
  const windows = new Map<string, { count: number; endsAt: number }>();
  const calls: number[] = [];
  let down = false;
  const count = async (key: string, windowMs: number, by = 1): Promise<WindowCount | undefined> => {
    if (down) return undefined;
    calls.push(by);
    let window = windows.get(key);
    if (!window || Date.now() >= window.endsAt) windows.set(key, (window = { count: 0, endsAt: Date.now() + windowMs }));
    window.count += by;
    const answer = { current: window.count, ttl: window.endsAt - Date.now() };
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return answer;
  };
  return {
    count,
    calls,
    total: (key = KEY) => windows.get(key)?.count ?? 0,
    setDown: (value: boolean) => void (down = value),
  };
}

const instance = (shared: ReturnType<typeof sharedCount>, limit: number) => new BatchedWindowCounter({ count: shared.count, windowMs: WINDOW_MS, limit });

/** An instance far from its limit that has measured the pace (two counts 100 ms apart): its next count is answered here. */
async function pacedInstance(shared: ReturnType<typeof sharedCount>): Promise<BatchedWindowCounter> {
  const counter = instance(shared, 1_000_000);
  await counter.add(KEY);
  vi.advanceTimersByTime(100);
  await counter.add(KEY);
  return counter;
}

/** One count's verdict as the rate limit takes it: allowed while the count is within the limit. */
async function admitted(counter: BatchedWindowCounter, limit: number): Promise<boolean | undefined> {
  const counted = await counter.add(KEY);
  return counted === undefined ? undefined : counted.current <= limit;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('BatchedWindowCounter', () => {
  it('sends the counts of a window\'s first 100 ms one by one (they measure its pace), then, far from the limit, answers here and sends them together within 100 ms', async () => {
    const shared = sharedCount();
    const counter = instance(shared, 1_000_000);
    for (let i = 1; i <= 5; i++) expect(await counter.add(KEY)).toEqual({ current: i, ttl: WINDOW_MS });
    vi.advanceTimersByTime(100);
    // A pace of 5 counts in 100 ms: up to 5 may wait here for the next batch.
    expect(await counter.add(KEY)).toEqual({ current: 6, ttl: WINDOW_MS - 100 });
    expect(shared.calls).toEqual([1, 1, 1, 1, 1, 1]);

    // Counted here: answered at once, not a promise, and Redis not called.
    const local = [counter.add(KEY), counter.add(KEY), counter.add(KEY)];
    expect(local).toEqual([
      { current: 7, ttl: WINDOW_MS - 100 },
      { current: 8, ttl: WINDOW_MS - 100 },
      { current: 9, ttl: WINDOW_MS - 100 },
    ]);
    expect(shared.calls).toEqual([1, 1, 1, 1, 1, 1]);
    expect(shared.total()).toBe(6);

    await vi.advanceTimersByTimeAsync(100);
    expect(shared.calls).toEqual([1, 1, 1, 1, 1, 1, 3]);
    expect(shared.total()).toBe(9);
  });

  it('at a steady pace from two instances, admits exactly the limit, sending a small share of the counts one by one', async () => {
    const limit = 60_000;
    const shared = sharedCount();
    const instances = [instance(shared, limit), instance(shared, limit)];
    let allowed = 0;
    let refused = 0;
    let callsWhenSpent: number | undefined;
    // 20 requests a millisecond to each instance for 2 s: the limit falls due at 1.5 s.
    for (let ms = 0; ms < 2_000; ms++) {
      const verdicts = await Promise.all(instances.flatMap((counter) => Array.from({ length: 20 }, () => admitted(counter, limit))));
      for (const verdict of verdicts) verdict ? allowed++ : refused++;
      if (refused > 0) callsWhenSpent ??= shared.calls.length;
      await vi.advanceTimersByTimeAsync(1);
    }
    await Promise.all(instances.map((counter) => counter.flush()));
    expect(allowed).toBe(limit);
    expect(refused).toBe(80_000 - limit);
    // Every count reached the shared one, none twice.
    expect(shared.total()).toBe(80_000);
    // One by one: the first 100 ms (4,000 counts, the pace), then the last 8,000 before the limit
    // (twice what both send in 100 ms); otherwise a batch per instance every 100 ms.
    expect(shared.calls.length).toBeLessThan(13_000);
    expect(shared.calls.filter((by) => by > 1).length).toBeGreaterThan(25);
    // Refusals are answered here: past the limit, still a batch per instance every 100 ms.
    expect(shared.calls.length - callsWhenSpent!).toBeLessThanOrEqual(2 * (500 / 100) + 2);
  });

  it('is exact at a low pace: each count of two instances near a small limit is the shared one', async () => {
    const limit = 4;
    const shared = sharedCount();
    const [one, two] = [instance(shared, limit), instance(shared, limit)];
    const verdicts: (boolean | undefined)[] = [];
    for (const counter of [one, two, one, two, one, two, one]) {
      verdicts.push(await admitted(counter!, limit));
      vi.advanceTimersByTime(5);
    }
    expect(verdicts).toEqual([true, true, true, true, false, false, false]);
    // Once Redis has said the window is spent, an instance refuses without asking again, and sends the count later.
    expect(shared.calls).toEqual([1, 1, 1, 1, 1]);
    await vi.advanceTimersByTimeAsync(100);
    expect(shared.total()).toBe(7);
  });

  it('starts again with the next window: its first count goes to Redis and the count restarts', async () => {
    const shared = sharedCount();
    const counter = await pacedInstance(shared);
    expect(counter.add(KEY)).not.toBeInstanceOf(Promise);
    vi.advanceTimersByTime(WINDOW_MS);
    // The counts not sent by the window's end went with it; the new window's first count is sent at once.
    const first = counter.add(KEY);
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toEqual({ current: 1, ttl: WINDOW_MS });
  });

  it('without Redis counts nothing (the caller fails open) and drops what it held, then counts again once Redis is back', async () => {
    const shared = sharedCount();
    const counter = await pacedInstance(shared);
    expect(counter.add(KEY)).not.toBeInstanceOf(Promise);
    shared.setDown(true);
    await vi.advanceTimersByTimeAsync(100);
    // The pending count could not be sent, and is not sent twice later.
    shared.setDown(false);
    counter.add(KEY);
    await vi.advanceTimersByTimeAsync(100);
    expect(shared.total()).toBe(3);
    shared.setDown(true);
    vi.advanceTimersByTime(WINDOW_MS);
    expect(await counter.add(KEY)).toBeUndefined();
  });

  it('asks Redis again after a lull of two flush intervals, and at a burst of more than an interval of the pace', async () => {
    const shared = sharedCount();
    const counter = instance(shared, 1_000_000);
    for (let i = 0; i < 5; i++) await counter.add(KEY);
    vi.advanceTimersByTime(100);
    await counter.add(KEY); // the pace: 5 in 100 ms
    for (let i = 0; i < 5; i++) expect(counter.add(KEY)).not.toBeInstanceOf(Promise);
    // Five since Redis answered are an interval's worth: the sixth goes to Redis, with the five.
    const burst = counter.add(KEY);
    expect(burst).toBeInstanceOf(Promise);
    expect(await burst).toEqual({ current: 12, ttl: WINDOW_MS - 100 });
    expect(counter.add(KEY)).not.toBeInstanceOf(Promise);
    // The timer's batch is answered 100 ms on; more than 200 ms after that, nothing heard since: the next count asks.
    await vi.advanceTimersByTimeAsync(301);
    expect(counter.add(KEY)).toBeInstanceOf(Promise);
  });

  it('fails open when Redis goes away mid-window: no count, no field, no refusal from what it knew', async () => {
    const limit = 2;
    const shared = sharedCount();
    const counter = instance(shared, limit);
    expect(await admitted(counter, limit)).toBe(true);
    expect(await admitted(counter, limit)).toBe(true);
    // Spent: refused here, without asking.
    expect(counter.add(KEY)).toEqual({ current: 3, ttl: WINDOW_MS });
    shared.setDown(true);
    await vi.advanceTimersByTimeAsync(100);
    expect(await counter.add(KEY)).toBeUndefined();
    expect(await counter.add(KEY)).toBeUndefined();
    // Back: the shared count says the window is still spent (the counts Redis missed are not in it).
    shared.setDown(false);
    expect(await counter.add(KEY)).toEqual({ current: 3, ttl: WINDOW_MS - 100 });
  });

  it('keeps counts of an ended window out of the next one', async () => {
    const shared = sharedCount();
    const counter = await pacedInstance(shared);
    expect(counter.add(KEY)).not.toBeInstanceOf(Promise);
    // The window ends before the batch goes (the timer is late: a busy process).
    vi.setSystemTime(Date.now() + WINDOW_MS);
    await counter.flush();
    expect(shared.total()).toBe(2);
    expect(shared.calls).toEqual([1, 1]);
  });

  it('a thousand instances each seeing the key rarely, at a steady pace: exactly the limit', async () => {
    const limit = 6_000;
    const shared = sharedCount();
    const instances = Array.from({ length: 1_000 }, () => instance(shared, limit));
    let allowed = 0;
    let next = 0;
    // 2 requests a millisecond, each to the next instance in turn (one request every 500 ms each) for 4 s.
    for (let ms = 0; ms < 4_000; ms++) {
      const verdicts = await Promise.all([0, 1].map(() => admitted(instances[next++ % instances.length]!, limit)));
      allowed += verdicts.filter(Boolean).length;
      await vi.advanceTimersByTimeAsync(1);
    }
    expect(allowed).toBe(limit);
  });

  it('with answers that take 5 ms and a 3:1 split of the requests between two instances: exactly the limit', async () => {
    const limit = 40_000;
    const shared = sharedCount(5);
    const [busy, quiet] = [instance(shared, limit), instance(shared, limit)];
    let allowed = 0;
    const pending: Promise<boolean | undefined>[] = [];
    // 30 and 10 requests a millisecond for 1.5 s; answers come back while later requests arrive.
    for (let ms = 0; ms < 1_500; ms++) {
      for (let i = 0; i < 30; i++) pending.push(admitted(busy, limit));
      for (let i = 0; i < 10; i++) pending.push(admitted(quiet, limit));
      await vi.advanceTimersByTimeAsync(1);
    }
    await vi.advanceTimersByTimeAsync(10);
    for (const verdict of await Promise.all(pending)) if (verdict) allowed++;
    expect(allowed).toBe(limit);
    await Promise.all([busy.flush(), quiet.flush()]);
    expect(shared.total()).toBe(60_000);
  });
});
