import { createHash } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config.ts';

/** The config of a test: defaults plus overrides, as environment strings, validated like the real one. */
export function configFor(overrides: Partial<Record<keyof Config, string | number | boolean>> = {}): Config {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(overrides)) env[key] = String(value);
  return loadConfig(env);
}

/** What API_KEYS holds for a key: its SHA-256, in hex (the README's `sha256sum`). */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
