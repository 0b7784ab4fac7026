import type { Redis } from 'ioredis';
import type { RedisCircuit } from '../adapters/redis.ts';

export type WindowCount = { current: number; ttl: number };

const SCRIPT = `
local current = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { current, ttl }`;

type WithScript = Redis & { windowCount(key: string, windowMs: number, by: number): Promise<[number, number]> };

/** Adds `by` (1 unless given) to `key`'s count in its window; undefined when Redis could not count. */
export type CountInWindow = (key: string, windowMs: number, by?: number) => Promise<WindowCount | undefined>;

/**
 * A fixed-window counter in Redis, shared by every instance, behind the Redis
 * circuit: one round trip counts and reads the window's remaining time
 * (`ttl`, ms). The window starts with the first count (and with any count
 * of a key that has no expiry, so that none can outlive it). Undefined when Redis
 * is skipped or fails, so that callers fail open rather than adding a
 * timeout to every request.
 */
export function windowCounter(redis: Redis, circuit: RedisCircuit): CountInWindow {
  if (!('windowCount' in redis)) redis.defineCommand('windowCount', { numberOfKeys: 1, lua: SCRIPT });
  const scripted = redis as WithScript;
  return async (key, windowMs, by = 1) => {
    const outcome = await circuit.call(() => scripted.windowCount(key, windowMs, by));
    return outcome.ok ? { current: outcome.value[0], ttl: outcome.value[1] } : undefined;
  };
}
