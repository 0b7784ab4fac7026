import { inject } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOverrides } from '../../src/app.ts';
import type { Config } from '../../src/config.ts';
import { configFor } from './config.ts';

/**
 * The config of the shared local stack, plus whatever a test changes. Two
 * protections are lifted, each because in a test process they would answer
 * for the machine rather than for the code, and each has a test of its own:
 * - The limit on failed authentications per address: every injected request
 *   comes from 127.0.0.1 and the counters live in the one Redis of the run,
 *   so one file's 401s would turn another's into 429s
 *   (test/security/auth-failures.test.ts uses addresses of its own).
 * - Shedding on event-loop lag: a test process on a loaded 2-core machine
 *   lags past 200 ms now and then (and under-pressure counts a sampling
 *   interval with no sample at all, a process descheduled that long, as an
 *   infinite lag, whatever the threshold), and a 503 OVERLOADED would fail a
 *   test about something else (test/faults/overload.test.ts runs the built
 *   server with its own settings). The in-flight cap stays.
 * - The deadline of an AWS call: 1 s is right for AWS, and a local emulator
 *   sharing two busy cores with the suite answers slower now and then (a
 *   create 503 DEPENDENCY_TIMEOUT in a listing test's setup, at load 9). Here
 *   it is 10 s; the tests of deadlines set theirs (test/faults/, s3-stall,
 *   dynamodb-lean).
 */
export function testConfig(overrides: Parameters<typeof configFor>[0] = {}): Config {
  return configFor({
    ...inject('stackEnv'),
    LOG_LEVEL: 'silent',
    AUTH_FAILURES_PER_MINUTE: 1_000_000_000,
    LOAD_SHED_EVENT_LOOP_DELAY_MS: 0,
    AWS_REQUEST_TIMEOUT_MS: 10_000,
    AWS_CONNECT_TIMEOUT_MS: 5_000,
    ...overrides,
  });
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

/** The app connects to Redis in the background; tests that count cache hits wait for it (up to 20 s: a loaded machine). */
async function waitForRedis(app: FastifyInstance) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
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
