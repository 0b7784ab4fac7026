import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackgroundLoop } from '../../src/background-loop.ts';

// The loop of the relay and the consumers, on fake timers: what it does
// between steps is shown by moving the clock, not by waiting.

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

const loopOf = (pauseMs: number, options: { fail?: () => boolean } = {}) => {
  const steps: number[] = [];
  const errors: unknown[] = [];
  const loop = new BackgroundLoop(
    async () => {
      steps.push(Date.now());
      if (options.fail?.()) throw new Error('step failed');
      return pauseMs;
    },
    { backoffMs: (failures) => 100 * failures, onError: (err) => errors.push(err) },
  );
  return { loop, steps, errors };
};

describe('BackgroundLoop', () => {
  it('steps once per pause, and not once more after stop() resolves', async () => {
    const { loop, steps } = loopOf(50);
    loop.start();
    await vi.advanceTimersByTimeAsync(50 * 4);
    expect(steps).toHaveLength(5); // at once, then after each of four pauses
    expect(loop.healthy).toBe(true);

    await loop.stop();
    expect(loop.healthy).toBe(false);
    const stoppedAfter = steps.length;
    await vi.advanceTimersByTimeAsync(50 * 100);
    expect(steps).toHaveLength(stoppedAfter);
  });

  it('cuts a pause short on stop(), without waiting for it', async () => {
    const { loop, steps } = loopOf(60_000);
    loop.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(steps).toHaveLength(1);
    let stopped = false;
    void loop.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0); // no minute passes
    expect(stopped).toBe(true);
    expect(steps).toHaveLength(1);
  });

  it('backs off after failures, is unhealthy after three in a row, and healthy again after a success', async () => {
    let failing = true;
    const { loop, steps, errors } = loopOf(1000, { fail: () => failing });
    loop.start();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(100); // the first back-off
    await vi.advanceTimersByTimeAsync(200); // the second
    expect(steps.map((at) => at - steps[0]!)).toEqual([0, 100, 300]);
    expect(errors).toHaveLength(3);
    expect(loop.healthy).toBe(false);

    failing = false;
    await vi.advanceTimersByTimeAsync(300);
    expect(steps).toHaveLength(4);
    expect(loop.healthy).toBe(true);
    await loop.stop();
  });
});
