import type { Redis } from 'ioredis';
import type { RedisCircuit } from '../adapters/redis.ts';

export type WindowCount = { current: number; ttl: number };

const SCRIPT = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { current, redis.call('PTTL', KEYS[1]) }`;

type WithScript = Redis & { windowCount(key: string, windowMs: number): Promise<[number, number]> };

/**
 * A fixed-window counter in Redis, shared by every instance, behind the Redis
 * circuit: one round trip counts and reads the window's remaining time
 * (`ttl`, ms). Undefined when Redis is skipped or fails, so that callers
 * fail open rather than adding a timeout to every request.
 */
export function windowCounter(redis: Redis, circuit: RedisCircuit): (key: string, windowMs: number) => Promise<WindowCount | undefined> {
  if (!('windowCount' in redis)) redis.defineCommand('windowCount', { numberOfKeys: 1, lua: SCRIPT });
  const scripted = redis as WithScript;
  return async (key, windowMs) => {
    const outcome = await circuit.call(() => scripted.windowCount(key, windowMs));
    return outcome.ok ? { current: outcome.value[0], ttl: outcome.value[1] } : undefined;
  };
}
