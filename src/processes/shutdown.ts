import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';

/**
 * Graceful shutdown of every long-running process (close-with-grace): on the
 * first SIGTERM or SIGINT, readiness turns 503 and requests still arriving on
 * open connections get 503 SHUTTING_DOWN, in-flight ones finish, clients
 * close, and the process exits 0. A second signal, the deadline, or a failed
 * close exits 1. An uncaught exception or unhandled rejection is a bug the
 * process cannot vouch for after: it drains the same way and exits 1.
 */
export function runUntilSignalled(app: FastifyInstance, timeoutMs: number): void {
  closeWithGrace(
    {
      delay: timeoutMs,
      logger: { error: (message: unknown) => app.log.error(message) },
      onSecondSignal: (signal) => app.log.warn({ signal }, 'second signal: exiting now'),
      onTimeout: () => app.log.error({ timeoutMs }, 'shutdown deadline passed: exiting'),
    },
    async ({ signal, err }) => {
      if (err) app.log.error({ err }, 'uncaught error: shutting down');
      else app.log.info({ signal }, 'shutting down');
      await app.close();
      app.log.info('shut down cleanly');
    },
  );
}
