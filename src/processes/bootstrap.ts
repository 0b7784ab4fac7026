import { ensureResources } from '../bootstrap/resources.ts';
import { codeOf, hasCode } from '../errors.ts';
import { runProcess } from './runtime.ts';

// One-shot: creates every table, bucket, topic and queue (docker compose runs
// it before the service; on AWS, terraform owns them instead).
//
// It waits for the emulators itself, up to a minute: compose starts it once
// the emulators' container has started, not once they answer, because
// podman without systemd never runs the health checks a `service_healthy`
// condition would wait for. Every step is idempotent, so a retry after a
// half-done attempt is safe.
const WAIT_MS = 60_000;
const unreachable = (error: unknown): string | undefined => {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (hasCode(cause, 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT')) return codeOf(cause);
  }
  return undefined;
};

await runProcess({
  name: 'bootstrap',
  run: async ({ config, log, aws }) => {
    const clients = aws();
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      try {
        await ensureResources(config, clients, (message) => log.info(message));
        break;
      } catch (error) {
        const code = unreachable(error);
        if (!code || Date.now() > deadline) throw error;
        log.info({ code }, 'the emulators do not answer yet; trying again');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    log.info('resources ready');
  },
});
