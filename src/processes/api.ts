import { buildApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { runEntryPoint, runUntilSignalled } from './shutdown.ts';
import { startTracing } from '../telemetry/tracing.ts';

// The API process: listens, and on SIGTERM/SIGINT stops accepting, lets
// in-flight requests finish, closes its clients and exits 0.
await runEntryPoint(async () => {
  const config = loadConfig();
  const tracing = startTracing(config, 'docsvc-api');
  const app = await buildApp({ config });
  if (tracing) app.addHook('onClose', () => tracing.shutdown());
  await app.listen({ port: config.PORT, host: config.HOST, backlog: config.LISTEN_BACKLOG });
  runUntilSignalled(app, config.SHUTDOWN_TIMEOUT_MS);
});
