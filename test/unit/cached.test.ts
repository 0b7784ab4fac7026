import { describe, expect, it } from 'vitest';
import { cachedFor } from '../../src/cached.ts';

describe('cachedFor', () => {
  it('shares one load for its period, then loads again', async () => {
    let now = 1000;
    let loads = 0;
    const read = cachedFor(5000, async () => ++loads, () => now);
    const [a, b] = [read(), read()];
    expect(a).toBe(b); // concurrent callers share the promise in flight
    expect(await a).toBe(1);
    now += 4999;
    expect(await read()).toBe(1);
    now += 1;
    expect(await read()).toBe(2);
    expect(loads).toBe(2);
  });

  it('shares a rejection for its period too, so a failing dependency is not asked again at once', async () => {
    let now = 0;
    let loads = 0;
    const read = cachedFor(
      1000,
      async () => {
        loads += 1;
        throw new Error('down');
      },
      () => now,
    );
    await expect(read()).rejects.toThrow('down');
    await expect(read()).rejects.toThrow('down');
    expect(loads).toBe(1);
    now = 1000;
    await expect(read()).rejects.toThrow('down');
    expect(loads).toBe(2);
  });
});
