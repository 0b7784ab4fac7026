import type { FastifyInstance } from 'fastify';
import { ConfigError } from './config.ts';

/**
 * Graceful shutdown shared by every entry point: on the first SIGTERM or
 * SIGINT, readiness turns 503, new requests get 503 + Connection: close,
 * in-flight ones finish, clients close; a second signal or the deadline
 * forces the exit.
 */
export function runUntilSignalled(app: FastifyInstance, timeoutMs: number): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      app.log.error({ timeoutMs }, 'shutdown deadline passed: exiting');
      process.exit(1);
    }, timeoutMs);
    deadline.unref();
    app.close().then(
      () => {
        app.log.info('shut down cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('unhandledRejection', (err) => app.log.error({ err }, 'unhandled rejection'));
}

/** Runs an entry point; a bad configuration ends it with its message and EX_CONFIG (78), not a stack trace. */
export async function runEntryPoint(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(78);
    }
    throw error;
  }
}
