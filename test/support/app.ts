import { inject } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOverrides } from '../../src/app.ts';
import { configFor, type Config } from '../../src/config.ts';

/**
 * The config of the shared local stack, plus whatever a test changes. Every
 * injected request comes from 127.0.0.1 and the counters live in the one
 * Redis of the run, so the limit on failed authentications per address is
 * lifted: otherwise one file's 401s would turn another's into 429s. The limit
 * has its own test (test/security/auth-failures.test.ts), with addresses of its own.
 */
export function testConfig(overrides: Parameters<typeof configFor>[0] = {}): Config {
  return configFor({ ...inject('stackEnv'), LOG_LEVEL: 'silent', AUTH_FAILURES_PER_MINUTE: 1_000_000_000, ...overrides });
}

/** The real app on the real local stack; ready, and closed by the caller. */
export async function testApp(
  options: { config?: Parameters<typeof configFor>[0]; overrides?: AppOverrides } = {},
): Promise<FastifyInstance> {
  const app = await buildApp({ config: testConfig(options.config), overrides: options.overrides });
  await app.ready();
  await waitForRedis(app);
  return app;
}

/** The app connects to Redis in the background; tests that count cache hits wait for it. */
async function waitForRedis(app: FastifyInstance) {
  for (let i = 0; i < 100; i++) {
    const response = await app.inject({ method: 'GET', url: '/health' });
    if (response.json().cache === 'ok') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('Redis did not become ready');
}

/** Ids no other test uses, so that files can run in parallel on one stack. */
export function uniqueId(prefix = 't'): string {
  return `${prefix}-${randomUUID()}`;
}
