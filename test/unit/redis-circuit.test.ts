import { describe, expect, it, vi } from 'vitest';
import type { Redis } from 'ioredis';
import { RedisCircuit } from '../../src/adapters/redis.ts';

// A fake connection is enough here: the circuit only reads `status`.
const connection = (status = 'ready') => ({ status }) as unknown as Redis;

describe('RedisCircuit', () => {
  it('skips Redis while it is not connected', async () => {
    const circuit = new RedisCircuit(connection('reconnecting'));
    let calls = 0;
    expect(await circuit.call(async () => ++calls)).toEqual({ ok: false });
    expect(calls).toBe(0);
  });

  it('opens after consecutive failures, then lets one probe through after the pause', async () => {
    // The circuit reads Date.now(): a fake clock, so that "still open" does not depend on how fast this machine is.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const circuit = new RedisCircuit(connection(), { threshold: 2, openMs: 50 });
      const fail = async () => {
        throw new Error('timeout');
      };
      await circuit.call(fail);
      await circuit.call(fail);
      let calls = 0;
      vi.advanceTimersByTime(49);
      expect(await circuit.call(async () => ++calls)).toEqual({ ok: false });
      expect(calls).toBe(0);
      vi.advanceTimersByTime(1);
      expect(await circuit.call(async () => ++calls)).toEqual({ ok: true, value: 1 });
      expect(circuit.isOpen).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it('lets forced writes through an open circuit', async () => {
    const circuit = new RedisCircuit(connection(), { threshold: 1, openMs: 10_000 });
    await circuit.call(async () => {
      throw new Error('timeout');
    });
    expect(await circuit.call(async () => 'skipped')).toEqual({ ok: false });
    expect(await circuit.call(async () => 'written', true)).toEqual({ ok: true, value: 'written' });
  });
});
